//! Runtime state of the weights in the Training tab's backbone picker: which catalogue
//! variants are present here (listed on a worker), the one download at a time with its
//! progress and cancel flag, and the import of a weights file with its report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Loading;
use crate::model::catalogue::WeightOption;
use crate::model::weights::ImportReport;

/// What the backbone picker asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightsCommand {
    /// List every backbone's weight options (present, downloadable) on a worker.
    List,
    /// Download, verify and install the catalogue variant `name` (`zoo::get`).
    Download(String),
    /// Stop the running download.
    CancelDownload,
    /// Show the system file picker for a weights file to import.
    PickImport,
    /// Import this weights file (`zoo::import`).
    Import(PathBuf),
    /// Close the import report.
    CloseImport,
}

/// Results of the weights workers.
#[derive(Debug)]
pub enum WeightsEvent {
    /// Every backbone's weight options, by backbone name.
    Listed(HashMap<String, Vec<WeightOption>>),
    /// The download has `done` bytes of `total` (when the server says).
    Progress(u64, Option<u64>),
    /// The download finished: the installed file, or the message.
    Downloaded(Result<PathBuf, String>),
    /// The file picker closed (with a file, or cancelled).
    ImportPicked(Option<PathBuf>),
    /// No system file dialog can open here: a typed path is asked for.
    NoFileDialog,
    /// The import finished.
    Imported(Result<Box<ImportDone>, String>),
}

/// An installed import: where it went and what its check found.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportDone {
    /// The installed `.safetensors`.
    pub installed: PathBuf,
    /// The key-by-key report.
    pub report: ImportReport,
}

/// The running or last download.
#[derive(Debug)]
pub struct DownloadJob {
    /// The catalogue name.
    pub name: String,
    /// Bytes done of the total (0 of 0 while unknown); the installed file when ready.
    pub state: Loading<PathBuf>,
    /// Set to stop the transfer.
    pub cancel: Arc<AtomicBool>,
}

/// The import's state.
#[derive(Debug, Default)]
pub struct ImportState {
    /// The file being imported, with the running or last result.
    pub job: Option<(PathBuf, Loading<Box<ImportDone>>)>,
    /// No system file dialog here: the view shows a path field.
    pub no_dialog: bool,
    /// The report window is open.
    pub open: bool,
}

/// The weights part of the runtime.
#[derive(Debug, Default)]
pub struct WeightsState {
    /// Weight options by backbone: `None` until listed, `Running` while listing.
    pub options: Option<Loading<HashMap<String, Vec<WeightOption>>>>,
    /// The running or last download.
    pub download: Option<DownloadJob>,
    /// The import.
    pub import: ImportState,
}

impl WeightsState {
    /// Whether a download is running.
    pub fn downloading(&self) -> bool {
        self.download.as_ref().is_some_and(|d| d.state.is_running())
    }

    /// Asks a running download to stop (also when the app closes).
    pub fn cancel(&self) {
        if let Some(job) = &self.download {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Whether no listing of the weight options runs (none asked for counts too: a view
    /// that shows no picker never asks).
    pub fn listed(&self) -> bool {
        !self.options.as_ref().is_some_and(Loading::is_running)
    }

    /// The weight options of `backbone`, once listed.
    pub fn options_of(&self, backbone: &str) -> Option<&[WeightOption]> {
        match &self.options {
            Some(Loading::Ready(all)) => all.get(backbone).map(Vec::as_slice),
            _ => None,
        }
    }
}
