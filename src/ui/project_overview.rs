//! The selected project's summary: task, data, backbone and its facts.

use crate::model::backbone::known_backbones;
use crate::runtime::projects::ProjectRow;
use crate::runtime::{FactsCache, UiCommand};

/// The central overview of one project, with its rename / duplicate / delete actions.
#[derive(Debug, Default)]
pub struct ProjectOverviewView {
    /// The new name being typed, while renaming.
    renaming: Option<String>,
    /// The folder awaiting delete confirmation.
    confirm_delete: Option<std::path::PathBuf>,
}

impl ProjectOverviewView {
    /// Draws the overview of `row`, or a hint when nothing is selected.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        row: Option<&crate::runtime::projects::ProjectRow>,
        facts: &FactsCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let Some(row) = row else {
            ui.label("Select a project on the left, or create one with “New project…”.");
            return;
        };
        self.actions_ui(ui, row, commands);
        match &row.project {
            Err(message) => {
                ui.heading(row.title());
                ui.colored_label(ui.visuals().error_fg_color, message);
            }
            Ok(open) => {
                overview_ui(ui, row, open);
                ui.add_space(12.0);
                backbone_facts_ui(ui, &open.project.backbone, facts, commands);
            }
        }
        self.confirm_delete_ui(ui, row, commands);
    }

    fn actions_ui(&mut self, ui: &mut egui::Ui, row: &ProjectRow, commands: &mut Vec<UiCommand>) {
        ui.horizontal(|ui| {
            if let Some(name) = &mut self.renaming {
                let edit = ui.add(egui::TextEdit::singleline(name).id_salt("rename_project"));
                let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if (ui.button("Save name").clicked() || enter) && !name.trim().is_empty() {
                    commands.push(UiCommand::RenameProject(
                        row.dir.clone(),
                        name.trim().to_owned(),
                    ));
                    self.renaming = None;
                } else if ui.button("Cancel").clicked() {
                    self.renaming = None;
                }
                return;
            }
            let loaded = row.project.is_ok();
            if ui
                .add_enabled(loaded, egui::Button::new("Rename"))
                .clicked()
            {
                self.renaming = Some(row.title());
            }
            if ui
                .add_enabled(loaded, egui::Button::new("Duplicate"))
                .clicked()
            {
                commands.push(UiCommand::DuplicateProject(row.dir.clone()));
            }
            if ui.button("Delete…").clicked() {
                self.confirm_delete = Some(row.dir.clone());
            }
        });
        ui.separator();
    }

    fn confirm_delete_ui(
        &mut self,
        ui: &mut egui::Ui,
        row: &ProjectRow,
        commands: &mut Vec<UiCommand>,
    ) {
        if self.confirm_delete.as_ref() != Some(&row.dir) {
            return;
        }
        let modal = egui::Modal::new(egui::Id::unique("confirm_delete")).show(ui.ctx(), |ui| {
            ui.heading("Delete project?");
            ui.label(format!(
                "“{}” will be moved to the projects folder's .trash folder, with its runs.",
                row.title()
            ));
            ui.horizontal(|ui| {
                if ui.button("Move to trash").clicked() {
                    commands.push(UiCommand::DeleteProject(row.dir.clone()));
                    self.confirm_delete = None;
                }
                if ui.button("Keep it").clicked() {
                    self.confirm_delete = None;
                }
            });
        });
        if modal.should_close() {
            self.confirm_delete = None;
        }
    }
}

fn overview_ui(ui: &mut egui::Ui, row: &ProjectRow, open: &crate::project::OpenProject) {
    let project = &open.project;
    ui.heading(&project.name);
    if !project.description.is_empty() {
        ui.label(&project.description);
    }
    ui.add_space(8.0);
    egui::Grid::new("project_facts")
        .num_columns(2)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            ui.label("Task");
            ui.label(project.task.label());
            ui.end_row();
            ui.label("Data");
            ui.label(project.data.describe());
            ui.end_row();
            ui.label("Data folder");
            let folder = open.data_dir().display().to_string();
            if row.data_present {
                ui.label(folder);
            } else {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("{folder} (missing: run ./workbench.sh setup)"),
                );
            }
            ui.end_row();
            ui.label("Backbone");
            ui.label(&project.backbone);
            ui.end_row();
            ui.label("Input size");
            ui.label(format!("{} px", project.input_size_px));
            ui.end_row();
            if let Some(info) = known_backbones()
                .into_iter()
                .find(|b| b.name == project.backbone)
            {
                ui.label("Embedding width");
                ui.label(info.embedding_dim.to_string());
                ui.end_row();
                ui.label("Pretrained");
                ui.label(
                    info.pretrained
                        .map(|p| p.origin.to_owned())
                        .unwrap_or_else(|| "no (from scratch)".to_owned()),
                );
                ui.end_row();
            }
            ui.label("Folder");
            ui.label(open.dir.display().to_string());
            ui.end_row();
        });
}

/// The measured facts of a backbone (parameters, GFLOPs), asking a worker for them once.
pub fn backbone_facts_ui(
    ui: &mut egui::Ui,
    name: &str,
    facts: &FactsCache,
    commands: &mut Vec<UiCommand>,
) {
    match facts.get(name) {
        None => {
            commands.push(UiCommand::MeasureBackbone(name.to_owned()));
            ui.label("Measuring the backbone…");
        }
        Some(None) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Measuring the backbone…");
            });
        }
        Some(Some(Err(message))) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
        }
        Some(Some(Ok(f))) => {
            ui.label(format!(
                "{}: {:.2} M parameters, {:.2} GFLOPs at {} px, {}-d embedding, normalisation mean {:?} std {:?}",
                f.info.family,
                f.parameters as f64 / 1e6,
                f.gflops,
                f.info.input_size_px,
                f.info.embedding_dim,
                f.info.normalization.mean,
                f.info.normalization.std,
            ));
        }
    }
}
