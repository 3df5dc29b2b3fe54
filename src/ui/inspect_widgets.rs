//! Pieces shared by the Inspector, Embeddings and Compare tabs: the run picker, a run's load
//! state (classification or detection), images from the thumbnail cache (with an optional heatmap layer), probability bars.

use std::path::Path;
use std::sync::Arc;

use crate::inspect::detection::DetInspection;
use crate::inspect::task::inspect_task;
use crate::runtime::UiCommand;
use crate::runtime::inspect::{InspectCommand, InspectData, Loading, RunInspection};
use crate::runtime::inspect_det::DetCommand;
use crate::runtime::runs::RunCatalogue;
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailKey, ThumbnailSize};
use crate::train::catalogue::RunSummary;
use crate::ui::palette::Outcome;

pub use super::palette::class_color;

/// The project's runs, asking for them the first time; shows why there are none.
pub fn runs_ui<'a>(
    ui: &mut egui::Ui,
    project: &Path,
    runs: &'a RunCatalogue,
    commands: &mut Vec<UiCommand>,
) -> Option<&'a Arc<Vec<RunSummary>>> {
    match runs.get(project) {
        None => {
            commands.push(UiCommand::ListRuns(project.to_owned()));
            ui.spinner();
            None
        }
        Some(Loading::Running { .. }) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Listing the runs…");
            });
            None
        }
        Some(Loading::Failed(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
            None
        }
        Some(Loading::Ready(list)) => {
            crate::ui::run_problems::run_problems_ui(ui, list, runs.damaged(project));
            if !list.is_empty() {
                return Some(list);
            }
            if runs.damaged(project).is_empty() {
                ui.label("This project has no runs yet: train one first.");
            } else {
                ui.label("This project has no run that can be read.");
            }
            None
        }
    }
}

/// A combo box of the project's runs; picks the newest when none is chosen.
pub fn run_picker_ui(ui: &mut egui::Ui, runs: &[RunSummary], selected: &mut Option<String>) {
    let usable: Vec<&RunSummary> = runs.iter().collect();
    if selected
        .as_ref()
        .is_none_or(|s| !usable.iter().any(|r| &r.id == s))
    {
        *selected = usable.last().map(|r| r.id.clone());
    }
    let text = selected.clone().unwrap_or_else(|| "no run".to_owned());
    ui.horizontal(|ui| {
        let label = ui.label("Run");
        egui::ComboBox::from_id_salt("inspect_run")
            .selected_text(text)
            .show_ui(ui, |ui| {
                for run in &usable {
                    let task = match inspect_task(run.task).run_tag() {
                        "" => String::new(),
                        tag => format!("{tag}, "),
                    };
                    let label = format!(
                        "{} ({task}{}, {}, {} epochs)",
                        run.id, run.backbone, run.strategy, run.epochs_planned
                    );
                    ui.selectable_value(selected, Some(run.id.clone()), label);
                }
            })
            .response
            .labelled_by(label.id);
    });
}

/// A run's inspection, asking for it the first time; shows progress or the failure.
pub fn inspection_ui<'a>(
    ui: &mut egui::Ui,
    project: &Path,
    run: &str,
    data: &'a InspectData,
    commands: &mut Vec<UiCommand>,
) -> Option<&'a Arc<RunInspection>> {
    let key = (project.to_owned(), run.to_owned());
    match data.inspections.get(&key) {
        None => {
            commands.push(UiCommand::Inspect(InspectCommand::LoadRun(key)));
            ui.spinner();
            None
        }
        Some(state @ Loading::Running { .. }) => {
            let what = format!("Predicting the validation images of {run}");
            crate::ui::progress::progress_bar(ui, &what, state, 480.0);
            None
        }
        Some(Loading::Failed(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
            None
        }
        Some(Loading::Ready(run)) => Some(run),
    }
}

/// A detection run's boxes and metrics, asking for them the first time (one job per run,
/// kept for every view); shows progress or the failure.
pub fn det_inspection_ui<'a>(
    ui: &mut egui::Ui,
    project: &Path,
    run: &str,
    data: &'a InspectData,
    commands: &mut Vec<UiCommand>,
) -> Option<&'a Arc<DetInspection>> {
    let key = (project.to_owned(), run.to_owned());
    match data.det.runs.get(&key) {
        None => {
            commands.push(UiCommand::Inspect(InspectCommand::Det(DetCommand::Load(
                key,
            ))));
            ui.spinner();
            None
        }
        Some(state @ Loading::Running { .. }) => {
            let what = format!("Detecting objects in the validation images of {run}");
            crate::ui::progress::progress_bar(ui, &what, state, 480.0);
            None
        }
        Some(Loading::Failed(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("{run}: {message}"));
            None
        }
        Some(Loading::Ready(run)) => Some(run),
    }
}

/// An image (from the thumbnail cache) fitted into a `side` x `side` square, with an
/// optional layer drawn over it at `opacity`; the response senses clicks.
pub fn image_ui(
    ui: &mut egui::Ui,
    thumbnails: &mut ThumbnailCache,
    path: Option<&Path>,
    size: ThumbnailSize,
    side: f32,
    layer: Option<(&egui::TextureHandle, f32)>,
) -> egui::Response {
    image_layers_ui(ui, thumbnails, path, size, side, layer.as_slice())
}

