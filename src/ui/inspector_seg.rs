//! The Inspector for segmentation runs: a run's validation images one by one (arrow keys or
//! buttons, in split order or worst Dice first), each with independently toggled overlay
//! layers (prediction, ground truth, difference) filled or as outlines at a chosen opacity,
//! the image's Dice (per class for multi-class runs) and a legend of the colours; or the
//! images in the same order as a thumbnail grid with each one's Dice.

use std::path::Path;

use crate::inspect::overlay::{FALSE_NEGATIVE, FALSE_POSITIVE, WRONG_CLASS, class_colour};
use crate::inspect::segmentation::SegInspection;
use crate::runtime::UiCommand;
use crate::runtime::inspect::{InspectCommand, InspectData, Loading, RunKey};
use crate::runtime::inspect_seg::{SegCommand, SegLayerKey};
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::ui::gallery::{Caption, Gallery, GalleryCell, view_toggle_ui};
use crate::ui::inspect_widgets::image_layers_ui;
use crate::ui::inspector_nav::InspectorMode;

/// The order the images are stepped through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SegOrder {
    /// The validation split's order.
    #[default]
    Split,
    /// Lowest Dice first.
    WorstFirst,
}

impl SegOrder {
    fn name(self) -> &'static str {
        match self {
            SegOrder::Split => "Validation order",
            SegOrder::WorstFirst => "Worst Dice first",
        }
    }
}

/// Which overlay layers are drawn, and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegLayers {
    /// The predicted classes.
    pub prediction: bool,
    /// The true classes.
    pub ground_truth: bool,
    /// False positives and negatives.
    pub difference: bool,
    /// Outlines instead of filled regions.
    pub outlines: bool,
    /// Opacity of the layers, `0..=1`.
    pub opacity: f32,
}

impl Default for SegLayers {
    fn default() -> Self {
        Self {
            prediction: true,
            ground_truth: false,
            difference: false,
            outlines: false,
            opacity: 0.5,
        }
    }
}

/// The segmentation inspector's state.
pub struct SegInspectorView {
    order: SegOrder,
    /// Position in the ordered list (the grid's highlighted cell).
    position: usize,
    /// One image or the grid.
    mode: InspectorMode,
    /// The thumbnail grid.
    gallery: Gallery,
    layers: SegLayers,
    /// (run, order) and the list made for them.
    listed: Option<(String, SegOrder, Vec<usize>)>,
    /// The image index shown in the last frame.
    shown: Option<usize>,
}

impl Default for SegInspectorView {
    fn default() -> Self {
        Self {
            order: SegOrder::default(),
            position: 0,
            mode: InspectorMode::default(),
            gallery: Gallery::new("inspector_seg_gallery"),
            layers: SegLayers::default(),
            listed: None,
            shown: None,
        }
    }
}

impl SegInspectorView {
    /// One image or the grid.
    pub fn mode(&self) -> InspectorMode {
        self.mode
    }

    /// The validation image index shown in the last frame.
    pub fn shown(&self) -> Option<usize> {
        self.shown
    }

    /// The layer settings.
    pub fn layers(&self) -> SegLayers {
        self.layers
    }

