//! The Compare tab: two or more runs of a project side by side — a metrics table, their
//! validation loss and accuracy (or Dice, AP) curves; for classification runs the images one
//! run gets right and another wrong, the chosen image's Grad-CAM per run, and each run's PCA
//! map; for detection runs their COCO metrics and the images where they disagree
//! ([`super::compare_det`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use egui_plot::{Corner, Legend, Line, Points};

use crate::inspect::task::offers;
use crate::runtime::UiCommand;
use crate::runtime::inspect::InspectSources;
use crate::runtime::inspect::{
    CamChoice, CamKey, InspectCommand, InspectData, Loading, RunInspection,
};
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::train::catalogue::RunSummary;
use crate::ui::compare_det::DetCompareView;
use crate::ui::inspect_widgets::{class_color, image_ui, inspection_ui, runs_ui};
use crate::ui::palette::Outcome;
use crate::ui::plot_style::chart;

/// Disagreements shown in the gallery.
const GALLERY: usize = 24;

/// The Compare view's state.
#[derive(Default)]
pub struct CompareView {
    chosen: BTreeSet<String>,
    /// The project whose runs were ticked at first sight (all of them, up to four).
    seeded: Option<std::path::PathBuf>,
    /// The run ids listed so far in the seeded project.
    known: std::collections::BTreeSet<String>,
    /// The sample id whose Grad-CAM is compared.
    focus: Option<String>,
    /// The part for detection runs.
    det: DetCompareView,
}

impl CompareView {
    /// The run ids ticked.
    pub fn chosen(&self) -> impl Iterator<Item = &str> {
        self.chosen.iter().map(String::as_str)
    }

    /// The part for detection runs.
    pub fn detection(&self) -> &DetCompareView {
        &self.det
    }

    /// The part for detection runs, to change (for tests).
    pub fn detection_mut(&mut self) -> &mut DetCompareView {
        &mut self.det
    }

