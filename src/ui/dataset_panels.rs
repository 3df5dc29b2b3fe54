//! Parts of the Dataset tab: tile painting, the preview of the selected file (with its mask
//! or boxes), the window/level control, the class counts chart and the validation report
//! list. Boxes and their chart are in `dataset_boxes.rs`.

use egui_plot::{Bar, BarChart};

use crate::data::report::{IssueKind, ValidationReport};
use crate::data::window::{AUTO_PERCENTILES, WindowSetting};
use crate::runtime::dataset::ScannedDataset;
use crate::runtime::thumbnails::{Thumbnail, ThumbnailCache, ThumbnailKey, ThumbnailSize};
use crate::ui::dataset::Selection;
use crate::ui::palette::class_color;
use crate::ui::plot_style::{chart, class_axis};

/// Report entries listed per issue kind (the count says how many more there are).
const ENTRIES_PER_KIND: usize = 300;

/// How a segmentation mask (or a detection image's boxes) is drawn over the preview.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OverlayStyle {
    /// Draw the mask (or the boxes) at all.
    pub show: bool,
    /// Opacity of the filled regions (0–1).
    pub opacity: f32,
    /// Draw the class borders at full opacity.
    pub outline: bool,
}

impl Default for OverlayStyle {
    fn default() -> Self {
        Self {
            show: true,
            opacity: 0.4,
            outline: true,
        }
    }
}

/// The text and state of one grid tile.
pub struct TileText<'a> {
    /// Class (and split).
    pub caption: &'a str,
    /// The file's path.
    pub file: &'a str,
    /// Marked when the file has an issue.
    pub has_issue: bool,
    /// Highlighted when selected.
    pub selected: bool,
    /// Highlighted under the pointer.
    pub hovered: bool,
}

/// Paints a tile: background, the thumbnail fitted into its square, caption and file name,
/// and a warning mark for files with issues. Returns where the thumbnail was drawn, if it was.
pub fn paint_tile(
    ui: &egui::Ui,
    rect: egui::Rect,
    thumbnail: Option<Result<&Thumbnail, &str>>,
    text: TileText<'_>,
) -> Option<egui::Rect> {
    let visuals = ui.visuals();
    let painter = ui.painter_at(rect);
    let fill = if text.selected {
        visuals.selection.bg_fill
    } else if text.hovered {
        visuals.widgets.hovered.weak_bg_fill
    } else {
        visuals.faint_bg_color
    };
    painter.rect_filled(rect, 4.0, fill);
    let image_rect = egui::Rect::from_min_size(
        rect.min + egui::vec2(4.0, 4.0),
        egui::vec2(rect.width() - 8.0, rect.width() - 8.0),
    );
    let small = egui::TextStyle::Small.resolve(ui.style());
    let mut drawn_at = None;
    match thumbnail {
        Some(Ok(thumbnail)) => {
            let fitted = fit(thumbnail.texture.size_vec2(), image_rect);
            painter.image(
                thumbnail.texture.id(),
                fitted,
                full_uv(),
                egui::Color32::WHITE,
            );
            drawn_at = Some(fitted);
        }
        Some(Err(_)) => {
            painter.text(
                image_rect.center(),
                egui::Align2::CENTER_CENTER,
                "cannot show",
                small.clone(),
                visuals.error_fg_color,
            );
        }
        None => {
            painter.text(
                image_rect.center(),
                egui::Align2::CENTER_CENTER,
                "loading",
                small.clone(),
                visuals.weak_text_color(),
            );
        }
    }
    let text_color = visuals.text_color();
    let caption_pos = egui::pos2(rect.left() + 4.0, image_rect.bottom() + 2.0);
    painter.text(
        caption_pos,
        egui::Align2::LEFT_TOP,
        text.caption,
        small.clone(),
        text_color,
    );
    let file_name = text.file.rsplit('/').next().unwrap_or(text.file);
    let file_pos = caption_pos + egui::vec2(0.0, small.size + 3.0);
    painter.text(
        file_pos,
        egui::Align2::LEFT_TOP,
        file_name,
        small,
        visuals.weak_text_color(),
    );
    if text.has_issue {
        let warn = visuals.warn_fg_color;
        painter.rect_stroke(
            rect.shrink(1.0),
            4.0,
            egui::Stroke::new(2.0, warn),
            egui::StrokeKind::Inside,
        );
        let mark = egui::pos2(rect.right() - 11.0, rect.top() + 11.0);
        painter.circle_filled(mark, 8.0, warn);
        let body = egui::TextStyle::Body.resolve(ui.style());
        painter.text(
            mark,
            egui::Align2::CENTER_CENTER,
            "!",
            body,
            egui::Color32::BLACK,
        );
    }
    drawn_at
}

