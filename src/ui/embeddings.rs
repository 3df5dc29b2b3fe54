//! The Embeddings tab: a 2-D map (PCA, or t-SNE computed on demand with progress and
//! cancel) of a run's validation embeddings, coloured by class or by correctness. Hovering a
//! point shows its image and id, a click opens it in the Inspector, and in box mode a drag
//! selects the points inside a rectangle, listed below the plot.

use std::path::Path;

use egui_plot::{Legend, MarkerShape, PlotPoint, Points, Polygon};

use crate::inspect::Projection;
use crate::inspect::task::offers;
use crate::runtime::UiCommand;
use crate::runtime::inspect::InspectSources;
use crate::runtime::inspect::{InspectCommand, Loading, RunInspection};
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::ui::curation::{CurationTarget, selection_curation_ui};
use crate::ui::inspect_widgets::{class_color, image_ui, inspection_ui, run_picker_ui, runs_ui};
use crate::ui::palette::Outcome;
use crate::ui::plot_style::chart;

/// Hover distance to a point, in screen points.
const HOVER_RADIUS: f32 = 8.0;

/// Which map is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapKind {
    /// Principal components (always available).
    #[default]
    Pca,
    /// t-SNE (computed on demand).
    Tsne,
}

/// How points are coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colouring {
    /// By true class.
    #[default]
    Class,
    /// Right or wrong prediction.
    Correctness,
}

/// The Embeddings view's state.
#[derive(Default)]
pub struct EmbeddingsView {
    map: MapKind,
    colouring: Colouring,
    select_box: bool,
    drag_start: Option<PlotPoint>,
    selection: Vec<usize>,
    shown_points: usize,
}

impl EmbeddingsView {
    /// Points drawn in the last frame.
    pub fn shown_points(&self) -> usize {
        self.shown_points
    }

    /// Sample indices of the box selection.
    pub fn selection(&self) -> &[usize] {
        &self.selection
    }

