//! The Inspector's confusion matrix (rows: truth, columns: prediction) as clickable cells
//! shaded by count, or by share of the row when row-normalised. The diagonal (right) is
//! blue, framed and bold; the rest (wrong) orange; an empty cell is a faint 0, unshaded.

use crate::ui::palette::{Outcome, shade, text_on};

/// Shade of the smallest non-zero cell, so one image still shows.
const MIN_LEVEL: f32 = 0.18;

/// What one cell shows: its text and how strongly it is shaded (0 for an empty cell).
#[derive(Clone, Debug, PartialEq)]
pub struct CellLook {
    /// The count, or the row's share in percent.
    pub text: String,
    /// 0 (unshaded) to 1 (full colour).
    pub level: f32,
}

/// The look of every cell of `counts` (`counts[truth][predicted]`): shaded by the square
/// root of the count against the largest cell, or of the row's share when
/// `row_normalised`, so that a few wrong images still show beside a full diagonal.
pub fn cell_looks(counts: &[Vec<usize>], row_normalised: bool) -> Vec<Vec<CellLook>> {
    let largest = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|row| {
            let total = row.iter().sum::<usize>().max(1);
            row.iter()
                .map(|&count| {
                    let fraction = if row_normalised {
                        count as f32 / total as f32
                    } else {
                        count as f32 / largest as f32
                    };
                    let text = if row_normalised {
                        percent(count, total)
                    } else {
                        count.to_string()
                    };
                    let level = if count == 0 {
                        0.0
                    } else {
                        MIN_LEVEL + (1.0 - MIN_LEVEL) * fraction.sqrt()
                    };
                    CellLook { text, level }
                })
                .collect()
        })
        .collect()
}

/// `count` of `total` as a whole percentage ("<1%" for a share that rounds to 0).
fn percent(count: usize, total: usize) -> String {
    let share = count as f64 * 100.0 / total as f64;
    if count > 0 && share < 0.5 {
        "<1%".to_owned()
    } else {
        format!("{share:.0}%")
    }
}

/// The matrix of `counts` for `classes`, its row-normalised toggle and legend; `selected`
/// is the chosen cell. Returns the cell clicked this frame.
pub fn confusion_ui(
    ui: &mut egui::Ui,
    classes: &[String],
    counts: &[Vec<usize>],
    selected: Option<(usize, usize)>,
    row_normalised: &mut bool,
) -> Option<(usize, usize)> {
    ui.horizontal_wrapped(|ui| {
        ui.strong("Confusion matrix");
        ui.label("(rows: truth, columns: prediction; click a cell)");
        ui.checkbox(row_normalised, "Row-normalised")
            .on_hover_text("Each cell as a share of its row: the images of that true class");
    });
    let looks = cell_looks(counts, *row_normalised);
    let dark = ui.visuals().dark_mode;
    let background = ui.visuals().panel_fill;
    let mut clicked = None;
    // A solid bar shows that a wide matrix scrolls sideways.
    let floating = std::mem::replace(
        &mut ui.spacing_mut().scroll,
        egui::style::ScrollStyle::solid(),
    );
    egui::ScrollArea::horizontal()
        .id_salt("confusion_scroll")
        .show(ui, |ui| {
            egui::Grid::new("confusion")
                .spacing([6.0, 2.0])
                .show(ui, |ui| {
                    ui.label("");
                    for name in classes {
                        ui.label(name);
                    }
                    ui.end_row();
                    for (t, row) in looks.iter().enumerate() {
                        ui.label(classes.get(t).map_or("?", String::as_str));
                        for (p, look) in row.iter().enumerate() {
                            let count = counts[t][p];
                            let outcome = Outcome::of(t, p);
                            let base = outcome.color(dark);
                            let response = cell_ui(
                                ui,
                                look,
                                (shade(base, background, look.level), outcome),
                                selected == Some((t, p)),
                            );
                            let (truth, predicted) = (&classes[t], &classes[p]);
                            let total: usize = counts[t].iter().sum();
                            let name = format!("Cell {truth} to {predicted}: {}", look.text);
                            response.widget_info(|| {
                                egui::WidgetInfo::labeled(egui::Role::Button, true, &name)
                            });
                            let response = response.on_hover_text(format!(
                                "{} {count} of the {total} images of {truth} predicted \
                                 {predicted}",
                                outcome.mark()
                            ));
                            if response.clicked() {
                                clicked = Some((t, p));
                            }
                        }
                        ui.end_row();
                    }
                });
        });
    ui.spacing_mut().scroll = floating;
    ui.horizontal_wrapped(|ui| {
        ui.label(Outcome::Right.rich(ui, "diagonal: right (blue, framed, bold)"));
        ui.label(Outcome::Wrong.rich(ui, "elsewhere: wrong (orange)"));
        ui.weak("darker: more images");
    });
    clicked
}

/// One cell: `fill` behind its text, a frame on the diagonal, a thick one when `selected`.
fn cell_ui(
    ui: &mut egui::Ui,
    look: &CellLook,
    (fill, outcome): (egui::Color32, Outcome),
    selected: bool,
) -> egui::Response {
    let font = egui::TextStyle::Button.resolve(ui.style());
    let right = outcome == Outcome::Right;
    let text_color = if look.level == 0.0 {
        ui.visuals().weak_text_color()
    } else {
        text_on(fill)
    };
    let mut text = egui::RichText::new(&look.text).font(font).color(text_color);
    if right {
        text = text.strong();
    }
    let galley = egui::WidgetText::from(text).into_galley(
        ui,
        Some(egui::TextWrapMode::Extend),
        f32::INFINITY,
        egui::TextStyle::Button,
    );
    let size = egui::vec2((galley.size().x + 12.0).max(40.0), galley.size().y + 8.0);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    let painter = ui.painter();
    if look.level > 0.0 {
        painter.rect_filled(rect, 2.0, fill);
    }
    if right {
        let stroke = egui::Stroke::new(1.5, outcome.color(ui.visuals().dark_mode));
        painter.rect_stroke(rect.shrink(1.0), 2.0, stroke, egui::StrokeKind::Inside);
    }
    if selected || response.hovered() {
        let width = if selected { 2.5 } else { 1.0 };
        let stroke = egui::Stroke::new(width, ui.visuals().strong_text_color());
        painter.rect_stroke(rect, 2.0, stroke, egui::StrokeKind::Inside);
    }
    let at = rect.center() - galley.size() / 2.0;
    painter.galley(at, galley, text_color);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_or_row_shares_shade_the_cells() {
        let counts = vec![vec![8, 2, 0], vec![1, 9, 0], vec![0, 0, 0]];
        let plain = cell_looks(&counts, false);
        assert_eq!(plain[0][0].text, "8");
        assert_eq!(
            plain[0][2],
            CellLook {
                text: "0".into(),
                level: 0.0
            }
        );
        assert_eq!(plain[1][1].level, 1.0);
        assert!(plain[0][1].level > MIN_LEVEL && plain[0][1].level < plain[0][0].level);
        let rows = cell_looks(&counts, true);
        assert_eq!(rows[0][0].text, "80%");
        assert_eq!(rows[1][0].text, "10%");
        assert_eq!(rows[2][2].text, "0%", "an empty row divides by nothing");
        assert_eq!(percent(1, 1000), "<1%");
        // Row-normalised, 8 of 10 is shaded as 80% even though 9 is the largest count.
        assert!((rows[0][0].level - (MIN_LEVEL + (1.0 - MIN_LEVEL) * 0.8f32.sqrt())).abs() < 1e-6);
    }
}
