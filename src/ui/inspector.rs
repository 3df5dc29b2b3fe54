//! The Inspector tab: a run's validation images one by one (arrow keys or buttons), the
//! image large with an optional Grad-CAM layer, truth against prediction with a probability
//! bar per class, filters (misclassified, top losses, a class, a confusion cell chosen on
//! the clickable confusion matrix) and the image's nearest neighbours. Segmentation runs are
//! shown by [`SegInspectorView`].

use std::path::Path;

use crate::inspect::predictions::Predictions;
use crate::inspect::task::{InspectorPane, inspect_task};
use crate::runtime::UiCommand;
use crate::runtime::inspect::InspectSources;
use crate::runtime::inspect::{
    CamChoice, CamKey, InspectCommand, InspectData, Loading, RunInspection,
};
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::ui::confusion::confusion_ui;
use crate::ui::curation::{CurationTarget, image_curation_ui};
use crate::ui::inspect_widgets::{
    image_ui, inspection_ui, probability_bars_ui, run_picker_ui, runs_ui,
};
use crate::ui::inspector_det::DetInspectorView;
use crate::ui::inspector_seg::SegInspectorView;
use crate::ui::palette::Outcome;

/// Which images the inspector steps through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InspectFilter {
    /// Every image, in split order.
    #[default]
    All,
    /// Images predicted wrong.
    Misclassified,
    /// Every image, highest loss first.
    TopLosses,
    /// Images of one true class.
    Class(usize),
    /// Images of one confusion cell: (true class, predicted class).
    Cell(usize, usize),
}

impl InspectFilter {
    /// The sample indices passing the filter, in display order.
    pub fn apply(self, predictions: &Predictions) -> Vec<usize> {
        let all = 0..predictions.len();
        match self {
            InspectFilter::All => all.collect(),
            InspectFilter::Misclassified => all
                .filter(|&i| predictions.labels[i] != predictions.predicted[i])
                .collect(),
            InspectFilter::TopLosses => predictions
                .top_losses(predictions.len())
                .into_iter()
                .map(|e| e.index)
                .collect(),
            InspectFilter::Class(c) => all.filter(|&i| predictions.labels[i] == c).collect(),
            InspectFilter::Cell(t, p) => predictions
                .confusion_cells()
                .get(t)
                .and_then(|row| row.get(p))
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// The Inspector view's state.
#[derive(Default)]
pub struct InspectorView {
    filter: InspectFilter,
    /// Position in the filtered list.
    position: usize,
    /// A sample index to show once its run is loaded (from the Embeddings tab).
    pending: Option<usize>,
    cam: bool,
    cam_opacity: f32,
    cam_method: CamChoice,
    /// (run, filter) and the filtered list made for them.
    listed: Option<(String, InspectFilter, Vec<usize>)>,
    /// The sample index shown in the last frame.
    shown: Option<usize>,
    /// The view of segmentation runs.
    seg: SegInspectorView,
    /// The view of detection runs.
    det: DetInspectorView,
    /// The confusion matrix shows each row's shares instead of counts.
    row_normalised: bool,
}

impl InspectorView {
    /// Shows sample `index` (every image listed).
    pub fn show(&mut self, index: usize) {
        self.filter = InspectFilter::All;
        self.pending = Some(index);
    }

    /// The sample index shown in the last frame.
    pub fn shown(&self) -> Option<usize> {
        self.shown
    }

    /// The view of segmentation runs.
    pub fn segmentation(&self) -> &SegInspectorView {
        &self.seg
    }

    /// The view of detection runs.
    pub fn detection(&self) -> &DetInspectorView {
        &self.det
    }

    /// The view of detection runs, to change its settings (tests).
    pub fn detection_mut(&mut self) -> &mut DetInspectorView {
        &mut self.det
    }

    /// Lays out the tab for the project at `project`; `run` is shared with Embeddings.
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
        self.shown = None;
        let Some(runs) = runs_ui(ui, project, runs, commands) else {
            return;
        };
        run_picker_ui(ui, runs, run);
        let Some(run_id) = run.clone() else {
            ui.label("No run to inspect.");
            return;
        };
        let pane = runs
            .iter()
            .find(|r| r.id == run_id)
            .map_or(InspectorPane::ImagePredictions, |r| {
                inspect_task(r.task).pane()
            });
        match pane {
            InspectorPane::Masks => {
                self.seg
                    .ui(ui, project, &run_id, data, thumbnails, commands);
                self.shown = self.seg.shown();
                return;
            }
            InspectorPane::Boxes => {
                self.det
                    .ui(ui, project, &run_id, data, thumbnails, commands);
                self.shown = self.det.shown();
                return;
            }
            InspectorPane::ImagePredictions => {}
        }
        let Some(inspection) = inspection_ui(ui, project, &run_id, data, commands) else {
            return;
        };
        let predictions = &inspection.predictions;
        let list = self.list(&run_id, predictions);
        if let Some(index) = self.pending.take() {
            self.position = list.iter().position(|&i| i == index).unwrap_or(0);
        }
        self.toolbar_ui(ui, predictions, list.len());
        self.position = self.position.min(list.len().saturating_sub(1));
        let Some(&index) = list.get(self.position) else {
            ui.label("No image passes this filter.");
            self.confusion_ui(ui, predictions);
            return;
        };
        self.shown = Some(index);
        ui.separator();
        // Scrolls on small windows so the neighbours strip stays reachable.
        egui::ScrollArea::vertical()
            .id_salt("inspector_body")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.horizontal_top(|ui| {
                    self.image_column_ui(
                        ui, project, &run_id, inspection, index, data, thumbnails, commands,
                    );
                    ui.vertical(|ui| {
                        facts_ui(ui, predictions, index);
                        let target = CurationTarget { project, curation };
                        let id = &predictions.ids[index];
                        image_curation_ui(ui, target, id, &predictions.classes, commands);
                        ui.separator();
                        self.cam_controls_ui(ui);
                        ui.separator();
                        self.confusion_ui(ui, predictions);
                    });
                });
                ui.separator();
                let key = (project.to_owned(), run_id.clone());
                neighbours_ui(ui, &key, inspection, index, data, thumbnails, commands);
            });
    }

