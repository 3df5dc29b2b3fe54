//! The Inspector tab: a run's validation images one by one (arrow keys or buttons), the
//! image large with an optional Grad-CAM layer, truth against prediction with a probability
//! bar per class, filters (misclassified, top losses, a class, a confusion cell chosen on
//! the clickable confusion matrix) and the image's nearest neighbours; or the filtered
//! images as a thumbnail grid with prediction and truth on each. Following a neighbour
//! keeps the filter (a neighbour outside it is a detour) and "◀ Back" returns to where the
//! user was. Segmentation runs are shown by [`SegInspectorView`], detection runs by
//! [`DetInspectorView`].

use std::path::Path;

use crate::data::overrides::Overrides;
use crate::inspect::predictions::Predictions;
use crate::inspect::task::{InspectorPane, inspect_task};
use crate::runtime::UiCommand;
use crate::runtime::inspect::InspectSources;
use crate::runtime::inspect::{
    CamChoice, CamKey, InspectCommand, InspectData, Loading, RunInspection,
};
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::ui::confusion::confusion_ui;
use crate::ui::curation::{CurationTarget, image_curation_ui, selection_curation_ui};
use crate::ui::gallery::{Caption, Gallery, GalleryCell, view_toggle_ui};
use crate::ui::inspect_widgets::{
    image_ui, inspection_ui, probability_bars_ui, run_picker_ui, runs_ui,
};
use crate::ui::inspector_det::DetInspectorView;
use crate::ui::inspector_nav::{Arrival, BackStack, InspectorMode, Place};
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
pub struct InspectorView {
    filter: InspectFilter,
    /// Position in the filtered list (the highlighted cell of the grid).
    position: usize,
    /// One image or the grid.
    mode: InspectorMode,
    /// A sample shown outside the filter (after following a neighbour).
    detour: Option<usize>,
    /// A sample index to show once its run is loaded (a neighbour, the Embeddings tab).
    pending: Option<usize>,
    /// Where the view stood in the last frame that showed an image.
    last_place: Option<Place>,
    /// The places left by following neighbours.
    back: BackStack,
    /// "◀ Back" was clicked: returns at the next frame's start.
    go_back: bool,
    /// The thumbnail grid.
    gallery: Gallery,
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

impl Default for InspectorView {
    fn default() -> Self {
        Self {
            filter: InspectFilter::default(),
            position: 0,
            mode: InspectorMode::default(),
            detour: None,
            pending: None,
            last_place: None,
            back: BackStack::default(),
            go_back: false,
            gallery: Gallery::new("inspector_gallery"),
            cam: false,
            cam_opacity: 0.5,
            cam_method: CamChoice::default(),
            listed: None,
            shown: None,
            seg: SegInspectorView::default(),
            det: DetInspectorView::default(),
            row_normalised: false,
        }
    }
}

impl InspectorView {
    /// Shows sample `index` in the single view, keeping the filter when the sample passes
    /// it (otherwise as a detour); where the view stood goes on the back stack.
    pub fn show(&mut self, index: usize) {
        self.pending = Some(index);
    }

    /// The sample index shown large in the last frame (none in the grid).
    pub fn shown(&self) -> Option<usize> {
        self.shown
    }

    /// One image or the grid.
    pub fn mode(&self) -> InspectorMode {
        self.mode
    }

    /// Shows one image or the grid.
    pub fn set_mode(&mut self, mode: InspectorMode) {
        self.mode = mode;
        self.gallery.reveal();
    }

    /// The filter.
    pub fn filter(&self) -> InspectFilter {
        self.filter
    }

    /// The position in the filtered list (the grid's highlighted cell).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The sample shown outside the filter, if any.
    pub fn detour(&self) -> Option<usize> {
        self.detour
    }

    /// Cells per row of the grid when it was last drawn.
    pub fn grid_columns(&self) -> usize {
        self.gallery.columns()
    }

