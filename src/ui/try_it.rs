//! The "Try it" tab: the user drops images or a folder on the window, picks them, or types
//! a path, and sees what a chosen run says about each: the classes with their
//! probabilities and Grad-CAM, the predicted mask, or the boxes found. The images are only
//! read; nothing is added to the project.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::runtime::projects::ProjectRow;
use crate::runtime::runs::RunCatalogue;
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::runtime::try_it::{TryCard, TryCommand, TryRuntime};
use crate::runtime::{Loading, UiCommand};
use crate::ui::inspect_widgets::{fit, image_layers_ui};

/// Side of an image on a card, in points.
const CARD_IMAGE: f32 = 180.0;
/// Classes listed per card.
const TOP_CLASSES: usize = 3;

/// The Try-it tab's choices.
#[derive(Debug)]
pub struct TryView {
    /// The chosen run per project folder.
    run: HashMap<PathBuf, String>,
    /// A typed image or folder path.
    path_input: String,
    /// Draw Grad-CAM or the mask over the images.
    show_layer: bool,
}

impl Default for TryView {
    fn default() -> Self {
        Self {
            run: HashMap::new(),
            path_input: String::new(),
            show_layer: true,
        }
    }
}

impl TryView {
    /// The run that predicts for the project in `dir`, once the tab chose one.
    pub fn run_for(&self, dir: &Path) -> Option<&str> {
        self.run.get(dir).map(String::as_str)
    }

    /// Draws the tab for the project of `row`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        row: &ProjectRow,
        runs: &RunCatalogue,
        state: &TryRuntime,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let dir = &row.dir;
        let listed = match runs.get(dir) {
            Some(Loading::Ready(list)) => list.clone(),
            Some(Loading::Failed(message)) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
                return;
            }
            _ => {
                if runs.get(dir).is_none() {
                    commands.push(UiCommand::ListRuns(dir.clone()));
                }
                ui.spinner();
                return;
            }
        };
        // Runs with a checkpoint, newest first.
        let trained: Vec<String> = listed
            .iter()
            .rev()
            .filter(|r| r.epochs.0 > 0)
            .map(|r| r.id.clone())
            .collect();
        if trained.is_empty() {
            ui.label("This project has no trained run yet: train one in the Training tab, then try it on new images here.");
            return;
        }
        let run = self
            .run
            .entry(dir.clone())
            .or_insert_with(|| trained[0].clone());
        if !trained.contains(run) {
            run.clone_from(&trained[0]);
        }
        let run = run.clone();
        self.controls_ui(ui, dir, &run, &trained, state, commands);
        ui.separator();
        let cards = state.cards.get(&(dir.clone(), run.clone()));
        match cards {
            Some(cards) if !cards.is_empty() => {
                egui::ScrollArea::vertical()
                    .id_salt("try_cards")
                    .show(ui, |ui| {
                        // Rows of as many cards as fit, newest first.
                        let spacing = ui.spacing().item_spacing.x;
                        let card = CARD_IMAGE + 24.0 + spacing;
                        let per_row = ((ui.available_width() + spacing) / card).floor().max(1.0);
                        let newest_first: Vec<&TryCard> = cards.iter().rev().collect();
                        for row in newest_first.chunks(per_row as usize) {
                            ui.horizontal_top(|ui| {
                                for card in row {
                                    card_ui(ui, card, self.show_layer, thumbnails);
                                }
                            });
                        }
                    });
            }
            _ => {
                ui.weak(
                    "Drop images or a folder on the window, use Add images…, or type a path. \
                     They are predicted with the chosen run and not added to the project.",
                );
            }
        }
    }

    fn controls_ui(
        &mut self,
        ui: &mut egui::Ui,
        dir: &Path,
        run: &str,
        trained: &[String],
        state: &TryRuntime,
        commands: &mut Vec<UiCommand>,
    ) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Run").id;
            let mut chosen = run.to_owned();
            egui::ComboBox::new("try_run", "")
                .selected_text(chosen.clone())
                .show_ui(ui, |ui| {
                    for id in trained {
                        ui.selectable_value(&mut chosen, id.clone(), id);
                    }
                })
                .response
                .labelled_by(label);
            if chosen != run {
                self.run.insert(dir.to_owned(), chosen);
            }
            ui.separator();
            if ui
                .button("Add images…")
                .on_hover_text("The system's file dialog")
                .clicked()
            {
                commands.push(
                    TryCommand::Pick {
                        project: dir.to_owned(),
                        run: run.to_owned(),
                    }
                    .into(),
                );
            }
            let label = ui.label("Path").id;
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.path_input)
                        .id_salt("try_path")
                        .hint_text("an image file or a folder")
                        .desired_width(260.0),
                )
                .labelled_by(label);
            let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let typed = self.path_input.trim().to_owned();
            if (ui
                .add_enabled(!typed.is_empty(), egui::Button::new("Predict"))
                .clicked()
                || entered)
                && !typed.is_empty()
            {
                commands.push(
                    TryCommand::Predict {
                        project: dir.to_owned(),
                        run: run.to_owned(),
                        paths: vec![PathBuf::from(typed)],
                    }
                    .into(),
                );
            }
            ui.separator();
            ui.checkbox(&mut self.show_layer, "Grad-CAM / mask")
                .on_hover_text("Draw what the run looked at (classes) or its mask over each image");
            if !state.settled() {
                ui.spinner();
                match &state.progress {
                    Some(progress) => {
                        crate::ui::progress::progress_bar(ui, "Predicting", progress, 260.0)
                    }
                    None => {
                        ui.label("Predicting…");
                    }
                }
            }
        });
        if let Some(error) = &state.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
    }
}

