//! transfer-workbench: a desktop workbench for transfer learning on images.
//!
//! The headless core (`project`, `data`, `model`) is shared by the CLI (`cli`) and the
//! egui GUI (`app`, `ui`). See `../shared/ARCHITECTURE.md` for the rules it follows.

pub mod app;
pub mod assets;
pub mod cli;
pub mod data;
pub mod inspect;
pub mod model;
pub mod project;
pub mod screenshot;
pub mod train;
pub mod ui;
