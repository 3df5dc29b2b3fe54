//! The list of projects in the projects folder, most recent first.

use std::path::Path;

use crate::runtime::UiCommand;
use crate::runtime::projects::ProjectsState;

/// The project list panel.
#[derive(Debug, Default)]
pub struct ProjectListView;

impl ProjectListView {
    /// Draws the list; a click selects a project.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        state: &ProjectsState,
        selected: Option<&Path>,
        commands: &mut Vec<UiCommand>,
    ) {
        ui.heading("Projects");
        ui.add_space(4.0);
        match state {
            ProjectsState::Running { .. } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Looking for projects…");
                });
            }
            ProjectsState::Failed(message) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
            }
            ProjectsState::Ready(rows) if rows.is_empty() => {
                ui.label("No projects in this folder yet.");
            }
            ProjectsState::Ready(rows) => {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    for row in rows {
                        let mut title = row.title();
                        if row.project.is_err() {
                            title.push_str("  (damaged)");
                        }
                        let is_selected = selected == Some(row.dir.as_path());
                        let response = ui.selectable_label(is_selected, title);
                        if response.clicked() {
                            commands.push(UiCommand::SelectProject(row.dir.clone()));
                        }
                    }
                });
            }
        }
    }
}