    /// Places on the back stack.
    pub fn back_depth(&self) -> usize {
        self.back.len()
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
        self.back_ui(ui, project, run);
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
            self.arrive(project, &list, index);
        }
        self.detour = self.detour.filter(|&i| i < predictions.len());
        self.toolbar_ui(ui, project, predictions, list.len());
        self.position = self.position.min(list.len().saturating_sub(1));
        let index = match (self.detour, list.get(self.position)) {
            (Some(index), _) => index,
            (None, Some(&index)) => index,
            (None, None) => {
                ui.label("No image passes this filter.");
                self.confusion_ui(ui, predictions);
                return;
            }
        };
        self.last_place = Some(self.place(project, &run_id));
        ui.separator();
        if self.mode == InspectorMode::Grid {
            let target = CurationTarget { project, curation };
            self.grid_ui(ui, predictions, &list, target, thumbnails, commands);
            return;
        }
        self.shown = Some(index);
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

    /// Where the view stands now.
    fn place(&self, project: &Path, run: &str) -> Place {
        Place {
            project: project.to_owned(),
            run: run.to_owned(),
            filter: self.filter,
            position: self.position,
            mode: self.mode,
            detour: self.detour,
        }
    }

    /// Shows sample `index` asked for (a neighbour, a point of the Embeddings tab) in the
    /// single view: at its place in the filtered `list`, else as a detour; where the view
    /// stood goes on the back stack.
    fn arrive(&mut self, project: &Path, list: &[usize], index: usize) {
        if let Some(place) = self.last_place.take().filter(|p| p.project == project) {
            self.back.push(place);
        }
        match Arrival::of(list, index) {
            Arrival::InList(position) => {
                self.position = position;
                self.detour = None;
            }
            Arrival::Detour(index) => self.detour = Some(index),
        }
        self.mode = InspectorMode::Single;
    }

    /// Returns to the newest place on the back stack when "◀ Back" was clicked in the last
    /// frame, or on Alt+Left or Backspace (unless a widget has the keyboard focus).
    fn back_ui(&mut self, ui: &egui::Ui, project: &Path, run: &mut Option<String>) {
        use egui::{Key, Modifiers};
        let clicked = std::mem::take(&mut self.go_back);
        if self.back.peek(project).is_none() {
            return;
        }
        let typing = ui.ctx().memory(|m| m.focused().is_some());
        let keys = !typing
            && ui.ctx().input_mut(|i| {
                i.consume_key(Modifiers::ALT, Key::ArrowLeft)
                    | i.consume_key(Modifiers::NONE, Key::Backspace)
            });
        if !(clicked || keys) {
            return;
        }
        if let Some(place) = self.back.pop(project) {
            *run = Some(place.run);
            self.filter = place.filter;
            self.position = place.position;
            self.mode = place.mode;
            self.detour = place.detour;
            self.pending = None;
            self.last_place = None;
            self.gallery.reveal();
        }
    }

