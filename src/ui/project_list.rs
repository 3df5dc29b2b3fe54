//! The list of projects in the projects folder, most recent first. Up/Down select the
//! previous or next project while the pointer is over the list or one of its rows has the
//! keyboard focus (elsewhere the central view may claim the arrows first).

use std::path::{Path, PathBuf};

use crate::runtime::UiCommand;
use crate::runtime::projects::{ProjectRow, ProjectsState};

/// The project list panel.
#[derive(Debug, Default)]
pub struct ProjectListView;

impl ProjectListView {
    /// Draws the list; a click selects a project, and so do Up/Down over the list.
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
                let pointer_here = ui.rect_contains_pointer(ui.max_rect());
                let mut row_focused = false;
                egui::ScrollArea::vertical().show(ui, |ui| {
                    for row in rows {
                        let mut title = row.title();
                        if row.project.is_err() {
                            title.push_str("  (damaged)");
                        }
                        let is_selected = selected == Some(row.dir.as_path());
                        let response = ui.selectable_label(is_selected, title);
                        row_focused |= response.has_focus();
                        if response.clicked() {
                            commands.push(UiCommand::SelectProject(row.dir.clone()));
                        }
                    }
                });
                let focus_elsewhere = ui.ctx().memory(|m| m.focused().is_some()) && !row_focused;
                if (pointer_here || row_focused) && !focus_elsewhere {
                    let step = arrow_step(ui.ctx());
                    if let Some(dir) = step_project(rows, selected, step) {
                        commands.push(UiCommand::SelectProject(dir));
                    }
                }
            }
        }
    }
}

/// +1 for a Down press, -1 for an Up press this frame (consumed), else 0.
pub fn arrow_step(ctx: &egui::Context) -> i64 {
    use egui::{Key, Modifiers};
    ctx.input_mut(|i| {
        if i.consume_key(Modifiers::NONE, Key::ArrowDown) {
            1
        } else if i.consume_key(Modifiers::NONE, Key::ArrowUp) {
            -1
        } else {
            0
        }
    })
}

/// The project `step` rows from the selected one (the first when none is), when that moves.
pub fn step_project(rows: &[ProjectRow], selected: Option<&Path>, step: i64) -> Option<PathBuf> {
    if step == 0 || rows.is_empty() {
        return None;
    }
    let current = rows.iter().position(|r| Some(r.dir.as_path()) == selected);
    let next = match current {
        Some(i) => (i as i64 + step).clamp(0, rows.len() as i64 - 1) as usize,
        None => 0,
    };
    (current != Some(next)).then(|| rows[next].dir.clone())
}