/// One image: its picture with the layer or boxes, its name and the run's answer.
fn card_ui(ui: &mut egui::Ui, card: &TryCard, show_layer: bool, thumbnails: &mut ThumbnailCache) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(CARD_IMAGE + 8.0);
        ui.vertical(|ui| {
            let layer = match (&card.result, show_layer) {
                (Ok((_, Some(texture))), true) => vec![(texture, 0.5)],
                _ => Vec::new(),
            };
            let response = image_layers_ui(
                ui,
                thumbnails,
                Some(&card.path),
                ThumbnailSize::Preview,
                CARD_IMAGE,
                &layer,
            );
            let name = card.path.file_name().map_or_else(
                || card.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            ui.label(egui::RichText::new(name).small())
                .on_hover_text(card.path.display().to_string());
            match &card.result {
                Err(message) => {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                }
                Ok((outcome, _)) => {
                    if outcome.ranked.is_empty() {
                        let (w, h) = outcome.image_px;
                        let shown = fit(egui::vec2(w as f32, h as f32), response.rect);
                        let (sx, sy) = (
                            shown.width() / w.max(1) as f32,
                            shown.height() / h.max(1) as f32,
                        );
                        let painter = ui.painter_at(response.rect);
                        let stroke = egui::Stroke::new(2.0, egui::Color32::from_rgb(230, 159, 0));
                        for (_, _, [x0, y0, x1, y1]) in &outcome.boxes {
                            let rect = egui::Rect::from_min_max(
                                shown.min + egui::vec2(x0 * sx, y0 * sy),
                                shown.min + egui::vec2(x1 * sx, y1 * sy),
                            );
                            painter.rect_stroke(rect, 0.0, stroke, egui::StrokeKind::Middle);
                        }
                        ui.label(format!("{} object(s) found", outcome.boxes.len()));
                        for (label, score, _) in outcome.boxes.iter().take(TOP_CLASSES) {
                            ui.label(format!("{label} {:.0}%", score * 100.0));
                        }
                    } else {
                        if let Some((best, _)) = outcome.ranked.first() {
                            ui.strong(best);
                        }
                        for (name, p) in outcome.ranked.iter().take(TOP_CLASSES) {
                            ui.add(
                                egui::ProgressBar::new(*p as f32)
                                    .desired_width(CARD_IMAGE)
                                    .text(format!("{name}: {:.1}%", p * 100.0)),
                            );
                        }
                    }
                }
            }
        });
    });
}
