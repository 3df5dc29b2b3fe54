//! The runtime layer: what the UI thread holds between frames and shares with its views
//! (never serialised). The command enums views return ([`UiCommand`] and one per area), the
//! event enums workers send back ([`AppEvent`] and one per area), [`Loading`] for anything
//! computed on a worker, run state (the live run, run lists), plot series and the texture
//! cache. Views (`crate::ui`) read it and return commands; the app (`crate::app`) drains
//! events into it, runs the commands and spawns the jobs. It imports neither of them.

pub mod dataset;
pub mod inspect;
pub mod inspect_det;
pub mod inspect_seg;
pub mod live_run;
pub mod pace;
pub mod plot;
pub mod projects;
pub mod runs;
pub mod series;
pub mod study;
pub mod thumbnails;
pub mod training;
pub mod try_it;
pub mod weights;

use std::collections::HashMap;
use std::path::PathBuf;

use self::dataset::ScannedDataset;
use self::inspect::{InspectCommand, InspectEvent};
use self::projects::ProjectsState;
use self::thumbnails::ThumbnailDone;
use self::training::{TrainingCommand, TrainingEvent};
use crate::data::preview::FolderPreview;
use crate::data::window::WindowSetting;
use crate::model::facts::BackboneFacts;
use crate::project::{Project, TaskKind};
use crate::train::catalogue::RunListing;
use std::time::Instant;

/// Something computed on a worker: in progress, ready, or failed.
#[derive(Clone, Debug)]
pub enum Loading<T> {
    /// Running: `done` of `total` (0 of 0 when unknown), since `since`.
    Running {
        /// Work done.
        done: usize,
        /// Work in all.
        total: usize,
        /// When the job started (for the time left).
        since: Instant,
    },
    /// Finished.
    Ready(T),
    /// Failed or stopped, with the reason.
    Failed(String),
}

impl<T> Loading<T> {
    /// Started, with no progress known yet.
    pub fn started() -> Self {
        Loading::Running {
            done: 0,
            total: 0,
            since: Instant::now(),
        }
    }

    /// Records progress: `done` of `total` (a job not running yet starts now).
    pub fn set_progress(&mut self, done: usize, total: usize) {
        match self {
            Loading::Running {
                done: d, total: t, ..
            } => (*d, *t) = (done, total),
            _ => {
                *self = Loading::Running {
                    done,
                    total,
                    since: Instant::now(),
                }
            }
        }
    }

    /// "`done` of `total`, about N s left" while running with a known total.
    pub fn progress_text(&self) -> Option<String> {
        match self {
            Loading::Running { done, total, since } if *total > 0 => {
                Some(self::training::count_left(*done, *total, Some(*since)))
            }
            _ => None,
        }
    }

    /// Ready or failed, from a worker's result.
    pub fn from_result(result: Result<T, String>) -> Self {
        match result {
            Ok(value) => Loading::Ready(value),
            Err(message) => Loading::Failed(message),
        }
    }

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

/// The tabs of the central area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CentralTab {
    /// The project's summary.
    #[default]
    Overview,
    /// The project's images, their classes and the validation report.
    Dataset,
    /// Model settings, training jobs with live charts, the project's runs and export.
    Training,
    /// A run's predictions on the validation images, one by one.
    Inspector,
    /// A 2-D map of a run's validation embeddings.
    Embeddings,
    /// Several runs side by side.
    Compare,
    /// Backbone studies: many runs of one recipe, ranked with intervals and cost.
    Study,
    /// A run's predictions for images from anywhere.
    TryIt,
}

/// Measured backbone facts by name: `None` while measuring on a worker.
pub type FactsCache = HashMap<String, Option<Result<BackboneFacts, String>>>;

/// Messages from workers to the UI thread.
#[derive(Debug)]
pub enum AppEvent {
    /// A scan of the projects folder finished.
    ProjectsScanned(ProjectsState),
    /// The folder picker closed (with a folder, or cancelled).
    DataFolderPicked(Option<PathBuf>),
    /// What a data folder holds, or why it cannot be read.
    FolderPreviewed(PathBuf, Result<FolderPreview, String>),
    /// A folder's subfolders were listed (the built-in folder browser).
    FolderListed(PathBuf, Result<Vec<String>, String>),
    /// No system folder dialog can open here: the built-in browser is used.
    NoSystemFolderDialog,
    /// A project operation finished: a message for the user, and the folder to select.
    ProjectOpFinished(Result<(String, Option<PathBuf>), String>),
    /// A backbone's parameters and GFLOPs were measured.
    BackboneMeasured(String, Result<BackboneFacts, String>),
    /// A project's data scan checked `done` of `total` files.
    DatasetProgress {
        /// The project folder.
        dir: PathBuf,
        /// The scan's generation.
        generation: u64,
        /// Files checked.
        done: usize,
        /// Files listed.
        total: usize,
    },
    /// A project's data scan finished (or failed, or was cancelled).
    DatasetScanned {
        /// The project folder.
        dir: PathBuf,
        /// The scan's generation.
        generation: u64,
        /// The scanned data set, or why there is none.
        result: Result<Box<ScannedDataset>, String>,
    },
    /// A thumbnail's pixels were made.
    Thumbnail(Box<ThumbnailDone>),
    /// A changed project was saved (or not): the folder and the project as saved.
    ProjectSaved(PathBuf, Result<Box<Project>, String>),
    /// A curation edit or undo was stored (what it did, and the project as saved), or why not.
    Curated(PathBuf, Result<(String, Box<Project>), String>),
    /// A project's runs were listed (listing `generation` of that project).
    RunsListed {
        /// The project folder.
        dir: PathBuf,
        /// Which listing this is.
        generation: u64,
        /// The runs, or why they could not be listed.
        result: Result<RunListing, String>,
    },
    /// A worker of the Training tab finished.
    Training(TrainingEvent),
    /// A result of the inspection tabs' workers.
    Inspect(InspectEvent),
    /// A result or progress of the Study tab's workers.
    Study(self::study::StudyAppEvent),
    /// The Try-it tab's results.
    Try(self::try_it::TryEvent),
    /// A result or progress of the weights workers (backbone picker).
    Weights(self::weights::WeightsEvent),
}

