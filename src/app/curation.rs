//! The app's side of curation: relabel, leave out, restore and undo run on a worker
//! ([`crate::project::curate`], which checks the data set's listing and writes
//! `project.ron` only); the saved project replaces its row, so every view shows the
//! overrides at once, and the status bar says what was done.

use std::path::PathBuf;

use super::{AppEvent, UiCommand, WorkbenchApp};
use crate::project::{Project, curate, undo_curation};
use crate::text::capitalised;

impl WorkbenchApp {
    /// Runs a curation command.
    pub(super) fn curation_command(&mut self, ctx: &egui::Context, command: UiCommand) {
        match command {
            UiCommand::Curate { dir, edit } => {
                let target = dir.clone();
                self.spawn(ctx, "curate", move || {
                    let line = edit.describe();
                    let done = curate(&dir, edit).map_err(|e| e.to_string()).map(|done| {
                        let message = if done.changed {
                            capitalised(&line)
                        } else {
                            format!("Nothing changed: {line} was already so")
                        };
                        (message, Box::new(done.project))
                    });
                    AppEvent::Curated(target, done)
                });
            }
            UiCommand::UndoCuration(dir) => {
                let target = dir.clone();
                self.spawn(ctx, "curate-undo", move || {
                    let done = undo_curation(&dir)
                        .map(|(edit, project)| {
                            (format!("Undid: {}", edit.describe()), Box::new(project))
                        })
                        .map_err(|e| e.to_string());
                    AppEvent::Curated(target, done)
                });
            }
            _ => {}
        }
    }

    /// Takes a curation result: the project into its row, the message into the status bar.
    pub(super) fn curated(&mut self, dir: PathBuf, done: Result<(String, Box<Project>), String>) {
        match done {
            Ok((message, project)) => {
                let overrides = project.dataset.curation.overrides().describe();
                self.project_saved(&dir, Ok(project));
                self.status = Some(Ok(format!("{message}; now {overrides} (for the next run)")));
            }
            Err(e) => self.status = Some(Err(e)),
        }
    }
}