    /// The filtered images as a grid of thumbnails with prediction and truth; a click or
    /// Enter opens one in the single view.
    fn grid_ui(
        &mut self,
        ui: &mut egui::Ui,
        predictions: &Predictions,
        list: &[usize],
        target: CurationTarget<'_>,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        egui::CollapsingHeader::new("Confusion matrix")
            .id_salt("inspector_grid_confusion")
            .show(ui, |ui| self.confusion_ui(ui, predictions));
        // The images shown, as one selection (not "All images": too easy a slip).
        if self.filter != InspectFilter::All {
            let ids: Vec<String> = list.iter().map(|&i| predictions.ids[i].clone()).collect();
            selection_curation_ui(ui, target, &ids, &predictions.classes, commands);
        }
        let dark = ui.visuals().dark_mode;
        let overrides = target.curation.map(crate::project::Curation::overrides);
        let mut menu = |ui: &mut egui::Ui, position: usize| {
            let id = &predictions.ids[list[position]];
            ui.label(id.as_str());
            image_curation_ui(ui, target, id, &predictions.classes, commands);
        };
        let response = self.gallery.ui_with_menu(
            ui,
            thumbnails,
            list.len(),
            &mut self.position,
            |position| {
                let mut cell = grid_cell(dark, predictions, list[position]);
                if let Some(overrides) = &overrides {
                    mark_override(&mut cell, overrides, &predictions.ids[list[position]]);
                }
                cell
            },
            Some(&mut menu),
        );
        if let Some(position) = response.opened {
            self.position = position;
            self.detour = None;
            self.mode = InspectorMode::Single;
        }
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

    /// Back, the filter, the stepper (single view) or the count (grid), and the view toggle;
    /// a note when the image shown is a detour outside the filter.
    fn toolbar_ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        predictions: &Predictions,
        count: usize,
    ) {
        // The grid takes the arrow keys itself.
        let arrows = match self.mode {
            InspectorMode::Single => super::inspect_widgets::arrow_keys(ui),
            InspectorMode::Grid => (false, false),
        };
        ui.horizontal(|ui| {
            let back = self.back.peek(project);
            let hint = back.map_or_else(
                || "Where you were before following a neighbour".to_owned(),
                |place| {
                    format!(
                        "Alt+Left or Backspace: {}, image {}",
                        filter_name(place.filter, predictions),
                        place.position + 1
                    )
                },
            );
            if ui
                .add_enabled(back.is_some(), egui::Button::new("◀ Back"))
                .on_hover_text(hint)
                .on_disabled_hover_text("Where you were before following a neighbour")
                .clicked()
            {
                self.go_back = true;
                ui.ctx().request_repaint();
            }
            ui.separator();
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
                self.detour = None;
            }
            match self.mode {
                InspectorMode::Single => {
                    let stepped =
                        super::inspect_widgets::stepper_ui(ui, &mut self.position, count, arrows);
                    if stepped {
                        self.detour = None;
                    }
                }
                InspectorMode::Grid => {
                    ui.label(format!("{count} images"));
                }
            }
            ui.separator();
            if view_toggle_ui(ui, &mut self.mode) {
                self.detour = None;
                self.gallery.reveal();
            }
        });
        if self.detour.is_some() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "A detour outside the filter \"{}\": ◀ Back, Previous or Next return to it.",
                    filter_name(self.filter, predictions)
                ),
            );
        }
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

/// A grid cell of sample `index`: its image, "✔ predicted" or "✖ predicted" in the
/// outcome's colour, and the true class.
fn grid_cell(dark: bool, predictions: &Predictions, index: usize) -> GalleryCell<'_> {
    let (truth, predicted) = (predictions.labels[index], predictions.predicted[index]);
    let name = |c: usize| predictions.classes.get(c).map_or("?", String::as_str);
    let outcome = Outcome::of(truth, predicted);
    GalleryCell {
        path: predictions.paths[index].as_deref(),
        name: format!(
            "{}: predicted {} ({}), true {}",
            predictions.ids[index],
            name(predicted),
            outcome.word(),
            name(truth)
        ),
        captions: vec![
            Caption {
                text: format!("{} {}", outcome.mark(), name(predicted)),
                color: Some(outcome.color(dark)),
            },
            Caption {
                text: format!("true {}", name(truth)),
                color: None,
            },
        ],
    }
}

/// Adds the project's correction of image `id`, if any, to its cell's second line.
fn mark_override(cell: &mut GalleryCell<'_>, overrides: &Overrides, id: &str) {
    let mark = if overrides.excluded.contains(id) {
        "🚫 left out".to_owned()
    } else if let Some(class) = overrides.relabelled.get(id) {
        format!("✏ ➡ {class}")
    } else {
        return;
    };
    if let Some(line) = cell.captions.last_mut() {
        line.text = format!("{} · {mark}", line.text);
    }
    cell.name = format!("{} ({mark})", cell.name);
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
