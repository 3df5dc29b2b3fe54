//! Compare's tables for detection runs: each run's COCO metrics on its validation split
//! (the numbers `eval` prints) and AP per class, one column per run, the best run of each
//! row highlighted.

use std::sync::Arc;

use crate::inspect::detection::DetInspection;
use crate::ui::palette::Outcome;

/// The columns of the run table: name and index into `CocoEvaluation::stats`.
const RUN_STATS: [(&str, usize); 4] = [
    ("AP@[.5:.95]", 0),
    ("AP@.5", 1),
    ("AP@.75", 2),
    ("AR@100", 8),
];

/// One row per run: its AP@[.5:.95], AP@.5, AP@.75 and AR@100 (the best of each column
/// highlighted) and the images scored.
pub fn run_table_ui(ui: &mut egui::Ui, loaded: &[(&str, Arc<DetInspection>)]) {
    egui::Grid::new("compare_det_runs")
        .striped(true)
        .show(ui, |ui| {
            ui.strong("Run");
            for (name, _) in RUN_STATS {
                ui.strong(name);
            }
            ui.strong("Images");
            ui.end_row();
            let best: Vec<Option<f64>> = RUN_STATS
                .iter()
                .map(|&(_, stat)| best_of(loaded.iter().map(|(_, run)| Some(run.coco.stats[stat]))))
                .collect();
            for (id, run) in loaded {
                ui.label(*id);
                for (&(_, stat), &best) in RUN_STATS.iter().zip(&best) {
                    cell_ui(ui, Some(run.coco.stats[stat]), best);
                }
                ui.label(run.images.len().to_string());
                ui.end_row();
            }
        });
}

/// One row per class (by name, across the runs), AP@[.5:.95] and AP@.5 of each run, the
/// best run of each highlighted.
pub fn class_table_ui(ui: &mut egui::Ui, loaded: &[(&str, Arc<DetInspection>)]) {
    let mut classes: Vec<&str> = Vec::new();
    for (_, run) in loaded {
        for name in &run.classes {
            if !classes.contains(&name.as_str()) {
                classes.push(name);
            }
        }
    }
    ui.label("AP per class");
    egui::Grid::new("compare_det_classes")
        .striped(true)
        .show(ui, |ui| {
            ui.strong("Class");
            for (id, _) in loaded {
                ui.strong(format!("{id} AP@[.5:.95]"));
                ui.strong(format!("{id} AP@.5"));
            }
            ui.end_row();
            for class in classes {
                let of = |run: &DetInspection, fifty: bool| {
                    let at = run.classes.iter().position(|c| c == class)?;
                    let values = if fifty {
                        &run.coco.per_class_ap50
                    } else {
                        &run.coco.per_class_ap
                    };
                    values.get(at).copied().flatten()
                };
                let best = |fifty| best_of(loaded.iter().map(|(_, run)| of(run, fifty)));
                let (best_ap, best_ap50) = (best(false), best(true));
                ui.label(class);
                for (_, run) in loaded {
                    cell_ui(ui, of(run, false), best_ap);
                    cell_ui(ui, of(run, true), best_ap50);
                }
                ui.end_row();
            }
        });
}

/// The largest value (pycocotools' -1, "no boxes", left out); none with fewer than two.
fn best_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().filter(|v| *v >= 0.0).collect();
    if values.len() < 2 {
        return None;
    }
    values.into_iter().max_by(f64::total_cmp)
}

/// A value to three decimals, strong, blue and starred when it is the row's or column's
/// best.
fn cell_ui(ui: &mut egui::Ui, value: Option<f64>, best: Option<f64>) {
    match value {
        Some(v) if v >= 0.0 => {
            let text = format!("{v:.3}");
            if best == Some(v) {
                let color = Outcome::Right.color(ui.visuals().dark_mode);
                ui.horizontal(|ui| {
                    ui.spacing_mut().item_spacing.x = 2.0;
                    ui.label(egui::RichText::new("★").color(color));
                    ui.label(egui::RichText::new(text).strong().color(color))
                        .on_hover_text("The best of the runs");
                });
            } else {
                ui.label(text);
            }
        }
        _ => {
            ui.weak("n/a")
                .on_hover_text("No annotated box of this kind");
        }
    }
}