fn full_uv() -> egui::Rect {
    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0))
}

/// The largest rectangle of `size`'s aspect ratio centred in `bounds`.
fn fit(size: egui::Vec2, bounds: egui::Rect) -> egui::Rect {
    let scale = (bounds.width() / size.x.max(1.0)).min(bounds.height() / size.y.max(1.0));
    egui::Rect::from_center_size(bounds.center(), size * scale)
}

/// What the preview knows about the selected image, for the window control.
#[derive(Clone, Copy, Debug, Default)]
pub struct PreviewFacts {
    /// Smallest and largest stored value.
    pub value_range: Option<(f32, f32)>,
    /// Whether the window changes this image.
    pub windowed: bool,
    /// Boxes drawn over the image (detection).
    pub boxes_drawn: usize,
}

/// The selected file: a larger rendering (with its mask or boxes when `overlay` is given and
/// shows them), path, label, split, size, boxes and issues.
pub fn preview_ui(
    ui: &mut egui::Ui,
    data: &ScannedDataset,
    selection: Option<Selection>,
    thumbnails: &mut ThumbnailCache,
    overlay: Option<&mut OverlayStyle>,
) -> Option<PreviewFacts> {
    ui.heading("Preview");
    let report = &data.report;
    let item_index = match selection {
        None => {
            ui.label("Click an image or a report entry to see it here.");
            return None;
        }
        Some(Selection::Issue(n)) => {
            let issue = report.issues.get(n)?;
            ui.label(format!("Selected: {}", issue.path.display()));
            ui.label(format!("{} ({})", issue.kind.label(), issue.kind.effect()));
            ui.colored_label(ui.visuals().warn_fg_color, &issue.message);
            ui.label(format!(
                "Full path: {}",
                report.root.join(&issue.path).display()
            ));
            return None;
        }
        Some(Selection::Item(i)) => i,
    };
    let item = data.index.items.get(item_index)?;
    let show_overlay = overlay.as_ref().is_some_and(|o| o.show);
    let show_mask = show_overlay && item.mask.is_some();
    let key = ThumbnailKey {
        image: data.index.image_path(item),
        mask: item
            .mask
            .as_ref()
            .filter(|_| show_mask)
            .map(|m| data.index.root.join(m)),
        size: ThumbnailSize::Preview,
    };
    let style = overlay.as_deref().copied().unwrap_or_default();
    let side = ui.available_width().clamp(64.0, 512.0);
    let facts = match thumbnails.get(&key) {
        Some(Ok(thumbnail)) => {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
            let fitted = fit(thumbnail.texture.size_vec2(), rect);
            let painter = ui.painter_at(rect);
            painter.image(
                thumbnail.texture.id(),
                fitted,
                full_uv(),
                egui::Color32::WHITE,
            );
            if show_mask && let Some(fill) = &thumbnail.fill {
                let tint =
                    egui::Color32::from_white_alpha((style.opacity.clamp(0.0, 1.0) * 255.0) as u8);
                painter.image(fill.id(), fitted, full_uv(), tint);
            }
            if show_mask
                && style.outline
                && let Some(outline) = &thumbnail.outline
            {
                painter.image(outline.id(), fitted, full_uv(), egui::Color32::WHITE);
            }
            let boxes_drawn = match &item.boxes {
                Some(boxes) if show_overlay => crate::ui::dataset_boxes::paint_boxes(
                    &painter,
                    ui.style(),
                    fitted,
                    item.size_px,
                    boxes,
                    Some(&data.index.classes),
                ),
                _ => 0,
            };
            Some(PreviewFacts {
                value_range: thumbnail.value_range,
                windowed: thumbnail.windowed,
                boxes_drawn,
            })
        }
        Some(Err(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
            None
        }
        None => {
            ui.add_sized(egui::vec2(side, side), egui::Spinner::new());
            None
        }
    };
    if let Some(overlay) = overlay {
        overlay_ui(ui, overlay, item.boxes.is_some());
    }
    item_facts_ui(ui, data, item_index);
    facts
}

fn item_facts_ui(ui: &mut egui::Ui, data: &ScannedDataset, i: usize) {
    let Some(item) = data.index.items.get(i) else {
        return;
    };
    ui.label(format!("Selected: {}", item.path.display()));
    if let Some(class) = item.label.and_then(|l| data.index.classes.get(l)) {
        ui.label(format!("Label: {class}"));
    }
    if let Some(split) = item.split {
        ui.label(format!("Split: {}", split.name()));
    }
    if let Some(group) = &item.group {
        ui.label(format!("Group: {group}"));
    }
    if let Some(mask) = &item.mask {
        ui.label(format!("Mask: {}", mask.display()));
    }
    if let Some(boxes) = &item.boxes {
        ui.label(crate::ui::dataset_boxes::boxes_line(
            boxes,
            &data.index.classes,
        ));
    }
    ui.label(format!("Size: {} x {} px", item.size_px.0, item.size_px.1));
    for &n in &data.issues_of_item[i] {
        let issue = &data.report.issues[n];
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!("{}: {}", issue.kind.label(), issue.message),
        );
    }
}

