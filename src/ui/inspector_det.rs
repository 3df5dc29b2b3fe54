//! The Inspector for detection runs: a run's validation images one by one (arrow keys or
//! buttons, in split order or worst first), each with its predicted and annotated boxes.
//! Predictions are matched to the boxes at a chosen IoU (COCO's rule): true positives, false
//! positives and misses are drawn in colour-blind-safe colours with a second cue each (solid,
//! dashed, thick with a cross). A score-threshold slider redraws at once (the detections of
//! every image are already computed); the image's AP and F1, the run's COCO metrics, per-class
//! AP and precision-recall curves sit beside it.

use std::path::Path;

use egui::{Color32, Stroke};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::data::boxes::PixelBox;
use crate::inspect::detection::{DEFAULT_SCORE_THRESHOLD, DetImage, DetInspection};
use crate::runtime::UiCommand;
use crate::runtime::inspect::{InspectCommand, InspectData, Loading, RunKey};
use crate::runtime::inspect_det::DetCommand;
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::train::coco_eval::{DetectionOutcome, ImageMatch, summary_lines};
use crate::ui::inspect_widgets::{fit, image_layers_ui};

/// True positives (Okabe-Ito blue), solid.
const TRUE_POSITIVE: Color32 = Color32::from_rgb(0, 114, 178);
/// False positives (Okabe-Ito orange), dashed.
const FALSE_POSITIVE: Color32 = Color32::from_rgb(230, 159, 0);
/// Missed objects (Okabe-Ito vermillion), thick, with a cross.
const MISSED: Color32 = Color32::from_rgb(213, 94, 0);
/// Detections on a crowd region (neither right nor wrong), grey.
const IGNORED: Color32 = Color32::from_rgb(150, 150, 150);

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
    /// Position in the ordered list.
    position: usize,
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
        let key: RunKey = (project.to_owned(), run.to_owned());
        let inspection = match data.det.runs.get(&key) {
            None => {
                commands.push(UiCommand::Inspect(InspectCommand::Det(DetCommand::Load(
                    key,
                ))));
                ui.spinner();
                return;
            }
            Some(Loading::Running { done, total }) => {
                let fraction = *done as f32 / (*total).max(1) as f32;
                ui.add(egui::ProgressBar::new(fraction).text(format!(
                    "Detecting objects in the validation images of {run}: {done} of {total}"
                )));
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
        self.shown = Some(index);
        ui.separator();
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
        let arrows = super::inspect_widgets::arrow_keys(ui);
        ui.horizontal_wrapped(|ui| {
            let before = self.order;
            ui.label("Order");
            egui::ComboBox::from_id_salt("inspect_det_order")
                .selected_text(self.order.name())
                .show_ui(ui, |ui| {
                    for order in [DetOrder::Split, DetOrder::WorstFirst] {
                        ui.selectable_value(&mut self.order, order, order.name());
                    }
                });
            if self.order != before {
                self.position = 0;
            }
            super::inspect_widgets::stepper_ui(ui, &mut self.position, count, arrows);
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("Score threshold");
            ui.add(egui::Slider::new(&mut self.threshold, 0.01..=0.99).fixed_decimals(2))
                .on_hover_text(
                    "Boxes scored below this are not drawn nor counted (the run's COCO metrics \
                     use every box)",
                );
            ui.label("Match at IoU");
            egui::ComboBox::from_id_salt("inspect_det_iou")
                .selected_text(format!("{:.2}", self.iou))
                .show_ui(ui, |ui| {
                    for iou in [0.3, 0.5, 0.75] {
                        ui.selectable_value(&mut self.iou, iou, format!("{iou:.2}"));
                    }
                })
                .response
                .on_hover_text(
                    "A detection is right when it overlaps a box of its class this much",
                );
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
            let (w, h) = image.size_px;
            let frame = fit(egui::vec2(w as f32, h as f32), response.rect);
            let to_screen = |b: PixelBox| {
                let (sx, sy) = (
                    frame.width() / w.max(1) as f32,
                    frame.height() / h.max(1) as f32,
                );
                egui::Rect::from_min_max(
                    frame.min + egui::vec2(b.x0 * sx, b.y0 * sy),
                    frame.min + egui::vec2(b.x1 * sx, b.y1 * sy),
                )
            };
            let painter = ui.painter_at(response.rect);
            let font = egui::TextStyle::Small.resolve(ui.style());
            if self.show_truth {
                for (i, truth) in image.truth.iter().enumerate() {
                    let rect = to_screen(truth.bbox);
                    if matched.missed.contains(&i) {
                        painter.rect_stroke(
                            rect,
                            0.0,
                            Stroke::new(3.0, MISSED),
                            egui::StrokeKind::Outside,
                        );
                        painter.line_segment(
                            [rect.left_top(), rect.right_bottom()],
                            Stroke::new(1.0, MISSED),
                        );
                        painter.line_segment(
                            [rect.right_top(), rect.left_bottom()],
                            Stroke::new(1.0, MISSED),
                        );
                    } else {
                        let colour = if truth.crowd {
                            IGNORED
                        } else {
                            Color32::from_white_alpha(200)
                        };
                        painter.rect_stroke(
                            rect,
                            0.0,
                            Stroke::new(1.0, colour),
                            egui::StrokeKind::Outside,
                        );
                    }
                }
            }
            for m in &matched.detections {
                let Some(found) = image.found.get(m.detection) else {
                    continue;
                };
                let rect = to_screen(found.bbox);
                let (colour, dashed) = match m.outcome {
                    DetectionOutcome::TruePositive { .. } => (TRUE_POSITIVE, false),
                    DetectionOutcome::FalsePositive => (FALSE_POSITIVE, true),
                    DetectionOutcome::Ignored { .. } => (IGNORED, true),
                };
                let stroke = Stroke::new(2.0, colour);
                if dashed {
                    let corners = [
                        rect.left_top(),
                        rect.right_top(),
                        rect.right_bottom(),
                        rect.left_bottom(),
                        rect.left_top(),
                    ];
                    painter.extend(egui::Shape::dashed_line(&corners, stroke, 5.0, 3.0));
                } else {
                    painter.rect_stroke(rect, 0.0, stroke, egui::StrokeKind::Inside);
                }
                let name = inspection
                    .classes
                    .get(found.class)
                    .map_or("?", String::as_str);
                let text = format!("{name} {:.2}", found.score);
                let galley = painter.layout_no_wrap(text, font.clone(), Color32::WHITE);
                let at = rect.left_top() - egui::vec2(0.0, galley.size().y);
                let background = egui::Rect::from_min_size(at, galley.size());
                painter.rect_filled(background, 0.0, colour);
                painter.galley(at, galley, Color32::WHITE);
                self.drawn += 1;
            }
            ui.label(format!("Image: {}", image.id));
            ui.weak(format!("{w} x {h} px"));
        });
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

/// The colours and their second cues.
fn legend_ui(ui: &mut egui::Ui) {
    ui.label("Legend");
    for (colour, text) in [
        (TRUE_POSITIVE, "Right: matches an annotated box (solid)"),
        (
            FALSE_POSITIVE,
            "Wrong: matches no box of its class (dashed)",
        ),
        (
            MISSED,
            "Missed: an annotated box no detection found (thick, crossed)",
        ),
        (IGNORED, "On a crowd region: not counted (grey)"),
    ] {
        ui.horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(14.0, 14.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 2.0, colour);
            ui.label(text);
        });
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
    Plot::new("det_pr_curves")
        .height(220.0)
        .width(360.0)
        .legend(Legend::default())
        .x_axis_label("recall")
        .y_axis_label("precision")
        .include_x(0.0)
        .include_x(1.0)
        .include_y(0.0)
        .include_y(1.0)
        .allow_scroll(false)
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
