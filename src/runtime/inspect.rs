//! Runtime state of the Inspector, Embeddings and Compare tabs: their commands and events,
//! and what the inspection workers produced per project and run (segmentation runs:
//! [`super::inspect_seg`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::Loading;
use super::inspect_det::{DetCommand, DetData, DetEvent};
use super::inspect_seg::{SegCommand, SegData, SegEvent};
pub use crate::inspect::run_inspection::RunInspection;
use crate::inspect::{Neighbour, Projection};

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

/// A heatmap's pixels and what it explains.
#[derive(Debug)]
pub struct CamPixels {
    /// The coloured heatmap at the image's aspect ratio (opaque).
    pub image: egui::ColorImage,
    /// The explained class.
    pub class: usize,
    /// The model's probability of that class.
    pub score: f32,
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
    /// A request of the detection inspector.
    Det(DetCommand),
}

/// Results of the inspection workers.
#[derive(Debug)]
pub enum InspectEvent {
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
    /// A detection worker finished or progressed.
    Det(DetEvent),
}

/// What the inspection views read: what the workers produced and the projects' run lists.
#[derive(Clone, Copy)]
pub struct InspectSources<'a> {
    /// What the inspection workers produced.
    pub data: &'a InspectData,
    /// The run lists.
    pub runs: &'a crate::runtime::runs::RunCatalogue,
    /// The project's curation as saved (`None`: its project file could not be read).
    pub curation: Option<&'a crate::project::Curation>,
}

/// What the inspection workers produced, per project and run.
#[derive(Default)]
pub struct InspectData {
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
    /// Detection runs' boxes and metrics.
    pub det: DetData,
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

    /// Stops every long job (on shutdown).
    pub fn cancel_all(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for job in self.tsne.values() {
            job.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Drops what was computed for `run` of `project` (its checkpoint changed): it is
    /// computed again when a view asks.
    pub fn forget_run(&mut self, project: &Path, run: &str) {
        let key: RunKey = (project.to_owned(), run.to_owned());
        self.inspections.remove(&key);
        self.neighbours.retain(|(k, _), _| *k != key);
        self.cams
            .retain(|k, _| k.project != key.0 || k.run != key.1);
        if let Some(job) = self.tsne.remove(&key) {
            job.stop.store(true, Ordering::Relaxed);
        }
        self.seg.forget_run(&key);
        self.det.forget_run(&key);
    }
}
