//! transfer-workbench: a desktop workbench for transfer learning on images.
//!
//! The headless core (`project`, `data`, `model`) is shared by the CLI (`cli`) and the
//! egui GUI (`runtime`, `app`, `ui`). `docs/architecture.md` describes the layers and rules.

pub mod app;
pub mod assets;
pub mod atomic_file;
pub mod cli;
pub mod data;
pub mod disk_space;
pub mod export;
pub mod file_lock;
pub mod inspect;
pub mod model;
pub mod process_memory;
pub mod project;
pub mod run_config;
pub mod runtime;
pub mod screenshot;
pub mod study;
pub mod task;
pub mod text;
pub mod train;
pub mod ui;