    /// The confusion matrix; a click on a cell filters the images to it.
    fn confusion_ui(&mut self, ui: &mut egui::Ui, predictions: &Predictions) {
        let selected = match self.filter {
            InspectFilter::Cell(t, p) => Some((t, p)),
            _ => None,
        };
        let counts = predictions.confusion_counts();
        let clicked = confusion_ui(
            ui,
            &predictions.classes,
            &counts,
            selected,
            &mut self.row_normalised,
        );
        if let Some((t, p)) = clicked {
            self.filter = InspectFilter::Cell(t, p);
        }
    }

    /// The filtered list for `run`, made again when the run or the filter changed.
    fn list(&mut self, run: &str, predictions: &Predictions) -> Vec<usize> {
        match &self.listed {
            Some((r, f, list)) if r == run && *f == self.filter => list.clone(),
            _ => {
                let list = self.filter.apply(predictions);
                self.listed = Some((run.to_owned(), self.filter, list.clone()));
                list
            }
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, predictions: &Predictions, count: usize) {
        let arrows = super::inspect_widgets::arrow_keys(ui);
        ui.horizontal(|ui| {
            let before = self.filter;
            let label = ui.label("Filter");
            egui::ComboBox::from_id_salt("inspect_filter")
                .selected_text(filter_name(self.filter, predictions))
                .show_ui(ui, |ui| {
                    for filter in [
                        InspectFilter::All,
                        InspectFilter::Misclassified,
                        InspectFilter::TopLosses,
                    ] {
                        let name = filter_name(filter, predictions);
                        ui.selectable_value(&mut self.filter, filter, name);
                    }
                    for class in 0..predictions.classes.len() {
                        let filter = InspectFilter::Class(class);
                        let name = filter_name(filter, predictions);
                        ui.selectable_value(&mut self.filter, filter, name);
                    }
                })
                .response
                .labelled_by(label.id);
            if self.filter != before {
                self.position = 0;
            }
            super::inspect_widgets::stepper_ui(ui, &mut self.position, count, arrows);
        });
    }

    #[allow(clippy::too_many_arguments)] // The view's pieces, passed apart for the borrows.
    fn image_column_ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        run: &str,
        inspection: &RunInspection,
        index: usize,
        data: &InspectData,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let path = inspection.predictions.paths[index].as_deref();
        let cam = match (self.cam, path) {
            (true, Some(path)) => {
                let key = CamKey {
                    project: project.to_owned(),
                    run: run.to_owned(),
                    image: path.to_owned(),
                    method: self.cam_method,
                };
                let state = data.cams.get(&key);
                if state.is_none() {
                    commands.push(UiCommand::Inspect(InspectCommand::Cam(key)));
                }
                state
            }
            _ => None,
        };
        ui.vertical(|ui| {
            let side = ui
                .available_height()
                .clamp(160.0, 420.0)
                .min(ui.available_width() * 0.55);
            let layer = match cam {
                Some(Loading::Ready(cam)) => Some((&cam.texture, self.cam_opacity)),
                _ => None,
            };
            image_ui(ui, thumbnails, path, ThumbnailSize::Preview, side, layer);
            ui.label(format!("Image: {}", inspection.predictions.ids[index]));
            match cam {
                Some(Loading::Running { .. }) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Computing the heatmap…");
                    });
                }
                Some(Loading::Ready(cam)) => {
                    let class = inspection.predictions.classes.get(cam.class);
                    ui.label(format!(
                        "Heatmap explains '{}' (p = {:.2})",
                        class.map_or("?", String::as_str),
                        cam.score
                    ));
                }
                Some(Loading::Failed(message)) => {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                }
                None => {}
            }
        });
    }

    fn cam_controls_ui(&mut self, ui: &mut egui::Ui) {
        if self.cam_opacity == 0.0 {
            self.cam_opacity = 0.5;
        }
        ui.checkbox(&mut self.cam, "Grad-CAM overlay");
        ui.add_enabled_ui(self.cam, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("Heatmap opacity");
                ui.add(egui::Slider::new(&mut self.cam_opacity, 0.05..=1.0))
                    .labelled_by(label.id);
            });
            ui.horizontal(|ui| {
                ui.radio_value(&mut self.cam_method, CamChoice::GradCam, "Grad-CAM");
                ui.radio_value(&mut self.cam_method, CamChoice::HiResCam, "HiResCAM");
            });
        });
    }
}