    /// Lays out the tab for the project at `project`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        sources: InspectSources<'_>,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let InspectSources { data, runs, .. } = sources;
        let Some(runs) = runs_ui(ui, project, runs, commands) else {
            return;
        };
        if self.seeded.as_deref() != Some(project) {
            self.seeded = Some(project.to_owned());
            self.chosen = runs.iter().rev().take(4).map(|r| r.id.clone()).collect();
            self.known = runs.iter().map(|r| r.id.clone()).collect();
            self.focus = None;
        }
        // Runs that appeared since (a run just trained) are ticked while fewer than four are.
        for run in runs.iter() {
            if self.known.insert(run.id.clone()) && self.chosen.len() < 4 {
                self.chosen.insert(run.id.clone());
            }
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("Runs to compare:");
            for run in runs.iter() {
                let mut on = self.chosen.contains(&run.id);
                if ui
                    .checkbox(&mut on, format!("Compare {}", run.id))
                    .changed()
                {
                    if on {
                        self.chosen.insert(run.id.clone());
                    } else {
                        self.chosen.remove(&run.id);
                    }
                }
            }
        });
        let chosen: Vec<&RunSummary> = runs
            .iter()
            .filter(|r| self.chosen.contains(&r.id))
            .collect();
        if chosen.is_empty() {
            ui.label("Tick two or more runs.");
            return;
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            metrics_table_ui(ui, &chosen);
            ui.separator();
            curves_ui(ui, &chosen);
            let detecting: Vec<&RunSummary> = chosen
                .iter()
                .copied()
                .filter(|r| offers(r.task).boxes)
                .collect();
            if !detecting.is_empty() {
                ui.separator();
                self.det
                    .ui(ui, project, &detecting, data, thumbnails, commands);
            }
            let classifying: Vec<&RunSummary> = chosen
                .iter()
                .copied()
                .filter(|r| offers(r.task).image_predictions)
                .collect();
            if classifying.len() < 2 {
                return;
            }
            ui.separator();
            let mut loaded = Vec::new();
            for run in &classifying {
                if let Some(inspection) = inspection_ui(ui, project, &run.id, data, commands) {
                    loaded.push((run.id.as_str(), Arc::clone(inspection)));
                }
            }
            if loaded.len() < classifying.len() {
                return;
            }
            self.disagreements_ui(ui, &loaded, thumbnails);
            ui.separator();
            self.cams_ui(ui, project, &loaded, data, thumbnails, commands);
            ui.separator();
            pca_maps_ui(ui, &loaded);
        });
    }

    /// Images the first run and another run disagree on (one right, the other wrong).
    fn disagreements_ui(
        &mut self,
        ui: &mut egui::Ui,
        loaded: &[(&str, Arc<RunInspection>)],
        thumbnails: &mut ThumbnailCache,
    ) {
        let (first_id, first) = &loaded[0];
        let right = |run: &RunInspection, i: usize| {
            run.predictions.labels[i] == run.predictions.predicted[i]
        };
        let mut found = Vec::new();
        for (other_id, other) in &loaded[1..] {
            for (i, id) in first.predictions.ids.iter().enumerate() {
                let Some(&j) = other.index_of_id.get(id) else {
                    continue;
                };
                if right(first, i) != right(other, j) {
                    found.push((i, *other_id, j, Arc::clone(other)));
                }
            }
        }
        ui.heading(format!("Disagreements with {first_id}: {}", found.len()));
        egui::ScrollArea::horizontal()
            .id_salt("disagreements")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (i, other_id, j, other) in found.iter().take(GALLERY) {
                        let p = &first.predictions;
                        let q = &other.predictions;
                        ui.vertical(|ui| {
                            let path = p.paths[*i].as_deref();
                            let response =
                                image_ui(ui, thumbnails, path, ThumbnailSize::Tile, 96.0, None);
                            if response.on_hover_text("Compare the heatmaps").clicked() {
                                self.focus = Some(p.ids[*i].clone());
                            }
                            ui.small(&p.ids[*i]);
                            ui.small(format!("truth {}", p.classes[p.labels[*i]]));
                            for (run_id, r, k) in [(*first_id, p, *i), (*other_id, q, *j)] {
                                let outcome = Outcome::of(r.labels[k], r.predicted[k]);
                                let text = format!("{run_id}: {}", r.classes[r.predicted[k]]);
                                ui.label(outcome.rich(ui, &text).small());
                            }
                        });
                    }
                });
            });
    }

    /// The focused image's Grad-CAM under each run.
    fn cams_ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        loaded: &[(&str, Arc<RunInspection>)],
        data: &InspectData,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let first = &loaded[0].1.predictions;
        let focus = self
            .focus
            .get_or_insert_with(|| first.ids.first().cloned().unwrap_or_default())
            .clone();
        ui.heading(format!("Grad-CAM of {focus}"));
        ui.horizontal(|ui| {
            for (run_id, run) in loaded {
                let Some(&i) = run.index_of_id.get(&focus) else {
                    continue;
                };
                let Some(path) = run.predictions.paths[i].clone() else {
                    continue;
                };
                let key = CamKey {
                    project: project.to_owned(),
                    run: (*run_id).to_owned(),
                    image: path.clone(),
                    method: CamChoice::GradCam,
                };
                let cam = data.cams.get(&key);
                if cam.is_none() {
                    commands.push(UiCommand::Inspect(InspectCommand::Cam(key)));
                }
                ui.vertical(|ui| {
                    let layer = match cam {
                        Some(Loading::Ready(cam)) => Some((&cam.texture, 0.5)),
                        _ => None,
                    };
                    image_ui(
                        ui,
                        thumbnails,
                        Some(&path),
                        ThumbnailSize::Preview,
                        200.0,
                        layer,
                    );
                    let p = &run.predictions;
                    let outcome = Outcome::of(p.labels[i], p.predicted[i]);
                    let text = format!("{run_id}: predicts {}", p.classes[p.predicted[i]]);
                    ui.label(outcome.rich(ui, &text));
                });
            }
        });
    }
}

