//! The Inspector for detection runs: a run's validation images one by one (arrow keys or
//! buttons, in split order or worst first), each with its predicted and annotated boxes.
//! Predictions are matched to the boxes at a chosen IoU (COCO's rule): true positives, false
//! positives and misses are drawn in colour-blind-safe colours with a second cue each (solid,
//! dashed, thick with a cross). A score-threshold slider redraws at once (the detections of
//! every image are already computed); the image's AP and F1, the run's COCO metrics, per-class
//! AP and precision-recall curves sit beside it. The grid view shows the images in the same
//! order as thumbnails, each with its F1 and counts.

use std::path::Path;

use egui_plot::{Legend, Line, PlotPoints};

use crate::inspect::detection::{DEFAULT_SCORE_THRESHOLD, DetImage, DetInspection};
use crate::runtime::UiCommand;
use crate::runtime::inspect::InspectData;
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::train::coco_eval::{ImageMatch, summary_lines};
use crate::ui::det_boxes::{BoxStyle, draw_boxes, legend_ui, match_controls_ui};
use crate::ui::gallery::{Caption, Gallery, GalleryCell, view_toggle_ui};
use crate::ui::inspect_widgets::{det_inspection_ui, image_layers_ui};
use crate::ui::inspector_nav::InspectorMode;
use crate::ui::palette::Outcome;
use crate::ui::plot_style::chart;

/// The order the images are stepped through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DetOrder {
    /// The validation split's order.
    #[default]
    Split,
    /// Lowest F1 at the current threshold and IoU first.
    WorstFirst,
}

impl DetOrder {
    fn name(self) -> &'static str {
        match self {
            DetOrder::Split => "Validation order",
            DetOrder::WorstFirst => "Worst images first",
        }
    }
}

/// The detection inspector's state.
pub struct DetInspectorView {
    order: DetOrder,
    /// Position in the ordered list (the grid's highlighted cell).
    position: usize,
    /// One image or the grid.
    mode: InspectorMode,
    /// The thumbnail grid.
    gallery: Gallery,
    /// Detections below this score are not drawn nor counted.
    pub threshold: f32,
    /// The IoU at which a detection matches a box.
    pub iou: f32,
    /// Draw the annotated boxes too.
    show_truth: bool,
    /// The image index shown in the last frame.
    shown: Option<usize>,
    /// The order made for (run, order, IoU, threshold), made again when one changes.
    listed: Option<(String, DetOrder, f32, f32, Vec<usize>)>,
    /// Boxes drawn in the last frame (for tests): detections at or above the threshold.
    drawn: usize,
}

impl Default for DetInspectorView {
    fn default() -> Self {
        Self {
            order: DetOrder::default(),
            position: 0,
            mode: InspectorMode::default(),
            gallery: Gallery::new("inspector_det_gallery"),
            threshold: DEFAULT_SCORE_THRESHOLD,
            iou: 0.5,
            show_truth: true,
            shown: None,
            listed: None,
            drawn: 0,
        }
    }
}

impl DetInspectorView {
    /// One image or the grid.
    pub fn mode(&self) -> InspectorMode {
        self.mode
    }

    /// The validation image index shown in the last frame.
    pub fn shown(&self) -> Option<usize> {
        self.shown
    }

    /// Detections drawn in the last frame.
    pub fn drawn(&self) -> usize {
        self.drawn
    }

