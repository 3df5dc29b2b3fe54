//! Runtime behind the Inspector, Embeddings and Compare tabs (never serialised): the runs of
//! each project with their histories, each run's predictions, embeddings and PCA map on the
//! validation split, nearest neighbours, Grad-CAM heatmaps and t-SNE maps (segmentation runs:
//! [`super::inspect_seg`]). Everything is computed by [`super::inspect_jobs`] on worker
//! threads and arrives as plain data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::inspect_jobs::{self, CamPixels, RunSummary};
use super::inspect_seg::{SegCommand, SegData, SegEvent};
use super::{AppEvent, CentralTab, UiCommand};
use crate::inspect::predictions::Predictions;
use crate::inspect::{Neighbour, NeighbourIndex, Projection};
use crate::ui::compare::CompareView;
use crate::ui::embeddings::EmbeddingsView;
use crate::ui::inspector::InspectorView;
use crate::ui::thumbnails::ThumbnailCache;

/// Neighbours shown per image.
pub const NEIGHBOURS: usize = 8;

/// A run of a project: (project folder, run id).
pub type RunKey = (PathBuf, String);

/// The Grad-CAM variants offered in the inspector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CamChoice {
    /// Grad-CAM: channel weights are the gradient's spatial mean.
    #[default]
    GradCam,
    /// HiResCAM: the gradient times the activation, element-wise.
    HiResCam,
}

/// One heatmap request: which run explains which image, how.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CamKey {
    /// The project folder.
    pub project: PathBuf,
    /// The run id.
    pub run: String,
    /// The image file.
    pub image: PathBuf,
    /// The method.
    pub method: CamChoice,
}

/// A run's predictions, embeddings and PCA map on the validation split.
#[derive(Debug)]
pub struct RunInspection {
    /// Per-image predictions (ids, paths, labels, probabilities, losses).
    pub predictions: Predictions,
    /// Row-major embeddings `[len x dim]`.
    pub embeddings: Vec<f32>,
    /// Embedding width.
    pub dim: usize,
    /// The embeddings' nearest-neighbour index.
    pub neighbours: NeighbourIndex,
    /// PCA of the embeddings (one point per image).
    pub pca: Projection,
    /// Image position by sample id.
    pub index_of_id: HashMap<String, usize>,
}

/// Something computed on a worker: in progress, ready, or failed.
#[derive(Clone, Debug)]
pub enum Loading<T> {
    /// Running: `done` of `total` (0 of 0 when unknown).
    Running {
        /// Work done.
        done: usize,
        /// Work in all.
        total: usize,
    },
    /// Finished.
    Ready(T),
    /// Failed or stopped, with the reason.
    Failed(String),
}

impl<T> Loading<T> {
    /// Whether it is still being computed.
    pub fn is_running(&self) -> bool {
        matches!(self, Loading::Running { .. })
    }

    /// The value, when ready.
    pub fn ready(&self) -> Option<&T> {
        match self {
            Loading::Ready(value) => Some(value),
            _ => None,
        }
    }
}

/// A t-SNE map being computed, with its stop flag.
pub struct TsneJob {
    /// Progress or result.
    pub state: Loading<Projection>,
    /// Set to cancel.
    pub stop: Arc<AtomicBool>,
}

/// A finished heatmap as a texture.
pub struct CamTexture {
    /// The coloured heatmap (opaque; drawn with the chosen opacity).
    pub texture: egui::TextureHandle,
    /// The class it explains.
    pub class: usize,
    /// The model's probability of that class.
    pub score: f32,
}

/// What the inspection views ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum InspectCommand {
    /// List the project's runs with their configs and histories.
    ListRuns(PathBuf),
    /// Compute (or read from the run's cache) a run's predictions and embeddings.
    LoadRun(RunKey),
    /// Find the nearest neighbours of image `index` of a loaded run.
    Neighbours(RunKey, usize),
    /// Compute a Grad-CAM heatmap.
    Cam(CamKey),
    /// Start a t-SNE map of a loaded run's embeddings.
    StartTsne(RunKey),
    /// Stop a running t-SNE map.
    CancelTsne(RunKey),
    /// Show image `index` of a run in the Inspector tab.
    ShowInInspector(String, usize),
    /// A request of the segmentation inspector.
    Seg(SegCommand),
}