/// Run id, backbone, strategy, weights, epochs, best and final score, final loss.
fn metrics_table_ui(ui: &mut egui::Ui, runs: &[&RunSummary]) {
    let percent = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    egui::Grid::new("compare_metrics")
        .striped(true)
        .show(ui, |ui| {
            for header in [
                "Run", "Backbone", "Strategy", "Weights", "Epochs", "Input", "Best", "Final",
                "Loss",
            ] {
                ui.strong(header);
            }
            ui.end_row();
            for run in runs {
                ui.label(&run.id);
                ui.label(&run.backbone);
                ui.label(&run.strategy);
                ui.label(&run.weights);
                ui.label(format!(
                    "{}/{}",
                    run.curves.epochs.len(),
                    run.epochs_planned
                ));
                ui.label(format!("{} px", run.input_size_px));
                let name = run.score_name();
                ui.label(format!("{} {name}", percent(run.best_score())));
                ui.label(format!("{} {name}", percent(run.final_score())));
                ui.label(
                    run.final_loss()
                        .map_or("-".to_owned(), |l| format!("{l:.3}")),
                );
                ui.end_row();
            }
        });
}

/// Validation loss and score per epoch, one line per run.
fn curves_ui(ui: &mut egui::Ui, runs: &[&RunSummary]) {
    let width = (ui.available_width() / 2.0 - 8.0).max(200.0);
    // The score each run's task plots (accuracy, Dice, AP@.5), named once each.
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        if !names.contains(&run.score_name()) {
            names.push(run.score_name());
        }
    }
    let score_axis = names.join(" / ");
    let score_title = format!("Validation {score_axis}");
    ui.horizontal(|ui| {
        for (id, title, score) in [
            ("compare_loss", "Validation loss", false),
            ("compare_score", score_title.as_str(), true),
        ] {
            ui.vertical(|ui| {
                ui.label(title);
                let y = if score { score_axis.as_str() } else { "loss" };
                chart(ui, id, "epoch", y)
                    .style(|plot| {
                        // Losses fall and scores rise: the legend goes where the curves end
                        // least often.
                        let corner = if score {
                            Corner::RightBottom
                        } else {
                            Corner::RightTop
                        };
                        plot.width(width)
                            .height(200.0)
                            .legend(Legend::default().position(corner))
                    })
                    .show(ui, |plot_ui| {
                        for (n, run) in runs.iter().enumerate() {
                            let ys = if score {
                                run.scores()
                            } else {
                                &run.curves.loss
                            };
                            let xy: Vec<[f64; 2]> = run
                                .curves
                                .epochs
                                .iter()
                                .zip(ys)
                                .map(|(&x, &y)| [x, y])
                                .collect();
                            let color = class_color(n);
                            plot_ui.line(Line::new(run.id.clone(), xy.clone()).color(color));
                            plot_ui
                                .points(Points::new(run.id.clone(), xy).color(color).radius(3.0));
                        }
                    });
            });
        }
    });
}

/// Each run's PCA map, coloured by class.
fn pca_maps_ui(ui: &mut egui::Ui, loaded: &[(&str, Arc<RunInspection>)]) {
    let side = ((ui.available_width() / loaded.len() as f32) - 12.0).clamp(160.0, 360.0);
    ui.horizontal(|ui| {
        for (run_id, run) in loaded {
            ui.vertical(|ui| {
                ui.label(format!("PCA of {run_id}"));
                let p = &run.predictions;
                let (x, y) = ("first principal component", "second principal component");
                chart(ui, format!("pca {run_id}"), x, y)
                    .style(|plot| plot.width(side).height(side))
                    .show(ui, |plot_ui| {
                        for (c, name) in p.classes.iter().enumerate() {
                            let xy: Vec<[f64; 2]> = run
                                .pca
                                .points
                                .iter()
                                .zip(&p.labels)
                                .filter(|(_, l)| **l == c)
                                .map(|(xy, _)| [f64::from(xy[0]), f64::from(xy[1])])
                                .collect();
                            plot_ui.points(
                                Points::new(name.clone(), xy)
                                    .color(class_color(c))
                                    .radius(2.5),
                            );
                        }
                    });
            });
        }
    });
}
