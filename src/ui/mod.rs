//! Views: each reads state and pushes [`crate::app::UiCommand`]s; none starts jobs itself.

pub mod new_project;
pub mod project_list;
pub mod project_overview;