    /// Lays out detection run `run` of the project at `project`.
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
        self.drawn = 0;
        let Some(inspection) = det_inspection_ui(ui, project, run, data, commands) else {
            return;
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
            let (iou, threshold) = (self.iou, self.threshold);
            let response =
                self.gallery
                    .ui(ui, thumbnails, list.len(), &mut self.position, |position| {
                        grid_cell(&inspection.images[list[position]], iou, threshold)
                    });
            if response.opened.is_some() {
                self.mode = InspectorMode::Single;
            }
            return;
        }
        self.shown = Some(index);
        egui::ScrollArea::vertical()
            .id_salt("inspector_det_body")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.horizontal_top(|ui| {
                    let image = &inspection.images[index];
                    let matched = image.matched(self.iou, self.threshold);
                    self.image_ui(ui, inspection, image, &matched, thumbnails);
                    ui.vertical(|ui| {
                        image_facts_ui(ui, inspection, image, &matched, self.iou);
                        ui.separator();
                        legend_ui(ui);
                        ui.separator();
                        run_metrics_ui(ui, inspection);
                    });
                });
            });
    }

    /// The images in the chosen order, made again only when the run, the order, the IoU or
    /// the threshold changed (worst first matches every image).
    fn list(&mut self, run: &str, inspection: &DetInspection) -> Vec<usize> {
        let key = (run.to_owned(), self.order, self.iou, self.threshold);
        if let Some((r, o, iou, t, list)) = &self.listed
            && (r, *o, *iou, *t) == (&key.0, key.1, key.2, key.3)
        {
            return list.clone();
        }
        let mut list: Vec<usize> = (0..inspection.images.len()).collect();
        if self.order == DetOrder::WorstFirst {
            let f1: Vec<f64> = inspection
                .images
                .iter()
                .map(|image| image.matched(self.iou, self.threshold).f1.unwrap_or(1.0))
                .collect();
            list.sort_by(|&a, &b| f1[a].total_cmp(&f1[b]));
        }
        self.listed = Some((key.0, key.1, key.2, key.3, list.clone()));
        list
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, count: usize) {
        // The grid takes the arrow keys itself.
        let arrows = match self.mode {
            InspectorMode::Single => super::inspect_widgets::arrow_keys(ui),
            InspectorMode::Grid => (false, false),
        };
        ui.horizontal_wrapped(|ui| {
            let before = self.order;
            let label = ui.label("Order");
            egui::ComboBox::from_id_salt("inspect_det_order")
                .selected_text(self.order.name())
                .show_ui(ui, |ui| {
                    for order in [DetOrder::Split, DetOrder::WorstFirst] {
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
        ui.horizontal_wrapped(|ui| {
            match_controls_ui(ui, "inspect_det_iou", &mut self.threshold, &mut self.iou);
            ui.checkbox(&mut self.show_truth, "Annotated boxes");
        });
    }

    /// The image with its boxes.
    fn image_ui(
        &mut self,
        ui: &mut egui::Ui,
        inspection: &DetInspection,
        image: &DetImage,
        matched: &ImageMatch,
        thumbnails: &mut ThumbnailCache,
    ) {
        ui.vertical(|ui| {
            let side = ui
                .available_height()
                .clamp(200.0, 520.0)
                .min(ui.available_width() * 0.6);
            let path = Some(image.path.as_path());
            let response = image_layers_ui(ui, thumbnails, path, ThumbnailSize::Preview, side, &[]);
            let style = BoxStyle {
                truth: self.show_truth,
                labels: true,
            };
            self.drawn = draw_boxes(
                ui,
                response.rect,
                &inspection.classes,
                image,
                matched,
                style,
            );
            let (w, h) = image.size_px;
            ui.label(format!("Image: {}", image.id));
            ui.weak(format!("{w} x {h} px"));
        });
    }
}

/// A grid cell of `image`: the image, its F1 and its counts at the IoU and score threshold.
fn grid_cell(image: &DetImage, iou: f32, threshold: f32) -> GalleryCell<'_> {
    let matched = image.matched(iou, threshold);
    let f1 = matched
        .f1
        .map_or_else(|| "F1 n/a".to_owned(), |f1| format!("F1 {f1:.2}"));
    let (right, wrong, missed) = (
        matched.true_positives,
        matched.false_positives,
        matched.missed.len(),
    );
    let (r, w) = (Outcome::Right.mark(), Outcome::Wrong.mark());
    GalleryCell {
        path: Some(image.path.as_path()),
        name: format!(
            "{}: {f1}, {right} right, {wrong} wrong, {missed} missed",
            image.id
        ),
        captions: vec![
            Caption {
                text: f1,
                color: None,
            },
            Caption {
                text: format!("{right}{r} {wrong}{w} {missed} missed"),
                color: None,
            },
        ],
    }
}

/// The image's counts, F1 and AP at the chosen IoU.
fn image_facts_ui(
    ui: &mut egui::Ui,
    inspection: &DetInspection,
    image: &DetImage,
    matched: &ImageMatch,
    iou: f32,
) {
    let percent = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{:.3}", v));
    ui.heading(format!(
        "F1 {} · AP@{iou:.2} {}",
        percent(matched.f1),
        percent(matched.ap)
    ));
    ui.label(format!(
        "{} annotated box(es); {} found right, {} wrong, {} missed",
        image.truth.len(),
        matched.true_positives,
        matched.false_positives,
        matched.missed.len()
    ));
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
}

/// The run's COCO metrics, per-class AP and precision-recall curves at IoU 0.5.
fn run_metrics_ui(ui: &mut egui::Ui, inspection: &DetInspection) {
    let coco = &inspection.coco;
    ui.label(format!(
        "The run on {} validation images (COCO's metrics, every box):",
        inspection.images.len()
    ));
    let cell = |v: f64| {
        if v < 0.0 {
            "n/a".to_owned()
        } else {
            format!("{v:.3}")
        }
    };
    let lines = summary_lines(&coco.stats);
    egui::Grid::new("det_coco_stats")
        .striped(true)
        .show(ui, |ui| {
            for (row, first) in [("AP", 0), ("AR", 6)] {
                let heads: [&str; 6] = if row == "AP" {
                    ["AP@[.5:.95]", "AP@.5", "AP@.75", "small", "medium", "large"]
                } else {
                    ["AR@1", "AR@10", "AR@100", "small", "medium", "large"]
                };
                for head in heads {
                    ui.strong(head);
                }
                ui.end_row();
                for i in first..first + 6 {
                    // Each value names pycocotools' line on hover ("n/a": no box of that size).
                    let text = lines.get(i).map_or("", String::as_str).trim().to_owned();
                    ui.label(cell(coco.stats[i])).on_hover_text(text);
                }
                ui.end_row();
            }
        });
    egui::Grid::new("det_per_class")
        .striped(true)
        .show(ui, |ui| {
            ui.strong("Class");
            ui.strong("AP@[.5:.95]");
            ui.strong("AP@.5");
            ui.end_row();
            for (class, name) in inspection.classes.iter().enumerate() {
                let value = |v: Option<&Option<f64>>| {
                    v.copied()
                        .flatten()
                        .map_or_else(|| "no boxes".to_owned(), |v| format!("{v:.3}"))
                };
                ui.label(name);
                ui.label(value(coco.per_class_ap.get(class)));
                ui.label(value(coco.per_class_ap50.get(class)));
                ui.end_row();
            }
        });
    ui.label("Precision against recall at IoU 0.5, per class");
    chart(ui, "det_pr_curves", "recall", "precision")
        .style(|plot| {
            plot.height(220.0)
                .width(360.0)
                .legend(Legend::default())
                .include_x(0.0)
                .include_x(1.0)
                .include_y(0.0)
                .include_y(1.0)
        })
        .show(ui, |plot| {
            for (class, curve) in coco.pr_curves.iter().enumerate() {
                let Some(curve) = curve else {
                    continue;
                };
                let points: PlotPoints = curve
                    .recall_thresholds
                    .iter()
                    .zip(&curve.precision)
                    .map(|(&r, &p)| [r, p])
                    .collect();
                let name = inspection.classes.get(class).map_or("?", String::as_str);
                plot.line(
                    Line::new(name.to_owned(), points)
                        .color(super::inspect_widgets::class_color(class)),
                );
            }
        });
}
