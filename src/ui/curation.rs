//! Curation controls: relabel or leave out one image (Inspector), a selection (Embeddings,
//! gallery), and the project's list of corrections with restore and undo (Dataset tab).
//! They only send commands; the project's saved curation comes back into its row, so every
//! view shows an override as soon as it is stored.

use std::path::Path;

use crate::data::overrides::Overrides;
use crate::project::{Curation, CurationAction, CurationEdit};
use crate::runtime::UiCommand;

/// The project a curation control acts on, with its stored curation (`None`: the project
/// file could not be read, so nothing can be changed).
#[derive(Clone, Copy)]
pub struct CurationTarget<'a> {
    /// The project folder.
    pub project: &'a Path,
    /// Its curation as saved.
    pub curation: Option<&'a Curation>,
}

impl CurationTarget<'_> {
    fn overrides(&self) -> Option<Overrides> {
        self.curation.map(Curation::overrides)
    }

    fn send(&self, commands: &mut Vec<UiCommand>, action: CurationAction, files: Vec<String>) {
        commands.push(UiCommand::Curate {
            dir: self.project.to_owned(),
            edit: CurationEdit { action, files },
        });
    }
}

/// One image's overrides and the actions on it: relabel as one of `classes` (empty: the
/// task has no class labels), leave out, restore.
pub fn image_curation_ui(
    ui: &mut egui::Ui,
    target: CurationTarget<'_>,
    id: &str,
    classes: &[String],
    commands: &mut Vec<UiCommand>,
) {
    let Some(overrides) = target.overrides() else {
        return;
    };
    let files = || vec![id.to_owned()];
    ui.horizontal_wrapped(|ui| {
        let relabelled = overrides.relabelled.get(id);
        let excluded = overrides.excluded.contains(id);
        if excluded {
            ui.colored_label(ui.visuals().warn_fg_color, "🚫 Left out of the next run");
        }
        if let Some(class) = relabelled {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("✏ Relabelled as {class} for the next run"),
            );
        }
        if excluded || relabelled.is_some() {
            if ui
                .button("Restore")
                .on_hover_text("Drop the override: its own label, included again")
                .clicked()
            {
                target.send(commands, CurationAction::Restore, files());
            }
        } else {
            ui.label("Correct the data:");
        }
        if !classes.is_empty() {
            relabel_menu_ui(ui, "Relabel as…", classes, relabelled, |class| {
                target.send(commands, CurationAction::Relabel(class), files());
            });
        }
        if !excluded
            && ui
                .button("Leave out")
                .on_hover_text(
                    "Leave the image out of the next runs (the file stays where it is; Restore \
                     or Undo takes it back)",
                )
                .clicked()
        {
            target.send(commands, CurationAction::Exclude, files());
        }
    });
}

/// Actions on a selection of images (`ids`): relabel all as one of `classes`, leave all out.
pub fn selection_curation_ui(
    ui: &mut egui::Ui,
    target: CurationTarget<'_>,
    ids: &[String],
    classes: &[String],
    commands: &mut Vec<UiCommand>,
) {
    if ids.is_empty() || target.curation.is_none() {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        let n = ids.len();
        if !classes.is_empty() {
            relabel_menu_ui(
                ui,
                &format!("Relabel the {n} as…"),
                classes,
                None,
                |class| {
                    target.send(commands, CurationAction::Relabel(class), ids.to_vec());
                },
            );
        }
        if ui
            .button(format!("Leave the {n} out"))
            .on_hover_text("One edit: Undo in the Dataset tab takes all of them back")
            .clicked()
        {
            target.send(commands, CurationAction::Exclude, ids.to_vec());
        }
    });
}

/// A menu button listing `classes` (the current override, if any, marked); `chosen` gets
/// the class clicked.
fn relabel_menu_ui(
    ui: &mut egui::Ui,
    text: &str,
    classes: &[String],
    current: Option<&String>,
    mut chosen: impl FnMut(String),
) {
    ui.menu_button(text, |ui| {
        egui::ScrollArea::vertical()
            .max_height(320.0)
            .show(ui, |ui| {
                for class in classes {
                    let marked = current == Some(class);
                    if ui.selectable_label(marked, class).clicked() {
                        chosen(class.clone());
                        ui.close();
                    }
                }
            });
    });
}

/// Most override rows listed in the Dataset tab.
const MAX_ROWS: usize = 500;

/// The project's corrections: what the next run reads differently, each with Restore, and
/// Undo of the newest edit.
pub fn curation_panel_ui(
    ui: &mut egui::Ui,
    target: CurationTarget<'_>,
    commands: &mut Vec<UiCommand>,
) {
    let Some(curation) = target.curation else {
        return;
    };
    let overrides = curation.overrides();
    let title = if overrides.is_empty() {
        "Corrections: none".to_owned()
    } else {
        format!("Corrections: {}", overrides.describe())
    };
    egui::CollapsingHeader::new(title)
        .id_salt("curation_panel")
        .default_open(!overrides.is_empty())
        .show(ui, |ui| {
            ui.label(
                "Relabel or leave out images here (select a tile), in the Inspector (a right \
                 click on a grid cell) or on an embedding map. The files stay as they are: \
                 the next run reads the data through these corrections and records them; the \
                 split keeps its assignments.",
            );
            if let Some(last) = curation.edits.last()
                && ui.button(format!("⟲ Undo: {}", last.describe())).clicked()
            {
                commands.push(UiCommand::UndoCuration(target.project.to_owned()));
            }
            if overrides.is_empty() {
                return;
            }
            let rows: Vec<(&String, String)> = overrides
                .relabelled
                .iter()
                .map(|(file, class)| (file, format!("✏ relabelled as {class}")))
                .chain(
                    overrides
                        .excluded
                        .iter()
                        .map(|file| (file, "🚫 left out".to_owned())),
                )
                .collect();
            egui::ScrollArea::vertical()
                .id_salt("curation_rows")
                .max_height(220.0)
                .show(ui, |ui| {
                    egui::Grid::new("curation_grid")
                        .striped(true)
                        .show(ui, |ui| {
                            for (file, what) in rows.iter().take(MAX_ROWS) {
                                ui.label(file.as_str());
                                ui.label(what);
                                if ui.small_button("Restore").clicked() {
                                    target.send(
                                        commands,
                                        CurationAction::Restore,
                                        vec![(*file).clone()],
                                    );
                                }
                                ui.end_row();
                            }
                        });
                    if rows.len() > MAX_ROWS {
                        ui.label(format!(
                            "… and {} more (`transfer-workbench curate PROJECT list`)",
                            rows.len() - MAX_ROWS
                        ));
                    }
                });
        });
}