fn filter_name(filter: InspectFilter, predictions: &Predictions) -> String {
    let class = |c: usize| predictions.classes.get(c).map_or("?", String::as_str);
    match filter {
        InspectFilter::All => "All images".to_owned(),
        InspectFilter::Misclassified => "Misclassified".to_owned(),
        InspectFilter::TopLosses => "Top losses".to_owned(),
        InspectFilter::Class(c) => format!("Class {}", class(c)),
        InspectFilter::Cell(t, p) => format!("True {} predicted {}", class(t), class(p)),
    }
}

/// Truth, prediction (✔ right or ✖ wrong), loss and the probability bars of image `index`.
fn facts_ui(ui: &mut egui::Ui, predictions: &Predictions, index: usize) {
    let (truth, predicted) = (predictions.labels[index], predictions.predicted[index]);
    let name = |c: usize| predictions.classes.get(c).map_or("?", String::as_str);
    ui.label(format!("Ground truth: {}", name(truth)));
    let outcome = Outcome::of(truth, predicted);
    ui.label(outcome.rich(
        ui,
        &format!("Prediction: {} ({})", name(predicted), outcome.word()),
    ));
    ui.label(format!("Loss: {:.3}", predictions.losses[index]));
    probability_bars_ui(
        ui,
        &predictions.classes,
        &predictions.probabilities[index],
        (truth, predicted),
    );
}

/// The nearest neighbours of image `index` as clickable thumbnails (a click shows it).
fn neighbours_ui(
    ui: &mut egui::Ui,
    key: &crate::runtime::inspect::RunKey,
    inspection: &RunInspection,
    index: usize,
    data: &InspectData,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<UiCommand>,
) {
    ui.label("Nearest neighbours (cosine similarity of the embeddings)");
    let found = match data.neighbours.get(&(key.clone(), index)) {
        None => {
            commands.push(UiCommand::Inspect(InspectCommand::Neighbours(
                key.clone(),
                index,
            )));
            return;
        }
        Some(Loading::Ready(found)) => found,
        Some(Loading::Failed(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
            return;
        }
        Some(Loading::Running { .. }) => {
            ui.spinner();
            return;
        }
    };
    let predictions = &inspection.predictions;
    egui::ScrollArea::horizontal().show(ui, |ui| {
        ui.horizontal(|ui| {
            for neighbour in found.iter().filter(|n| n.index != index) {
                let i = neighbour.index;
                ui.vertical(|ui| {
                    let path = predictions.paths[i].as_deref();
                    let response = image_ui(ui, thumbnails, path, ThumbnailSize::Tile, 88.0, None);
                    let id = &predictions.ids[i];
                    response.widget_info(|| {
                        egui::WidgetInfo::labeled(
                            egui::Role::Button,
                            true,
                            format!("Neighbour {id}"),
                        )
                    });
                    if response.on_hover_text(id).clicked() {
                        commands.push(UiCommand::Inspect(InspectCommand::ShowInInspector(
                            key.1.clone(),
                            i,
                        )));
                    }
                    let (truth, predicted) = (predictions.labels[i], predictions.predicted[i]);
                    let outcome = Outcome::of(truth, predicted);
                    let class = &predictions.classes[truth];
                    ui.label(
                        outcome
                            .rich(ui, &format!("{class} | {:.2}", neighbour.similarity))
                            .small(),
                    )
                    .on_hover_text(format!(
                        "{} prediction: {}",
                        outcome.word(),
                        predictions.classes[predicted]
                    ));
                });
            }
        });
    });
}
