//! The "New project" dialog: a name, a data folder (typed, picked or dropped), the task
//! (detected from the folder) and a backbone.

use std::path::PathBuf;

use crate::model::backbone::known_backbones;
use crate::project::TaskKind;
use crate::runtime::{FactsCache, UiCommand, ViewRequests};

/// The dialog's state while it is open.
#[derive(Debug, Default)]
pub struct NewProjectView {
    /// Whether the dialog is shown.
    open: bool,
    name: String,
    data_dir: String,
    task: TaskKind,
    backbone: String,
    error: Option<String>,
}

impl NewProjectView {
    /// Whether the dialog is shown.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Takes this view's part of the app's requests (open, picked folder, detected task).
    fn take_requests(&mut self, requests: &mut ViewRequests) {
        if let Some(dir) = requests.open_new_project.take() {
            self.open_with(dir);
        }
        if let Some(dir) = requests.picked_data_dir.take() {
            self.set_data_dir(dir);
        }
        if let Some((dir, task)) = requests.detected_task.take() {
            self.set_detected_task(&dir, task);
        }
    }

    /// Opens the dialog, optionally with a data folder already chosen (dropped on the window).
    fn open_with(&mut self, data_dir: Option<PathBuf>) {
        *self = Self {
            open: true,
            backbone: "mobilenet_v2".to_owned(),
            ..Self::default()
        };
        if let Some(dir) = data_dir {
            self.set_data_dir(dir);
        }
    }

    /// Sets the data folder (from the picker or a drop) and guesses name and task from it.
    fn set_data_dir(&mut self, dir: PathBuf) {
        if self.name.is_empty()
            && let Some(stem) = dir.file_name()
        {
            self.name = stem.to_string_lossy().into_owned();
        }
        self.data_dir = dir.display().to_string();
    }

    /// Applies the task detected for the chosen folder on a worker.
    fn set_detected_task(&mut self, dir: &std::path::Path, task: TaskKind) {
        if std::path::Path::new(&self.data_dir) == dir {
            self.task = task;
        }
    }

    /// Draws the dialog when open.
    pub fn ui(
        &mut self,
        ctx: &egui::Context,
        facts: &FactsCache,
        requests: &mut ViewRequests,
        commands: &mut Vec<UiCommand>,
    ) {
        self.take_requests(requests);
        if !self.open {
            return;
        }
        let mut open = self.open;
        let mut close = false;
        egui::Window::new("New project")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("new_project_form")
                    .num_columns(2)
                    .spacing([12.0, 8.0])
                    .show(ui, |ui| {
                        let label = ui.label("Name").id;
                        ui.add(egui::TextEdit::singleline(&mut self.name).id_salt("new_name"))
                            .labelled_by(label)
                            .on_hover_text(
                                "Shown in the project list; the folder is named after it.",
                            );
                        ui.end_row();
                        let label = ui.label("Data folder").id;
                        ui.horizontal(|ui| {
                            let edit = egui::TextEdit::singleline(&mut self.data_dir)
                                .id_salt("new_data_dir")
                                .hint_text("class subfolders, or images/ + masks/");
                            if ui.add(edit).labelled_by(label).changed() {
                                commands.push(UiCommand::DetectTask(PathBuf::from(&self.data_dir)));
                            }
                            if ui.button("Browse…").clicked() {
                                commands.push(UiCommand::PickDataFolder);
                            }
                        });
                        ui.end_row();
                        ui.label("Task");
                        ui.horizontal(|ui| {
                            for task in TaskKind::ALL {
                                ui.selectable_value(&mut self.task, task, task.title());
                            }
                        });
                        ui.end_row();
                        ui.label("Backbone");
                        egui::ComboBox::new("new_backbone", "")
                            .selected_text(self.backbone.clone())
                            .show_ui(ui, |ui| {
                                for info in known_backbones() {
                                    let label = match &info.pretrained {
                                        Some(_) => format!("{} (pretrained)", info.name),
                                        None => info.name.to_owned(),
                                    };
                                    ui.selectable_value(
                                        &mut self.backbone,
                                        info.name.to_owned(),
                                        label,
                                    );
                                }
                            });
                        ui.end_row();
                        ui.label("");
                        super::project_overview::backbone_facts_ui(
                            ui,
                            &self.backbone,
                            facts,
                            commands,
                        );
                        ui.end_row();
                    });
                if let Some(error) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, error);
                }
                ui.separator();
                ui.horizontal(|ui| {
                    if ui.button("Create").clicked() {
                        match self.validate() {
                            Ok(()) => {
                                commands.push(UiCommand::CreateProject {
                                    name: self.name.trim().to_owned(),
                                    data_dir: PathBuf::from(self.data_dir.trim()),
                                    task: self.task,
                                    backbone: self.backbone.clone(),
                                });
                                close = true;
                            }
                            Err(message) => self.error = Some(message),
                        }
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            });
        self.open = open && !close;
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("Give the project a name.".to_owned());
        }
        if self.data_dir.trim().is_empty() {
            return Err("Choose the folder with your labelled images.".to_owned());
        }
        Ok(())
    }
}