/// Results of the inspection workers.
#[derive(Debug)]
pub enum InspectEvent {
    /// A project's runs were listed.
    Runs(PathBuf, Result<Vec<RunSummary>, String>),
    /// A run's embedding pass progressed.
    LoadProgress(RunKey, usize, usize),
    /// A run's inspection finished.
    Loaded(RunKey, Result<Box<RunInspection>, String>),
    /// Neighbours of an image.
    Neighbours(RunKey, usize, Result<Vec<Neighbour>, String>),
    /// A heatmap was made.
    Cam(CamKey, Result<Box<CamPixels>, String>),
    /// A t-SNE map progressed.
    TsneProgress(RunKey, usize, usize),
    /// A t-SNE map finished (`None`: stopped).
    Tsne(RunKey, Result<Option<Projection>, String>),
    /// A segmentation worker finished or progressed.
    Seg(SegEvent),
}

/// The inspection tabs and their names, in the order of the tab bar.
pub const TABS: [(CentralTab, &str); 3] = [
    (CentralTab::Inspector, "Inspector"),
    (CentralTab::Embeddings, "Embeddings"),
    (CentralTab::Compare, "Compare"),
];

/// Lays out inspection tab `tab` for the project at `project`.
pub fn tabs_ui(
    tabs: &mut InspectTabs,
    tab: CentralTab,
    ui: &mut egui::Ui,
    project: &Path,
    thumbnails: &mut ThumbnailCache,
    commands: &mut Vec<UiCommand>,
) {
    let InspectTabs {
        data,
        run,
        inspector,
        embeddings,
        compare,
    } = tabs;
    match tab {
        CentralTab::Inspector => inspector.ui(ui, project, run, data, thumbnails, commands),
        CentralTab::Embeddings => embeddings.ui(ui, project, run, data, thumbnails, commands),
        CentralTab::Compare => compare.ui(ui, project, data, thumbnails, commands),
        _ => {}
    }
}

/// What the inspection workers produced, per project and run.
#[derive(Default)]
pub struct InspectData {
    /// Runs per project.
    pub runs: HashMap<PathBuf, Loading<Arc<Vec<RunSummary>>>>,
    /// Loaded runs.
    pub inspections: HashMap<RunKey, Loading<Arc<RunInspection>>>,
    /// Neighbours per (run, image).
    pub neighbours: HashMap<(RunKey, usize), Loading<Vec<Neighbour>>>,
    /// Heatmaps.
    pub cams: HashMap<CamKey, Loading<CamTexture>>,
    /// t-SNE maps.
    pub tsne: HashMap<RunKey, TsneJob>,
    /// Segmentation runs' masks and overlays.
    pub seg: SegData,
    /// Set on shutdown: long jobs stop.
    pub shutdown: Arc<AtomicBool>,
}

impl InspectData {
    /// A loaded run, if ready.
    pub fn inspection(&self, project: &Path, run: &str) -> Option<&Arc<RunInspection>> {
        self.inspections
            .get(&(project.to_owned(), run.to_owned()))
            .and_then(Loading::ready)
    }

    /// The project's runs, if listed.
    pub fn runs_of(&self, project: &Path) -> Option<&Loading<Arc<Vec<RunSummary>>>> {
        self.runs.get(project)
    }
}

/// The inspection tabs: their runtime data and their views.
#[derive(Default)]
pub struct InspectTabs {
    /// Computed data.
    pub data: InspectData,
    /// The run the Inspector and Embeddings tabs show.
    pub run: Option<String>,
    /// The Inspector view.
    pub inspector: InspectorView,
    /// The Embeddings view.
    pub embeddings: EmbeddingsView,
    /// The Compare view.
    pub compare: CompareView,
}

