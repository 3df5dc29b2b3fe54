//! A folder browser inside the window, for when no system folder dialog is available (or
//! the user prefers it): the subfolders of one folder at a time, listed on a worker.

use std::path::{Path, PathBuf};

use crate::runtime::{Loading, UiCommand};

/// The browser's state while it is shown.
#[derive(Debug)]
pub struct FolderBrowser {
    /// The folder shown.
    current: PathBuf,
    /// Its subfolders (names, sorted), being listed, or why they cannot be.
    entries: Loading<Vec<String>>,
}

/// What the user did in the browser this frame.
#[derive(Debug, PartialEq)]
pub enum BrowserOutcome {
    /// Still browsing.
    Open,
    /// This folder was chosen.
    Chosen(PathBuf),
    /// Closed without a choice.
    Cancelled,
}

impl FolderBrowser {
    /// A browser at `start`, asking for its listing.
    pub fn new(start: PathBuf, commands: &mut Vec<UiCommand>) -> Self {
        commands.push(UiCommand::ListFolder(start.clone()));
        Self {
            current: start,
            entries: Loading::started(),
        }
    }

    /// Takes a listing of `dir` (ignored unless it is the folder shown).
    pub fn listed(&mut self, dir: &Path, result: Result<Vec<String>, String>) {
        if dir == self.current {
            self.entries = Loading::from_result(result);
        }
    }

    fn go(&mut self, dir: PathBuf, commands: &mut Vec<UiCommand>) {
        commands.push(UiCommand::ListFolder(dir.clone()));
        self.current = dir;
        self.entries = Loading::started();
    }

    /// Draws the browser as a window.
    pub fn ui(&mut self, ctx: &egui::Context, commands: &mut Vec<UiCommand>) -> BrowserOutcome {
        let mut outcome = BrowserOutcome::Open;
        let mut open = true;
        let mut go_to = None;
        egui::Window::new("Choose the data folder")
            .id(egui::Id::unique("folder_browser"))
            .open(&mut open)
            .collapsible(false)
            .default_size([420.0, 360.0])
            .show(ctx, |ui| {
                ui.label(self.current.display().to_string());
                ui.horizontal(|ui| {
                    let parent = self.current.parent().map(Path::to_path_buf);
                    if ui
                        .add_enabled(parent.is_some(), egui::Button::new("Up one folder"))
                        .clicked()
                    {
                        go_to = parent;
                    }
                    if ui.button("Use this folder").clicked() {
                        outcome = BrowserOutcome::Chosen(self.current.clone());
                    }
                    if ui.button("Cancel").clicked() {
                        outcome = BrowserOutcome::Cancelled;
                    }
                });
                ui.separator();
                egui::ScrollArea::vertical()
                    .max_height(260.0)
                    .show(ui, |ui| match &self.entries {
                        Loading::Running { .. } => {
                            ui.spinner();
                        }
                        Loading::Failed(message) => {
                            ui.colored_label(ui.visuals().error_fg_color, message);
                        }
                        Loading::Ready(names) if names.is_empty() => {
                            ui.weak("No subfolders.");
                        }
                        Loading::Ready(names) => {
                            for name in names {
                                if ui.button(format!("{name}/")).clicked() {
                                    go_to = Some(self.current.join(name));
                                }
                            }
                        }
                    });
            });
        if let Some(dir) = go_to {
            self.go(dir, commands);
        }
        if !open {
            outcome = BrowserOutcome::Cancelled;
        }
        outcome
    }
}