/// [`image_ui`] with any number of layers, drawn in order, each at its opacity.
pub fn image_layers_ui(
    ui: &mut egui::Ui,
    thumbnails: &mut ThumbnailCache,
    path: Option<&Path>,
    size: ThumbnailSize,
    side: f32,
    layers: &[(&egui::TextureHandle, f32)],
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::click());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
    let Some(path) = path else {
        return response;
    };
    let key = ThumbnailKey {
        image: path.to_owned(),
        mask: None,
        size,
    };
    let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
    match thumbnails.get(&key) {
        Some(Ok(thumbnail)) => {
            let fitted = fit(thumbnail.texture.size_vec2(), rect);
            painter.image(thumbnail.texture.id(), fitted, uv, egui::Color32::WHITE);
            for &(texture, opacity) in layers {
                let tint = egui::Color32::from_white_alpha((opacity.clamp(0.0, 1.0) * 255.0) as u8);
                painter.image(texture.id(), fitted, uv, tint);
            }
        }
        Some(Err(message)) => {
            let font = egui::TextStyle::Small.resolve(ui.style());
            let color = ui.visuals().error_fg_color;
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                message,
                font,
                color,
            );
        }
        None => {
            let font = egui::TextStyle::Small.resolve(ui.style());
            let color = ui.visuals().weak_text_color();
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "loading",
                font,
                color,
            );
        }
    }
    response
}

/// The largest rectangle of `size`'s aspect ratio centred in `bounds`.
pub fn fit(size: egui::Vec2, bounds: egui::Rect) -> egui::Rect {
    let scale = (bounds.width() / size.x.max(1.0)).min(bounds.height() / size.y.max(1.0));
    egui::Rect::from_center_size(bounds.center(), size * scale)
}

/// Width of a probability bar in points, at most and at least.
const BAR_WIDTH: std::ops::RangeInclusive<f32> = 70.0..=160.0;
/// Width of a probability row's other columns (swatch, name, share, marks), about.
const BAR_ROW_REST: f32 = 320.0;

/// One row per class: its colour swatch, its name, a bar of the probability the model gives
/// it and the share; the predicted class is marked ✔ or ✖ (against `truth`), the true
/// class is named so.
pub fn probability_bars_ui(
    ui: &mut egui::Ui,
    classes: &[String],
    probabilities: &[f32],
    (truth, predicted): (usize, usize),
) {
    let bar_width =
        (ui.available_width() - BAR_ROW_REST).clamp(*BAR_WIDTH.start(), *BAR_WIDTH.end());
    egui::Grid::new("probability_bars")
        .num_columns(5)
        .min_col_width(0.0)
        .spacing([6.0, 3.0])
        .show(ui, |ui| {
            for (class, (name, &p)) in classes.iter().zip(probabilities).enumerate() {
                let height = ui.text_style_height(&egui::TextStyle::Body);
                let (swatch, response) =
                    ui.allocate_exact_size(egui::vec2(10.0, height), egui::Sense::hover());
                response.widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::Image, true, format!("Colour of {name}"))
                });
                let square = egui::Rect::from_center_size(swatch.center(), egui::vec2(10.0, 10.0));
                ui.painter().rect_filled(square, 2.0, class_color(class));
                ui.label(name);
                let (row, _) =
                    ui.allocate_exact_size(egui::vec2(bar_width, height), egui::Sense::hover());
                let bar = row.shrink2(egui::vec2(0.0, height * 0.15));
                let painter = ui.painter();
                painter.rect_filled(bar, 2.0, ui.visuals().extreme_bg_color);
                let mut filled = bar;
                filled.set_width(bar_width * p.clamp(0.0, 1.0));
                painter.rect_filled(filled, 2.0, class_color(class));
                ui.label(format!("{:.1}%", p * 100.0));
                let mut notes = Vec::new();
                if class == predicted {
                    notes.push(Outcome::of(truth, class).rich(ui, "predicted"));
                }
                if class == truth {
                    notes.push(egui::RichText::new("true class").strong());
                }
                ui.horizontal(|ui| {
                    for note in notes {
                        ui.label(note);
                    }
                });
                ui.end_row();
            }
        });
}

/// The left and right arrow presses of this frame (consumed), unless a widget has the
/// keyboard focus (then they belong to it).
pub fn arrow_keys(ui: &egui::Ui) -> (bool, bool) {
    let typing = ui.ctx().memory(|m| m.focused().is_some());
    ui.ctx().input_mut(|i| {
        (
            !typing && i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowLeft),
            !typing && i.consume_key(egui::Modifiers::NONE, egui::Key::ArrowRight),
        )
    })
}

/// Previous / Next buttons and "Image N of COUNT", moving `position` within `0..count` by
/// the buttons or the `(left, right)` arrow presses of [`arrow_keys`]; whether either was
/// pressed (even at an end of the list).
pub fn stepper_ui(
    ui: &mut egui::Ui,
    position: &mut usize,
    count: usize,
    arrows: (bool, bool),
) -> bool {
    let (left, right) = arrows;
    let previous = ui.button("Previous").on_hover_text("Left arrow").clicked();
    let next = ui.button("Next").on_hover_text("Right arrow").clicked();
    if (previous || left) && *position > 0 {
        *position -= 1;
    }
    if (next || right) && *position + 1 < count {
        *position += 1;
    }
    ui.label(format!("Image {} of {count}", (*position + 1).min(count)));
    previous || left || next || right
}
