//! The Dataset tab's box annotations (detection data sets): each image's boxes drawn in
//! class colours over its thumbnail and over the preview, and the boxes per class as a bar
//! chart with the counts beside it. Everything drawn comes from the scanned index and its
//! report (boxes in original-image pixels), so nothing here reads a file.

use egui::{Color32, Stroke};
use egui_plot::{Bar, BarChart};

use crate::data::boxes::{ObjectBox, PixelBox};
use crate::data::report::BoxSummary;
use crate::ui::inspect_widgets::class_color;
use crate::ui::plot_style::{chart, class_axis};

/// Stroke width of a box on a grid tile, in points.
const TILE_STROKE: f32 = 1.5;
/// Stroke width of a box on the preview, in points.
const PREVIEW_STROKE: f32 = 2.0;
/// Images with more boxes than this show no class names on the preview (they would cover
/// the image; the colours and the chart's legend name the classes).
const NAMED_BOXES_AT_MOST: usize = 40;

/// Where a box of an image of `size_px` falls on the screen, when the whole image is drawn
/// into `frame`.
pub fn box_on_screen(frame: egui::Rect, size_px: (u32, u32), bbox: PixelBox) -> egui::Rect {
    let (w, h) = size_px;
    let (sx, sy) = (
        frame.width() / w.max(1) as f32,
        frame.height() / h.max(1) as f32,
    );
    egui::Rect::from_min_max(
        frame.min + egui::vec2(bbox.x0 * sx, bbox.y0 * sy),
        frame.min + egui::vec2(bbox.x1 * sx, bbox.y1 * sy),
    )
}

/// Draws `boxes` of an image of `size_px` shown in `frame`, in class colours; with
/// `classes` (and at most 40 boxes), each box carries its class name in `style`'s small font.
/// Returns the number of boxes drawn (those with finite coordinates).
pub fn paint_boxes(
    painter: &egui::Painter,
    style: &egui::Style,
    frame: egui::Rect,
    size_px: (u32, u32),
    boxes: &[ObjectBox],
    classes: Option<&[String]>,
) -> usize {
    let width = if classes.is_some() {
        PREVIEW_STROKE
    } else {
        TILE_STROKE
    };
    let font = egui::TextStyle::Small.resolve(style);
    let classes = classes.filter(|_| boxes.len() <= NAMED_BOXES_AT_MOST);
    let mut drawn = 0;
    for object in boxes.iter().filter(|b| b.bbox.is_finite()) {
        let colour = class_color(object.class);
        let rect = box_on_screen(frame, size_px, object.bbox);
        painter.rect_stroke(
            rect,
            0.0,
            Stroke::new(width, colour),
            egui::StrokeKind::Outside,
        );
        if let Some(classes) = classes {
            let name = classes.get(object.class).map_or("?", String::as_str);
            let galley = painter.layout_no_wrap(name.to_owned(), font.clone(), Color32::WHITE);
            let at = egui::pos2(rect.left() - width, rect.top() - width - galley.size().y);
            // Inside the image when the box touches its top edge.
            let at = if at.y < frame.top() {
                egui::pos2(at.x, rect.top())
            } else {
                at
            };
            painter.rect_filled(egui::Rect::from_min_size(at, galley.size()), 0.0, colour);
            painter.galley(at, galley, Color32::WHITE);
        }
        drawn += 1;
    }
    drawn
}

/// A tile's caption for an image with `boxes`: how many boxes it has.
pub fn tile_caption(boxes: &[ObjectBox]) -> String {
    match boxes.len() {
        0 => "no boxes".to_owned(),
        1 => "1 box".to_owned(),
        n => format!("{n} boxes"),
    }
}

/// The preview's line about an image's boxes: their number and classes.
pub fn boxes_line(boxes: &[ObjectBox], classes: &[String]) -> String {
    if boxes.is_empty() {
        return "Boxes: none (an image without objects)".to_owned();
    }
    let mut per_class = vec![0usize; classes.len()];
    for object in boxes {
        if let Some(count) = per_class.get_mut(object.class) {
            *count += 1;
        }
    }
    let parts: Vec<String> = per_class
        .iter()
        .zip(classes)
        .filter(|(n, _)| **n > 0)
        .map(|(n, name)| format!("{name} {n}"))
        .collect();
    if parts.is_empty() {
        format!("Boxes: {}", boxes.len())
    } else {
        format!("Boxes: {} ({})", boxes.len(), parts.join(", "))
    }
}

