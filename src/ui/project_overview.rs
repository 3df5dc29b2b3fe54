//! The selected project's summary: task, data, backbone and its facts.

use crate::app::ProjectRow;
use crate::model::backbone::known_backbones;

/// The central overview of one project.
#[derive(Debug, Default)]
pub struct ProjectOverviewView;

impl ProjectOverviewView {
    /// Draws the overview of `row`, or a hint when nothing is selected.
    pub fn ui(&mut self, ui: &mut egui::Ui, row: Option<&crate::app::ProjectRow>) {
        let Some(row) = row else {
            ui.label("Select a project on the left.");
            return;
        };
        match &row.project {
            Err(message) => {
                ui.heading(row.title());
                ui.colored_label(ui.visuals().error_fg_color, message);
            }
            Ok(open) => overview_ui(ui, row, open),
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