/// What views ask the app to do; run after the frame.
#[derive(Clone, Debug, PartialEq)]
pub enum UiCommand {
    /// Scan the projects folder again.
    RescanProjects,
    /// Show this project folder.
    SelectProject(PathBuf),
    /// Open the new-project dialog, optionally with a data folder.
    OpenNewProject(Option<PathBuf>),
    /// Show the system folder picker for the new project's data.
    PickDataFolder,
    /// List the subfolders of a folder (the built-in folder browser).
    ListFolder(PathBuf),
    /// Look at a data folder for the new-project dialog (layout, task, classes, sizes).
    PreviewDataFolder(PathBuf),
    /// Create a project in the projects folder.
    CreateProject {
        /// Display name.
        name: String,
        /// The labelled images.
        data_dir: PathBuf,
        /// Classification or segmentation.
        task: TaskKind,
        /// Backbone name.
        backbone: String,
        /// Square input size in pixels.
        input_size_px: u32,
        /// The user says mirrored images keep their label.
        mirror_ok: bool,
        /// What the preview saw of the images.
        profile: Option<crate::project::DataProfile>,
    },
    /// Give a project a new display name.
    RenameProject(PathBuf, String),
    /// Copy a project's settings into a new project.
    DuplicateProject(PathBuf),
    /// Move a project folder to the trash folder.
    DeleteProject(PathBuf),
    /// Measure a backbone's facts (parameters, GFLOPs) on a worker.
    MeasureBackbone(String),
    /// Scan (again) the data set of the project in this folder.
    ScanDataset(PathBuf),
    /// Stop the running scan of this project's data set.
    CancelDatasetScan(PathBuf),
    /// Store a new intensity window in the project's data set settings.
    SetDatasetWindow(PathBuf, WindowSetting),
    /// Store the data set's tiny-image side and whether its images may be mirrored.
    SetDatasetChecks {
        /// The project folder.
        dir: PathBuf,
        /// Images with a shorter side are reported as tiny.
        min_side_px: u32,
        /// A mirrored image keeps its label.
        mirror_ok: bool,
    },
    /// Relabel, leave out or restore images of the project (stored in `project.ron`).
    Curate {
        /// The project folder.
        dir: PathBuf,
        /// What is done to which images.
        edit: crate::project::CurationEdit,
    },
    /// Take back the project's newest curation edit.
    UndoCuration(PathBuf),
    /// List the project's runs (again) for every view.
    ListRuns(PathBuf),
    /// A job or read of the Training tab.
    Training(TrainingCommand),
    /// A request of the Inspector, Embeddings or Compare tab.
    Inspect(InspectCommand),
    /// A request of the Study tab.
    Study(self::study::StudyCommand),
    /// A request of the Try-it tab.
    Try(self::try_it::TryCommand),
    /// A request of the backbone picker's weights (list, download, import).
    Weights(self::weights::WeightsCommand),
}

/// What the app hands to views for their next frame: results of commands and events that
/// change a view's own state. The app only fills it; each view takes its part when it
/// draws, so the app never reaches into a view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ViewRequests {
    /// Open the new-project dialog, with this data folder when given.
    pub open_new_project: Option<Option<PathBuf>>,
    /// The folder picked for the new project's data.
    pub picked_data_dir: Option<PathBuf>,
    /// What a data folder holds (the new-project dialog's preview), or why it cannot be read.
    pub folder_preview: Option<(PathBuf, Result<FolderPreview, String>)>,
    /// The system folder picker closed without a folder (cancelled, or it could not open).
    pub no_folder_picked: bool,
    /// No system folder dialog is available: open the built-in browser.
    pub browse_in_window: bool,
    /// A folder listing for the built-in browser.
    pub folder_listing: Option<(PathBuf, Result<Vec<String>, String>)>,
    /// Show this image (index in the run's validation split) in the Inspector.
    pub show_in_inspector: Option<usize>,
}
