//! A detection image's boxes drawn over it (the Inspector and Compare): true positives,
//! false positives and misses in colour-blind-safe colours with a second cue each (solid,
//! dashed, thick with a cross), their legend, and the controls of the match (score
//! threshold, IoU).

use egui::{Color32, Stroke};

use crate::data::boxes::PixelBox;
use crate::inspect::detection::DetImage;
use crate::train::coco_eval::{DetectionOutcome, ImageMatch};
use crate::ui::palette;

/// True positives (Okabe-Ito blue), solid.
const TRUE_POSITIVE: Color32 = palette::BLUE;
/// False positives (Okabe-Ito orange), dashed.
const FALSE_POSITIVE: Color32 = palette::ORANGE;
/// Missed objects (Okabe-Ito vermillion), thick, with a cross.
const MISSED: Color32 = palette::VERMILLION;
/// Detections on a crowd region (neither right nor wrong), grey.
const IGNORED: Color32 = Color32::from_rgb(150, 150, 150);

/// What [`draw_boxes`] draws besides the detections.
#[derive(Clone, Copy, Debug)]
pub struct BoxStyle {
    /// The annotated boxes (misses always stand out).
    pub truth: bool,
    /// Each detection's class and score above it.
    pub labels: bool,
}

/// Draws `image`'s annotated boxes and its detections as `matched` found them over the image
/// drawn in `rect` (fitted to its aspect ratio); returns how many detections were drawn.
pub fn draw_boxes(
    ui: &egui::Ui,
    rect: egui::Rect,
    classes: &[String],
    image: &DetImage,
    matched: &ImageMatch,
    style: BoxStyle,
) -> usize {
    let (w, h) = image.size_px;
    let frame = super::inspect_widgets::fit(egui::vec2(w as f32, h as f32), rect);
    let (sx, sy) = (
        frame.width() / w.max(1) as f32,
        frame.height() / h.max(1) as f32,
    );
    let to_screen = |b: PixelBox| {
        egui::Rect::from_min_max(
            frame.min + egui::vec2(b.x0 * sx, b.y0 * sy),
            frame.min + egui::vec2(b.x1 * sx, b.y1 * sy),
        )
    };
    let painter = ui.painter_at(rect);
    if style.truth {
        for (i, truth) in image.truth.iter().enumerate() {
            let rect = to_screen(truth.bbox);
            if matched.missed.contains(&i) {
                painter.rect_stroke(
                    rect,
                    0.0,
                    Stroke::new(3.0, MISSED),
                    egui::StrokeKind::Outside,
                );
                let cross = Stroke::new(1.0, MISSED);
                painter.line_segment([rect.left_top(), rect.right_bottom()], cross);
                painter.line_segment([rect.right_top(), rect.left_bottom()], cross);
            } else {
                let colour = if truth.crowd {
                    IGNORED
                } else {
                    Color32::from_white_alpha(200)
                };
                let stroke = Stroke::new(1.0, colour);
                painter.rect_stroke(rect, 0.0, stroke, egui::StrokeKind::Outside);
            }
        }
    }
    let font = egui::TextStyle::Small.resolve(ui.style());
    let mut drawn = 0;
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
        if style.labels {
            let name = classes.get(found.class).map_or("?", String::as_str);
            let text = format!("{name} {:.2}", found.score);
            let galley = painter.layout_no_wrap(text, font.clone(), Color32::WHITE);
            let at = rect.left_top() - egui::vec2(0.0, galley.size().y);
            painter.rect_filled(egui::Rect::from_min_size(at, galley.size()), 0.0, colour);
            painter.galley(at, galley, Color32::WHITE);
        }
        drawn += 1;
    }
    drawn
}

/// The colours and their second cues.
pub fn legend_ui(ui: &mut egui::Ui) {
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

/// The score-threshold slider and the IoU choice of a match (`salt` keeps the combo box
/// apart from another view's).
pub fn match_controls_ui(ui: &mut egui::Ui, salt: &str, threshold: &mut f32, iou: &mut f32) {
    let label = ui.label("Score threshold");
    ui.add(egui::Slider::new(threshold, 0.01..=0.99).fixed_decimals(2))
        .labelled_by(label.id)
        .on_hover_text(
            "Boxes scored below this are not drawn nor counted (the run's COCO metrics use \
             every box)",
        );
    let label = ui.label("Match at IoU");
    egui::ComboBox::from_id_salt(salt)
        .selected_text(format!("{iou:.2}"))
        .show_ui(ui, |ui| {
            for choice in [0.3, 0.5, 0.75] {
                ui.selectable_value(iou, choice, format!("{choice:.2}"));
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text("A detection is right when it overlaps a box of its class this much");
}