impl InspectTabs {
    /// Stops every long job (on shutdown).
    pub fn cancel_all(&self) {
        self.data.shutdown.store(true, Ordering::Relaxed);
        for job in self.data.tsne.values() {
            job.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Whether nothing this tab shows is still being computed (for screenshots).
    pub fn settled(&self, tab: CentralTab, project: &Path) -> bool {
        let data = &self.data;
        let runs_listed = matches!(
            data.runs.get(project),
            Some(Loading::Ready(_) | Loading::Failed(_))
        );
        let running = |l: &Loading<Arc<RunInspection>>| matches!(l, Loading::Running { .. });
        let loads_done = !data.inspections.values().any(running);
        let cams_done = !data
            .cams
            .values()
            .any(|c| matches!(c, Loading::Running { .. }));
        let neighbours_done = !data
            .neighbours
            .values()
            .any(|n| matches!(n, Loading::Running { .. }));
        // A segmentation run in the Embeddings tab loads nothing (the tab says why).
        let seg_chosen = match (data.runs.get(project), &self.run) {
            (Some(Loading::Ready(runs)), Some(id)) => {
                runs.iter().any(|r| &r.id == id && r.segmentation)
            }
            _ => false,
        };
        // No runs (or a run list that failed) leaves nothing to load: the tab says so.
        let nothing_to_load = match data.runs.get(project) {
            Some(Loading::Ready(runs)) => runs.is_empty(),
            Some(Loading::Failed(_)) => true,
            _ => false,
        };
        let any_loaded = data.inspections.keys().any(|(p, _)| p == project)
            || data.seg.any_of(project)
            || (tab == CentralTab::Embeddings && seg_chosen)
            || nothing_to_load;
        match tab {
            CentralTab::Inspector | CentralTab::Embeddings => {
                let seg_done = data.seg.idle();
                runs_listed && loads_done && cams_done && neighbours_done && seg_done && any_loaded
            }
            CentralTab::Compare => runs_listed && loads_done && cams_done,
            _ => true,
        }
    }
}

impl super::WorkbenchApp {
    /// The inspection tabs' data and views.
    pub fn inspect(&self) -> &InspectTabs {
        &self.inspect
    }

    /// Runs a command of the inspection views.
    pub(super) fn inspect_command(&mut self, ctx: &egui::Context, command: InspectCommand) {
        let stop = self.inspect.data.shutdown.clone();
        match command {
            InspectCommand::ListRuns(project) => {
                if matches!(
                    self.inspect.data.runs.get(&project),
                    Some(Loading::Running { .. })
                ) {
                    return;
                }
                let state = Loading::Running { done: 0, total: 0 };
                self.inspect.data.runs.insert(project.clone(), state);
                self.spawn(ctx, "list-runs", move || {
                    let runs = inspect_jobs::list_runs(&project);
                    AppEvent::Inspect(InspectEvent::Runs(project, runs))
                });
            }
            InspectCommand::LoadRun(key) => {
                if self.inspect.data.inspections.contains_key(&key) {
                    return;
                }
                let state = Loading::Running { done: 0, total: 0 };
                self.inspect.data.inspections.insert(key.clone(), state);
                let (events, repaint) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "inspect-run", move || {
                    let mut progress = |done, total| {
                        let event = InspectEvent::LoadProgress(key.clone(), done, total);
                        let _ = events.try_send(AppEvent::Inspect(event));
                        repaint.request_repaint();
                    };
                    let result = inspect_jobs::load_run(&key.0, &key.1, &mut progress, &stop);
                    AppEvent::Inspect(InspectEvent::Loaded(key, result.map(Box::new)))
                });
            }
            InspectCommand::Neighbours(key, index) => {
                let Some(run) = self.inspect.data.inspection(&key.0, &key.1).cloned() else {
                    return;
                };
                let cache_key = (key.clone(), index);
                if self.inspect.data.neighbours.contains_key(&cache_key) {
                    return;
                }
                let state = Loading::Running { done: 0, total: 0 };
                self.inspect.data.neighbours.insert(cache_key, state);
                self.spawn(ctx, "neighbours", move || {
                    let found = run
                        .neighbours
                        .of_sample(index, NEIGHBOURS)
                        .map_err(|e| e.to_string());
                    AppEvent::Inspect(InspectEvent::Neighbours(key, index, found))
                });
            }
            InspectCommand::Cam(key) => {
                if self.inspect.data.cams.contains_key(&key) {
                    return;
                }
                let state = Loading::Running { done: 0, total: 0 };
                self.inspect.data.cams.insert(key.clone(), state);
                self.spawn(ctx, "grad-cam", move || {
                    let result = inspect_jobs::cam(&key).map(Box::new);
                    AppEvent::Inspect(InspectEvent::Cam(key, result))
                });
            }
            InspectCommand::StartTsne(key) => self.start_tsne(ctx, key),
            InspectCommand::CancelTsne(key) => {
                if let Some(job) = self.inspect.data.tsne.get(&key) {
                    job.stop.store(true, Ordering::Relaxed);
                }
            }
            InspectCommand::ShowInInspector(run, index) => {
                self.inspect.run = Some(run);
                self.inspect.inspector.show(index);
                self.tab = CentralTab::Inspector;
            }
            InspectCommand::Seg(command) => self.seg_command(ctx, command),
        }
    }

    fn start_tsne(&mut self, ctx: &egui::Context, key: RunKey) {
        let Some(run) = self.inspect.data.inspection(&key.0, &key.1).cloned() else {
            return;
        };
        if matches!(
            self.inspect.data.tsne.get(&key),
            Some(TsneJob {
                state: Loading::Running { .. } | Loading::Ready(_),
                ..
            })
        ) {
            return;
        }
        let stop = Arc::new(AtomicBool::new(
            self.inspect.data.shutdown.load(Ordering::Relaxed),
        ));
        let job = TsneJob {
            state: Loading::Running { done: 0, total: 0 },
            stop: stop.clone(),
        };
        self.inspect.data.tsne.insert(key.clone(), job);
        let (events, repaint) = (self.events_tx.clone(), ctx.clone());
        self.spawn(ctx, "t-sne", move || {
            let mut progress = |done, total| {
                let event = InspectEvent::TsneProgress(key.clone(), done, total);
                let _ = events.try_send(AppEvent::Inspect(event));
                repaint.request_repaint();
            };
            let result = inspect_jobs::tsne_map(&run.embeddings, run.dim, &mut progress, &stop);
            AppEvent::Inspect(InspectEvent::Tsne(key, result))
        });
    }

    /// Applies an event of the inspection workers.
    pub(super) fn inspect_event(&mut self, ctx: &egui::Context, event: InspectEvent) {
        let tabs = &mut self.inspect.data;
        match event {
            InspectEvent::Seg(event) => self.seg_event(ctx, event),
            InspectEvent::Runs(project, runs) => {
                let state = match runs {
                    Ok(runs) => Loading::Ready(Arc::new(runs)),
                    Err(message) => Loading::Failed(message),
                };
                tabs.runs.insert(project, state);
            }
            InspectEvent::LoadProgress(key, done, total) => {
                if let Some(Loading::Running { done: d, total: t }) = tabs.inspections.get_mut(&key)
                {
                    (*d, *t) = (done, total);
                }
            }
            InspectEvent::Loaded(key, result) => {
                let state = match result {
                    Ok(run) => Loading::Ready(Arc::from(run)),
                    Err(message) => Loading::Failed(message),
                };
                tabs.inspections.insert(key, state);
            }
            InspectEvent::Neighbours(key, index, found) => {
                let state = match found {
                    Ok(found) => Loading::Ready(found),
                    Err(message) => Loading::Failed(message),
                };
                tabs.neighbours.insert((key, index), state);
            }
            InspectEvent::Cam(key, result) => {
                let name = format!("cam {} {}", key.run, key.image.display());
                let state = match result {
                    Ok(pixels) => Loading::Ready(CamTexture {
                        texture: ctx.load_texture(name, pixels.image, egui::TextureOptions::LINEAR),
                        class: pixels.class,
                        score: pixels.score,
                    }),
                    Err(message) => Loading::Failed(message),
                };
                tabs.cams.insert(key, state);
            }
            InspectEvent::TsneProgress(key, done, total) => {
                if let Some(TsneJob {
                    state: Loading::Running { done: d, total: t },
                    ..
                }) = tabs.tsne.get_mut(&key)
                {
                    (*d, *t) = (done, total);
                }
            }
            InspectEvent::Tsne(key, result) => {
                if let Some(job) = tabs.tsne.get_mut(&key) {
                    job.state = match result {
                        Ok(Some(map)) => Loading::Ready(map),
                        Ok(None) => Loading::Failed("t-SNE was cancelled".to_owned()),
                        Err(message) => Loading::Failed(message),
                    };
                }
            }
        }
    }
}