    /// Lays out segmentation run `run` of the project at `project`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        run: &str,
        data: &InspectData,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        self.shown = None;
        let key: RunKey = (project.to_owned(), run.to_owned());
        let inspection = match data.seg.runs.get(&key) {
            None => {
                commands.push(UiCommand::Inspect(InspectCommand::Seg(SegCommand::Load(
                    key,
                ))));
                ui.spinner();
                return;
            }
            Some(state @ Loading::Running { .. }) => {
                let what = format!("Segmenting the validation images of {run}");
                crate::ui::progress::progress_bar(ui, &what, state, 480.0);
                return;
            }
            Some(Loading::Failed(message)) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
                return;
            }
            Some(Loading::Ready(inspection)) => inspection,
        };
        let list = self.list(run, inspection);
        self.toolbar_ui(ui, list.len());
        self.position = self.position.min(list.len().saturating_sub(1));
        let Some(&index) = list.get(self.position) else {
            ui.label("The run has no validation images.");
            return;
        };
        ui.separator();
        if self.mode == InspectorMode::Grid {
            let response =
                self.gallery
                    .ui(ui, thumbnails, list.len(), &mut self.position, |position| {
                        grid_cell(inspection, list[position])
                    });
            if response.opened.is_some() {
                self.mode = InspectorMode::Single;
            }
            return;
        }
        self.shown = Some(index);
        egui::ScrollArea::vertical()
            .id_salt("inspector_seg_body")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.horizontal_top(|ui| {
                    self.image_ui(ui, &key, inspection, index, data, thumbnails, commands);
                    ui.vertical(|ui| {
                        dice_ui(ui, inspection, index);
                        ui.separator();
                        self.layer_controls_ui(ui);
                        ui.separator();
                        legend_ui(ui, inspection);
                        ui.separator();
                        ui.weak(
                            "Grad-CAM, embeddings, neighbours and the confusion matrix are \
                             made for classification runs.",
                        );
                    });
                });
            });
    }

    /// The ordered list for `run`, made again when the run or the order changed.
    fn list(&mut self, run: &str, inspection: &SegInspection) -> Vec<usize> {
        match &self.listed {
            Some((r, o, list)) if r == run && *o == self.order => list.clone(),
            _ => {
                let list = match self.order {
                    SegOrder::Split => (0..inspection.images.len()).collect(),
                    SegOrder::WorstFirst => inspection.worst_first(),
                };
                self.listed = Some((run.to_owned(), self.order, list.clone()));
                list
            }
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, count: usize) {
        // The grid takes the arrow keys itself.
        let arrows = match self.mode {
            InspectorMode::Single => super::inspect_widgets::arrow_keys(ui),
            InspectorMode::Grid => (false, false),
        };
        ui.horizontal(|ui| {
            let before = self.order;
            let label = ui.label("Order");
            egui::ComboBox::from_id_salt("inspect_seg_order")
                .selected_text(self.order.name())
                .show_ui(ui, |ui| {
                    for order in [SegOrder::Split, SegOrder::WorstFirst] {
                        ui.selectable_value(&mut self.order, order, order.name());
                    }
                })
                .response
                .labelled_by(label.id);
            if self.order != before {
                self.position = 0;
            }
            match self.mode {
                InspectorMode::Single => {
                    super::inspect_widgets::stepper_ui(ui, &mut self.position, count, arrows);
                }
                InspectorMode::Grid => {
                    ui.label(format!("{count} images"));
                }
            }
            ui.separator();
            if view_toggle_ui(ui, &mut self.mode) {
                self.gallery.reveal();
            }
        });
    }

    /// The image with its chosen layers (asked for when missing) and its id.
    #[allow(clippy::too_many_arguments)] // The view's pieces, passed apart for the borrows.
    fn image_ui(
        &self,
        ui: &mut egui::Ui,
        key: &RunKey,
        inspection: &SegInspection,
        index: usize,
        data: &InspectData,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let image = &inspection.images[index];
        let layers = self.layers;
        let any = layers.prediction || layers.ground_truth || layers.difference;
        // With both class layers on (filled), the ground truth is drawn as outlines over the
        // filled prediction: they share the class colours and would be indistinguishable.
        let truth_as_outline = layers.prediction && layers.ground_truth && !layers.outlines;
        let mut request = |outline: bool| {
            let layer_key = SegLayerKey {
                run: key.clone(),
                index,
                outline,
            };
            let state = data.seg.layers.get(&layer_key);
            if state.is_none() {
                let command = SegCommand::Layers(layer_key);
                commands.push(UiCommand::Inspect(InspectCommand::Seg(command)));
            }
            state
        };
        let state = if any { request(layers.outlines) } else { None };
        let truth_outline = if truth_as_outline {
            request(true)
        } else {
            None
        };
        ui.vertical(|ui| {
            let side = ui
                .available_height()
                .clamp(160.0, 480.0)
                .min(ui.available_width() * 0.6);
            let mut drawn = Vec::new();
            if let Some(Loading::Ready(textures)) = state {
                let truth = match truth_outline {
                    Some(Loading::Ready(outlines)) => &outlines.ground_truth,
                    _ => &textures.ground_truth,
                };
                for (on, texture) in [
                    (layers.prediction, &textures.prediction),
                    (layers.ground_truth, truth),
                    (layers.difference, &textures.difference),
                ] {
                    if on {
                        drawn.push((texture, layers.opacity));
                    }
                }
            }
            let path = Some(image.path.as_path());
            image_layers_ui(ui, thumbnails, path, ThumbnailSize::Preview, side, &drawn);
            ui.label(format!("Image: {}", image.id));
            let (width_px, height_px) = image.size_px;
            ui.weak(format!("{width_px} x {height_px} px"));
            match state {
                Some(Loading::Running { .. }) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Drawing the overlays…");
                    });
                }
                Some(Loading::Failed(message)) => {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                }
                _ => {}
            }
        });
    }

    fn layer_controls_ui(&mut self, ui: &mut egui::Ui) {
        let layers = &mut self.layers;
        ui.label("Overlay layers");
        ui.checkbox(&mut layers.prediction, "Prediction");
        ui.checkbox(&mut layers.ground_truth, "Ground truth");
        ui.checkbox(&mut layers.difference, "Difference");
        ui.checkbox(&mut layers.outlines, "Outlines")
            .on_hover_text("Draw only the borders of the regions");
        ui.horizontal(|ui| {
            let label = ui.label("Overlay opacity");
            ui.add(egui::Slider::new(&mut layers.opacity, 0.05..=1.0))
                .labelled_by(label.id);
        });
    }
}