    /// Lays out the tab for the project at `project`; `run` is shared with the Inspector.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        run: &mut Option<String>,
        sources: InspectSources<'_>,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let InspectSources {
            data,
            runs,
            curation,
        } = sources;
        self.shown_points = 0;
        let Some(runs) = runs_ui(ui, project, runs, commands) else {
            return;
        };
        ui.horizontal(|ui| {
            run_picker_ui(ui, runs, run);
            ui.separator();
            ui.radio_value(&mut self.map, MapKind::Pca, "PCA");
            ui.radio_value(&mut self.map, MapKind::Tsne, "t-SNE");
            ui.separator();
            ui.radio_value(&mut self.colouring, Colouring::Class, "Colour by class");
            ui.radio_value(
                &mut self.colouring,
                Colouring::Correctness,
                "Colour by correctness",
            );
            ui.separator();
            ui.checkbox(&mut self.select_box, "Select box")
                .on_hover_text("Drag a rectangle to list the images inside it");
        });
        let Some(run_id) = run.clone() else {
            return;
        };
        if let Some(chosen) = runs.iter().find(|r| r.id == run_id)
            && !offers(chosen.task).embeddings
        {
            ui.label(format!(
                "{run_id} is a {} run: embedding maps are made for classification runs. The \
                 Inspector shows what it predicts.",
                chosen.task.label()
            ));
            return;
        }
        let Some(inspection) = inspection_ui(ui, project, &run_id, data, commands) else {
            return;
        };
        let key = (project.to_owned(), run_id.clone());
        let projection = match self.map {
            MapKind::Pca => {
                let ratio = &inspection.pca.explained_variance_ratio;
                ui.label(format!(
                    "PCA of {} embeddings: the axes explain {:.0}% and {:.0}% of the variance",
                    inspection.pca.points.len(),
                    ratio.first().copied().unwrap_or(0.0) * 100.0,
                    ratio.get(1).copied().unwrap_or(0.0) * 100.0
                ));
                &inspection.pca
            }
            MapKind::Tsne => match data.tsne.get(&key).map(|job| &job.state) {
                Some(Loading::Ready(map)) => map,
                state => {
                    tsne_state_ui(ui, &key, state, commands);
                    return;
                }
            },
        };
        self.plot_ui(ui, &run_id, inspection, projection, thumbnails, commands);
        let target = CurationTarget { project, curation };
        self.selection_ui(ui, inspection, target, commands);
    }

    fn plot_ui(
        &mut self,
        ui: &mut egui::Ui,
        run: &str,
        inspection: &RunInspection,
        projection: &Projection,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let predictions = &inspection.predictions;
        let points = &projection.points;
        self.shown_points = points.len();
        let dark = ui.visuals().dark_mode;
        let groups: Vec<(String, egui::Color32, MarkerShape, Vec<[f64; 2]>)> = match self.colouring
        {
            Colouring::Class => (0..predictions.classes.len())
                .map(|c| {
                    let xy = select(points, |i| predictions.labels[i] == c);
                    let color = class_color(c);
                    (
                        predictions.classes[c].clone(),
                        color,
                        MarkerShape::Circle,
                        xy,
                    )
                })
                .collect(),
            Colouring::Correctness => [
                (Outcome::Right, MarkerShape::Circle),
                (Outcome::Wrong, MarkerShape::Cross),
            ]
            .into_iter()
            .map(|(outcome, shape)| {
                let xy = select(points, |i| {
                    Outcome::of(predictions.labels[i], predictions.predicted[i]) == outcome
                });
                let name = format!("{} {}", outcome.mark(), outcome.word());
                (name, outcome.color(dark), shape, xy)
            })
            .collect(),
        };
        let height = (ui.available_height() - 160.0).max(240.0);
        let drag_start = self.drag_start;
        let select_box = self.select_box;
        let (x, y) = match self.map {
            MapKind::Pca => ("first principal component", "second principal component"),
            MapKind::Tsne => ("t-SNE 1", "t-SNE 2"),
        };
        let response = chart(ui, "embedding_map", x, y)
            .style(|plot| {
                plot.height(height)
                    .legend(Legend::default())
                    .allow_drag(!select_box)
                    .allow_boxed_zoom(!select_box)
            })
            .show(ui, move |plot_ui| {
                for (name, color, shape, xy) in groups {
                    let radius = if shape == MarkerShape::Cross {
                        4.0
                    } else {
                        3.0
                    };
                    plot_ui.points(
                        Points::new(name, xy)
                            .color(color)
                            .shape(shape)
                            .radius(radius),
                    );
                }
                if let (Some(start), Some(now)) = (drag_start, plot_ui.pointer_coordinate()) {
                    let corners = vec![
                        [start.x, start.y],
                        [now.x, start.y],
                        [now.x, now.y],
                        [start.x, now.y],
                    ];
                    plot_ui.polygon(Polygon::new("selection", corners));
                }
                plot_ui.pointer_coordinate()
            });
        let transform = response.transform;
        let pointer = response.response.hover_pos();
        let hovered = pointer.and_then(|pos| {
            points
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let at = transform.position_from_point(&PlotPoint::new(p[0], p[1]));
                    (i, at.distance(pos))
                })
                .filter(|(_, d)| *d <= HOVER_RADIUS)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        });
        if select_box {
            if response.response.drag_started() {
                self.drag_start = response.inner;
            }
            if response.response.drag_stopped() {
                if let (Some(start), Some(end)) = (self.drag_start, response.inner) {
                    let (x0, x1) = (start.x.min(end.x), start.x.max(end.x));
                    let (y0, y1) = (start.y.min(end.y), start.y.max(end.y));
                    self.selection = (0..points.len())
                        .filter(|&i| {
                            let [x, y] = points[i].map(f64::from);
                            (x0..=x1).contains(&x) && (y0..=y1).contains(&y)
                        })
                        .collect();
                }
                self.drag_start = None;
            }
        }
        if let Some(i) = hovered {
            let path = predictions.paths[i].as_deref();
            let outcome = Outcome::of(predictions.labels[i], predictions.predicted[i]);
            let label = format!(
                "{} {} ({}, predicted {})",
                outcome.mark(),
                predictions.ids[i],
                predictions.classes[predictions.labels[i]],
                predictions.classes[predictions.predicted[i]]
            );
            response.response.clone().on_hover_ui_at_pointer(|ui| {
                image_ui(ui, thumbnails, path, ThumbnailSize::Tile, 96.0, None);
                ui.label(label);
            });
            if response.response.clicked() && !select_box {
                let command = InspectCommand::ShowInInspector(run.to_owned(), i);
                commands.push(UiCommand::Inspect(command));
            }
        }
    }

    fn selection_ui(
        &self,
        ui: &mut egui::Ui,
        inspection: &RunInspection,
        target: CurationTarget<'_>,
        commands: &mut Vec<UiCommand>,
    ) {
        if self.selection.is_empty() {
            if self.select_box {
                ui.label("Drag a rectangle on the map to select images.");
            } else {
                ui.label("Hover a point to see its image; click it to open it in the Inspector.");
            }
            return;
        }
        let predictions = &inspection.predictions;
        ui.label(format!("Selected: {} images", self.selection.len()));
        let ids: Vec<String> = self
            .selection
            .iter()
            .map(|&i| predictions.ids[i].clone())
            .collect();
        selection_curation_ui(ui, target, &ids, &predictions.classes, commands);
        egui::ScrollArea::vertical()
            .id_salt("embedding_selection")
            .max_height(140.0)
            .show(ui, |ui| {
                for &i in &self.selection {
                    ui.label(format!(
                        "{} - {} (predicted {})",
                        predictions.ids[i],
                        predictions.classes[predictions.labels[i]],
                        predictions.classes[predictions.predicted[i]]
                    ));
                }
            });
    }
}

/// The points of samples `keep` accepts.
fn select(points: &[[f32; 2]], keep: impl Fn(usize) -> bool) -> Vec<[f64; 2]> {
    points
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, p)| [f64::from(p[0]), f64::from(p[1])])
        .collect()
}

/// A t-SNE map not ready yet: a button to start it, its progress with Cancel, or why not.
fn tsne_state_ui(
    ui: &mut egui::Ui,
    key: &crate::runtime::inspect::RunKey,
    state: Option<&Loading<Projection>>,
    commands: &mut Vec<UiCommand>,
) {
    let start = |commands: &mut Vec<UiCommand>| {
        commands.push(UiCommand::Inspect(InspectCommand::StartTsne(key.clone())));
    };
    match state {
        None => {
            if ui.button("Compute t-SNE").clicked() {
                start(commands);
            }
        }
        Some(state @ Loading::Running { .. }) => {
            ui.horizontal(|ui| {
                crate::ui::progress::progress_bar(ui, "t-SNE iterations", state, 320.0);
                if ui.button("Cancel t-SNE").clicked() {
                    commands.push(UiCommand::Inspect(InspectCommand::CancelTsne(key.clone())));
                }
            });
        }
        Some(Loading::Failed(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
            if ui.button("Compute t-SNE again").clicked() {
                start(commands);
            }
        }
        Some(Loading::Ready(_)) => {}
    }
}
