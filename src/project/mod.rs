//! The user's document: a project folder holding `project.ron` (plain serde data, versioned)
//! and, later, `runs/`. No egui, no tch.

mod curate;
mod curation;
mod dataset;
mod discover;
mod io;
mod ops;
mod training;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use curate::{CurateError, Curated, curate, undo_curation};
pub use curation::{Curation, CurationAction, CurationEdit};
pub use dataset::{DataProfile, DatasetConfig, DatasetSourceKind};
pub use discover::{ProjectEntry, discover_projects};
pub use io::{PROJECT_FILE, ProjectError, load_project, save_project, update_project};
pub use ops::{
    TRASH_DIR, create_project, delete_project, detect_task, duplicate_project, rename_project,
    slug, unused_dir,
};
pub use training::{DEFAULT_AUGMENT_PRESET, TrainingSettings};

pub use crate::task::TaskKind;

/// The project file version this build writes; older ones are migrated on load.
pub const CURRENT_VERSION: u32 = 1;

/// Where a project's images live. Paths are stored relative to the project folder, or as a
/// location inside the asset cache, never as one machine's absolute path when avoidable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataLocation {
    /// A path relative to the project folder (absolute paths are accepted as typed).
    Path(PathBuf),
    /// A path inside the asset cache filled by set-up (the demo data sets).
    Asset(PathBuf),
}

impl Default for DataLocation {
    fn default() -> Self {
        DataLocation::Path(PathBuf::from("data"))
    }
}

impl DataLocation {
    /// The folder on this machine, given the project's own folder.
    pub fn resolve(&self, project_dir: &Path) -> PathBuf {
        match self {
            DataLocation::Path(p) => project_dir.join(p),
            DataLocation::Asset(p) => crate::assets::assets_dir().join(p),
        }
    }

    /// How the location reads in the UI.
    pub fn describe(&self) -> String {
        match self {
            DataLocation::Path(p) => p.display().to_string(),
            DataLocation::Asset(p) => format!("demo data: {}", p.display()),
        }
    }
}

/// A transfer-learning project as saved in `project.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    /// File format version, see [`CURRENT_VERSION`].
    pub version: u32,
    /// Display name.
    pub name: String,
    /// A free-text description.
    pub description: String,
    /// Classification or segmentation.
    pub task: TaskKind,
    /// Where the labelled images are.
    pub data: DataLocation,
    /// Name of the chosen backbone (see `transfer-workbench backbones`).
    pub backbone: String,
    /// Square input size in pixels fed to the backbone.
    pub input_size_px: u32,
    /// How the data set is organised and read (window, mask encoding, checks).
    pub dataset: DatasetConfig,
    /// The Training tab's settings of the next run (`None` until first edited).
    pub training: Option<TrainingSettings>,
}

impl Default for Project {
    fn default() -> Self {
        Self {
            version: CURRENT_VERSION,
            name: String::new(),
            description: String::new(),
            task: TaskKind::default(),
            data: DataLocation::default(),
            backbone: "mobilenet_v2".to_owned(),
            input_size_px: 224,
            dataset: DatasetConfig::default(),
            training: None,
        }
    }
}

impl Project {
    /// Keeps `settings` as the next run's, and their backbone and input size as the
    /// project's.
    pub fn set_training(&mut self, settings: TrainingSettings) {
        self.backbone.clone_from(&settings.config.backbone);
        self.input_size_px = settings.config.input_size_px;
        self.training = Some(settings);
    }
}

/// A project together with the folder it was loaded from.
#[derive(Clone, Debug)]
pub struct OpenProject {
    /// The project folder (holds `project.ron`).
    pub dir: PathBuf,
    /// The document.
    pub project: Project,
}

impl OpenProject {
    /// The data folder on this machine.
    pub fn data_dir(&self) -> PathBuf {
        self.project.data.resolve(&self.dir)
    }

    /// The project's data set on this machine.
    pub fn dataset_source(
        &self,
    ) -> Result<crate::data::source::DatasetSource, crate::data::DataError> {
        self.project.dataset.source_at(&self.data_dir())
    }
}