/// Boxes per class as a bar chart in class colours (classes on the vertical axis, box counts
/// on the horizontal one), then the counts as text and the images without boxes.
pub fn box_counts_ui(ui: &mut egui::Ui, summary: &BoxSummary) {
    ui.strong(format!("Boxes per class ({})", summary.format));
    if summary.classes.is_empty() {
        ui.label("No classes.");
    } else {
        box_chart_ui(ui, summary);
    }
    egui::ScrollArea::vertical()
        .id_salt("box_counts")
        .show(ui, |ui| {
            for (i, class) in summary.classes.iter().enumerate() {
                ui.horizontal(|ui| {
                    let (rect, _) =
                        ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                    ui.painter().rect_filled(rect, 2.0, class_color(i));
                    ui.label(format!(
                        "{}: {} boxes in {} images",
                        class.name, class.boxes, class.images
                    ));
                });
            }
            ui.label(format!(
                "Images without boxes: {}",
                summary.images_without_boxes
            ));
            ui.label(format!(
                "{} boxes in {} images; at most {} and {:.1} on average per image",
                summary.boxes,
                summary.images_with_boxes,
                summary.max_per_image,
                summary.mean_per_image
            ));
            let changes = [
                (summary.crowd, "crowd"),
                (summary.clipped, "clipped to the image"),
                (summary.tiny, "tiny"),
            ];
            let changes: Vec<String> = changes
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            if !changes.is_empty() {
                ui.label(format!("Boxes kept: {}", changes.join(", ")));
            }
            for (what, count) in &summary.dropped {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("Left out: {count} × {what}"),
                );
            }
        });
}

fn box_chart_ui(ui: &mut egui::Ui, summary: &BoxSummary) {
    let names: Vec<String> = summary.classes.iter().map(|c| c.name.clone()).collect();
    let classes = names.len();
    let largest = summary.classes.iter().map(|c| c.boxes).max().unwrap_or(0);
    let height = (classes as f32 * 20.0 + 50.0).clamp(110.0, 240.0);
    let bars: Vec<Bar> = summary
        .classes
        .iter()
        .enumerate()
        .map(|(i, class)| {
            Bar::new(i as f64, class.boxes as f64)
                .width(0.7)
                .fill(class_color(i))
                .name(format!("{}: {} boxes", class.name, class.boxes))
        })
        .collect();
    chart(ui, "box_counts_chart", "boxes", "class")
        .fixed()
        .style(|plot| {
            let plot = plot
                .height(height)
                .show_grid(egui::Vec2b::new(true, false))
                .include_x(0.0)
                .include_x((largest.max(1) as f64) * 1.1);
            class_axis(plot, names)
        })
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("boxes", bars).horizontal());
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_scale_from_image_pixels_to_the_drawn_rect() {
        let frame = egui::Rect::from_min_size(egui::pos2(10.0, 20.0), egui::vec2(40.0, 20.0));
        let on_screen = box_on_screen(
            frame,
            (80, 40),
            PixelBox {
                x0: 8.0,
                y0: 4.0,
                x1: 40.0,
                y1: 40.0,
            },
        );
        assert_eq!(
            on_screen,
            egui::Rect::from_min_max(egui::pos2(14.0, 22.0), egui::pos2(30.0, 40.0))
        );
        // A zero size never divides by zero.
        let degenerate = box_on_screen(frame, (0, 0), PixelBox::default());
        assert!(degenerate.min.x.is_finite());
    }

    #[test]
    fn captions_and_lines_count_boxes() {
        let classes = vec!["cat".to_owned(), "dog".to_owned()];
        let boxes = vec![
            ObjectBox::new(1, PixelBox::default()),
            ObjectBox::new(1, PixelBox::default()),
            ObjectBox::new(0, PixelBox::default()),
        ];
        assert_eq!(tile_caption(&boxes), "3 boxes");
        assert_eq!(tile_caption(&boxes[..1]), "1 box");
        assert_eq!(tile_caption(&[]), "no boxes");
        assert_eq!(boxes_line(&boxes, &classes), "Boxes: 3 (cat 1, dog 2)");
        // A class index beyond the names is counted but not named.
        let stray = vec![ObjectBox::new(5, PixelBox::default())];
        assert_eq!(boxes_line(&stray, &classes), "Boxes: 1");
    }
}
