//! Views: each reads state and pushes [`crate::runtime::UiCommand`]s; none starts jobs itself.

pub mod compare;
pub mod compare_det;
pub mod compare_det_tables;
pub mod dataset;
pub mod dataset_boxes;
pub mod dataset_panels;
pub mod det_boxes;
pub mod embeddings;
pub mod export_dialog;
pub mod folder_browser;
pub mod inspect_tabs;
pub mod inspect_widgets;
pub mod inspector;
pub mod inspector_det;
pub mod inspector_seg;
pub mod job_indicator;
pub mod new_project;
pub mod project_list;
pub mod project_overview;
pub mod project_tabs;
pub mod run_problems;
pub mod study;
pub mod training;
pub mod training_plots;
pub mod training_settings;
pub mod try_it;
