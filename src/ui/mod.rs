//! Views: each reads state and pushes [`crate::app::UiCommand`]s; none starts jobs itself.

pub mod compare;
pub mod dataset;
pub mod dataset_panels;
pub mod embeddings;
pub mod inspect_widgets;
pub mod inspector;
pub mod new_project;
pub mod project_list;
pub mod project_overview;
pub mod thumbnails;
