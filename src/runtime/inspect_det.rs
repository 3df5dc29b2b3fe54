//! Runtime state of the Inspector for detection runs: its commands and events, and each
//! run's boxes and COCO metrics on its validation split (the view draws the boxes itself).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::Loading;
use super::inspect::RunKey;
use crate::inspect::detection::DetInspection;

/// What the detection inspector asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum DetCommand {
    /// Predict and score a detection run's validation images.
    Load(RunKey),
}

/// Results of the detection workers.
#[derive(Debug)]
pub enum DetEvent {
    /// A run's prediction pass progressed (images done, in all).
    Progress(RunKey, usize, usize),
    /// A run's boxes and metrics are ready.
    Loaded(RunKey, Result<Box<DetInspection>, String>),
}

/// What the detection workers produced.
#[derive(Default)]
pub struct DetData {
    /// Detection runs' boxes and metrics.
    pub runs: HashMap<RunKey, Loading<Arc<DetInspection>>>,
}

impl DetData {
    /// A loaded detection run, if ready.
    pub fn inspection(&self, project: &Path, run: &str) -> Option<&Arc<DetInspection>> {
        self.runs
            .get(&(project.to_owned(), run.to_owned()))
            .and_then(Loading::ready)
    }

    /// Whether no run is being computed.
    pub fn idle(&self) -> bool {
        !self.runs.values().any(Loading::is_running)
    }

    /// Drops what was computed for run `key` (its checkpoint changed).
    pub fn forget_run(&mut self, key: &RunKey) {
        self.runs.remove(key);
    }
}