/// A grid cell of image `index`: the image, its Dice and its id.
fn grid_cell(inspection: &SegInspection, index: usize) -> GalleryCell<'_> {
    let image = &inspection.images[index];
    let dice = inspection
        .score(index)
        .map_or_else(|| "Dice n/a".to_owned(), |d| format!("Dice {d:.3}"));
    GalleryCell {
        path: Some(image.path.as_path()),
        name: format!("{}: {dice}", image.id),
        captions: vec![
            Caption {
                text: dice,
                color: None,
            },
            Caption {
                text: image.id.clone(),
                color: None,
            },
        ],
    }
}

/// The image's Dice (per class for multi-class runs) and the run's mean.
fn dice_ui(ui: &mut egui::Ui, inspection: &SegInspection, index: usize) {
    let scores = &inspection.images[index].dice;
    let heading = match inspection.score(index) {
        Some(score) if inspection.binary() => format!("Dice: {score:.3}"),
        Some(score) => format!("Dice: {score:.3} (mean over foreground classes)"),
        None => "Dice: n/a (no foreground in the prediction or the ground truth)".to_owned(),
    };
    ui.heading(heading);
    if !inspection.binary() {
        for (class, score) in scores.per_class.iter().enumerate().skip(1) {
            let name = inspection.classes.get(class).map_or("?", String::as_str);
            let value = score.map_or_else(|| "absent".to_owned(), |s| format!("{s:.3}"));
            ui.label(format!("Dice of {name}: {value}"));
        }
    }
    if !inspection.skipped.is_empty() {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "{} validation image(s) left out: {}",
                inspection.skipped.len(),
                inspection.skipped.join("; ")
            ),
        );
    }
    if let Some(mean) = inspection.mean_score() {
        ui.label(format!(
            "Mean Dice over {} validation images: {mean:.3}",
            inspection.images.len()
        ));
    }
}

/// Colour swatches: the classes (prediction and ground truth) and the kinds of error.
fn legend_ui(ui: &mut egui::Ui, inspection: &SegInspection) {
    ui.label("Legend");
    let swatch = |ui: &mut egui::Ui, [r, g, b]: [u8; 3], text: &str| {
        ui.horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(14.0, 14.0), egui::Sense::hover());
            ui.painter()
                .rect_filled(rect, 2.0, egui::Color32::from_rgb(r, g, b));
            ui.label(text);
        });
    };
    for (class, name) in inspection.classes.iter().enumerate().skip(1) {
        let colour = class_colour(u8::try_from(class).unwrap_or(u8::MAX));
        swatch(
            ui,
            colour,
            &format!("{name} (prediction filled, ground truth outlined when both are on)"),
        );
    }
    swatch(ui, FALSE_POSITIVE, "False positive (predicted, not true)");
    swatch(ui, FALSE_NEGATIVE, "False negative (true, missed)");
    if !inspection.binary() {
        swatch(ui, WRONG_CLASS, "Wrong foreground class");
    }
}