fn overlay_ui(ui: &mut egui::Ui, overlay: &mut OverlayStyle, boxes: bool) {
    if boxes {
        ui.checkbox(&mut overlay.show, "Show boxes");
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut overlay.show, "Show mask");
        ui.checkbox(&mut overlay.outline, "Outline");
    });
    ui.add_enabled_ui(overlay.show, |ui| {
        ui.horizontal(|ui| {
            let label = ui.label("Mask opacity");
            ui.add(egui::Slider::new(&mut overlay.opacity, 0.0..=1.0))
                .labelled_by(label.id);
        });
    });
}

/// What the window control did this frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowEdit {
    /// The setting differs from what it was.
    pub changed: bool,
    /// The change is finished (not mid-drag): save it.
    pub commit: bool,
    /// A slider is being dragged.
    pub dragging: bool,
}

/// Auto / percentiles / manual centre and width for 16-bit and DICOM data.
pub fn window_ui(
    ui: &mut egui::Ui,
    setting: &mut WindowSetting,
    facts: Option<PreviewFacts>,
) -> WindowEdit {
    let before = setting.clone();
    let mut edit = WindowEdit::default();
    ui.heading("Window / level");
    match facts {
        Some(f) if !f.windowed => {
            ui.label("This image is 8-bit: the window only changes 16-bit and DICOM images.");
        }
        Some(_) => {}
        None => {
            ui.label("Applies to 16-bit and DICOM images; select one to see its values.");
        }
    }
    let (low, high) = facts
        .and_then(|f| f.value_range)
        .filter(|(lo, hi)| hi > lo)
        .unwrap_or((0.0, 65535.0));
    let mut mode = window_mode(setting);
    ui.horizontal(|ui| {
        ui.radio_value(&mut mode, 0, "Auto");
        ui.radio_value(&mut mode, 1, "Percentiles");
        ui.radio_value(&mut mode, 2, "Manual");
    });
    if mode != window_mode(setting) {
        *setting = match mode {
            0 => WindowSetting::Auto,
            1 => WindowSetting::Percentiles {
                low: AUTO_PERCENTILES.0,
                high: AUTO_PERCENTILES.1,
            },
            _ => WindowSetting::Manual {
                center: (low + high) / 2.0,
                width: high - low,
            },
        };
        edit.commit = true;
    }
    let mut slider = |ui: &mut egui::Ui, value: &mut f32, range, text: &str| {
        let response = ui
            .horizontal(|ui| {
                let label = ui.label(text);
                ui.add(egui::Slider::new(value, range))
                    .labelled_by(label.id)
            })
            .inner;
        edit.dragging |= response.dragged();
        edit.commit |= response.drag_stopped() || (response.changed() && !response.dragged());
    };
    match setting {
        WindowSetting::Auto => {
            ui.label("DICOM window tags where present, else percentiles 0.5 to 99.5.");
        }
        WindowSetting::Percentiles { low: lo, high: hi } => {
            slider(ui, lo, 0.0..=49.9, "Low percentile");
            slider(ui, hi, 50.0..=100.0, "High percentile");
        }
        WindowSetting::Manual { center, width } => {
            // The ranges follow the image's values and always hold the current window.
            let span = (high - low).max(1.0);
            let centres = (low - span / 2.0).min(*center)..=(high + span / 2.0).max(*center);
            slider(ui, center, centres, "Centre");
            slider(ui, width, 1.0..=(span * 2.0).max(*width), "Width");
        }
    }
    edit.changed = *setting != before;
    edit
}

fn window_mode(setting: &WindowSetting) -> u8 {
    match setting {
        WindowSetting::Auto => 0,
        WindowSetting::Percentiles { .. } => 1,
        WindowSetting::Manual { .. } => 2,
    }
}

/// Images per class as a bar chart (stacked by split when the data names splits) and as
/// text.
pub fn class_counts_ui(ui: &mut egui::Ui, report: &ValidationReport) {
    ui.strong("Classes");
    if report.classes.is_empty() {
        match &report.masks {
            Some(masks) => ui.label(format!(
                "Segmentation: {} masks, encoding {}",
                masks.masks,
                masks
                    .used
                    .map_or("none (all masks empty)".to_owned(), |e| e.describe())
            )),
            None => ui.label("No classes."),
        };
        return;
    }
    class_chart_ui(ui, report);
    egui::ScrollArea::vertical()
        .id_salt("class_counts")
        .show(ui, |ui| {
            for (i, class) in report.classes.iter().enumerate() {
                let mut text = format!("{}: {} images", class.name, class.count);
                if !report.splits.is_empty() {
                    let parts: Vec<String> = report
                        .splits
                        .iter()
                        .map(|s| format!("{} {}", s.split, s.counts.get(i).copied().unwrap_or(0)))
                        .collect();
                    text.push_str(&format!(" ({})", parts.join(", ")));
                }
                ui.label(text);
            }
        });
}

fn class_chart_ui(ui: &mut egui::Ui, report: &ValidationReport) {
    let names: Vec<String> = report.classes.iter().map(|c| c.name.clone()).collect();
    let series: Vec<(String, Vec<usize>)> = if report.splits.is_empty() {
        vec![(
            "images".to_owned(),
            report.classes.iter().map(|c| c.count).collect(),
        )]
    } else {
        report
            .splits
            .iter()
            .map(|s| (s.split.clone(), s.counts.clone()))
            .collect()
    };
    // The legend sits above the chart, never over its bars.
    ui.horizontal_wrapped(|ui| {
        for (i, (name, _)) in series.iter().enumerate() {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 2.0, class_color(i));
            ui.label(name);
        }
    });
    let height = (names.len() as f32 * 17.0 + 46.0).clamp(110.0, 240.0);
    let largest = report.classes.iter().map(|c| c.count).max().unwrap_or(1);
    chart(ui, "class_counts_chart", "images", "class")
        .fixed()
        .style(|plot| {
            let plot = plot
                .height(height)
                .show_grid(egui::Vec2b::new(true, false))
                .include_x(0.0)
                .include_x(largest as f64 * 1.05);
            class_axis(plot, names)
        })
        .show(ui, move |plot| {
            let mut charts: Vec<BarChart> = Vec::new();
            for (s, (name, counts)) in series.iter().enumerate() {
                let bars = counts
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| Bar::new(i as f64, n as f64).width(0.7))
                    .collect();
                let mut chart = BarChart::new(name.clone(), bars)
                    .horizontal()
                    .color(class_color(s));
                let below: Vec<&BarChart> = charts.iter().collect();
                if !below.is_empty() {
                    chart = chart.stack_on(&below);
                }
                charts.push(chart);
            }
            for chart in charts {
                plot.bar_chart(chart);
            }
        });
}

/// The validation report grouped by issue kind; clicking an entry selects its file.
pub fn report_ui(ui: &mut egui::Ui, data: &ScannedDataset, selection: &mut Option<Selection>) {
    let report = &data.report;
    ui.strong(format!("Validation report: {} issues", report.issues.len()));
    if report.issues.is_empty() {
        ui.label("No issues found.");
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("validation_report")
        .auto_shrink(false)
        .show(ui, |ui| {
            for kind in IssueKind::ALL {
                let count = report.count(kind);
                if count == 0 {
                    continue;
                }
                egui::CollapsingHeader::new(format!(
                    "{} ({count}, {})",
                    kind.label(),
                    kind.effect()
                ))
                .id_salt(("report_kind", kind as u8))
                .default_open(true)
                .show(ui, |ui| {
                    report_entries_ui(ui, data, kind, selection);
                    if count > ENTRIES_PER_KIND {
                        ui.label(format!("… and {} more", count - ENTRIES_PER_KIND));
                    }
                });
            }
        });
}

fn report_entries_ui(
    ui: &mut egui::Ui,
    data: &ScannedDataset,
    kind: IssueKind,
    selection: &mut Option<Selection>,
) {
    let entries = data
        .report
        .issues
        .iter()
        .enumerate()
        .filter(|(_, issue)| issue.kind == kind)
        .take(ENTRIES_PER_KIND);
    for (n, issue) in entries {
        let target = match data.item_of_path.get(&issue.path) {
            Some(&i) => Selection::Item(i),
            None => Selection::Issue(n),
        };
        let text = format!("{}: {}", issue.path.display(), issue.message);
        if ui
            .selectable_label(*selection == Some(target), text)
            .clicked()
        {
            *selection = Some(target);
        }
    }
}
