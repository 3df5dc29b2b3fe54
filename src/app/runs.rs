//! The project's stored runs as the Training tab lists them (read on a worker from
//! `runs/<id>/`), and the curves of a run, live or stored.

use std::collections::BTreeMap;
use std::path::Path;

use crate::train::events::{CheckpointKind, DICE, EpochMetrics};
use crate::train::run::{EpochRecord, RunDir, runs_dir};
use crate::ui::series::Series;

/// How a stored run ended, read from its `train.log`.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    /// All epochs ran.
    Finished,
    /// Early stopping ended it.
    EarlyStopped,
    /// It failed, with the reason.
    Failed(String),
    /// Stopped by the user or interrupted.
    Stopped,
    /// The job of this session is training it now.
    Running,
}

impl RunStatus {
    /// A short label for the run list.
    pub fn label(&self) -> String {
        match self {
            RunStatus::Finished => "finished".into(),
            RunStatus::EarlyStopped => "early stopped".into(),
            RunStatus::Failed(reason) => format!("failed: {reason}"),
            RunStatus::Stopped => "stopped".into(),
            RunStatus::Running => "running".into(),
        }
    }
}

/// One row of the run list (made on a worker).
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run id.
    pub id: String,
    /// Backbone name.
    pub backbone: String,
    /// Strategy label.
    pub strategy: String,
    /// Epochs with a history record, and epochs planned.
    pub epochs: (usize, usize),
    /// The monitored metric's name and best value.
    pub best: Option<(String, f64)>,
    /// How it ended.
    pub status: RunStatus,
    /// Whether a last checkpoint exists and epochs remain.
    pub resumable: bool,
}

/// The curves of a run: per step (live only) and per epoch.
#[derive(Clone, Debug, Default)]
pub struct RunCurves {
    /// Training loss per optimiser step (x: global step).
    pub step_loss: Series,
    /// Learning rate per step (x: global step; per epoch end for stored runs).
    pub step_lr: Series,
    /// Mean training loss per epoch (x: 1-based epoch).
    pub train_loss: Series,
    /// Validation loss per epoch.
    pub val_loss: Series,
    /// Validation metrics per epoch by name (accuracy, balanced_accuracy, macro_f1, ...).
    pub metrics: BTreeMap<String, Series>,
}

impl RunCurves {
    /// Adds one epoch's metrics (`epoch` is 0-based).
    pub fn add_epoch(&mut self, epoch: usize, train: &EpochMetrics, validation: &EpochMetrics) {
        let x = (epoch + 1) as f64;
        self.train_loss.push(x, train.loss);
        self.val_loss.push(x, validation.loss);
        let segmentation = validation.extra.contains_key(DICE);
        let accuracy = if segmentation {
            "pixel_accuracy"
        } else {
            "accuracy"
        };
        self.metrics
            .entry(accuracy.to_owned())
            .or_default()
            .push(x, validation.accuracy);
        for (name, value) in &validation.extra {
            self.metrics
                .entry(name.clone())
                .or_default()
                .push(x, *value);
        }
    }

    /// The epoch curves of a stored history.
    pub fn from_history(records: &[EpochRecord]) -> Self {
        let mut curves = Self::default();
        for r in records {
            curves.add_epoch(r.epoch, &r.train, &r.validation);
            curves.step_lr.push(r.global_step as f64, r.lr);
        }
        curves
    }
}

/// Reads the runs of a project (runs on a worker).
pub fn list_runs(project_dir: &Path) -> Result<Vec<RunSummary>, String> {
    let dir = runs_dir(project_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("could not list the runs ({e}): {}", dir.display())),
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.starts_with("run-"))
        .collect();
    ids.sort();
    Ok(ids
        .into_iter()
        .filter_map(|id| summarise_run(project_dir, &id))
        .collect())
}

fn summarise_run(project_dir: &Path, id: &str) -> Option<RunSummary> {
    let (run, config) = RunDir::open(project_dir, id).ok()?;
    let history = run.read_history().unwrap_or_default();
    let monitor = config.monitor;
    let best = history
        .iter()
        .map(|r| monitor.value(&r.validation))
        .filter(|v| v.is_finite())
        .reduce(|a, b| match (monitor.higher_is_better(), b > a) {
            (true, true) | (false, false) => b,
            _ => a,
        })
        .map(|v| (monitor.name().to_owned(), v));
    let log = std::fs::read_to_string(run.dir.join("train.log")).unwrap_or_default();
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let status = if last == "finished" {
        RunStatus::Finished
    } else if last.starts_with("early stop") {
        RunStatus::EarlyStopped
    } else if let Some(reason) = last.strip_prefix("failed: ") {
        RunStatus::Failed(reason.to_owned())
    } else {
        RunStatus::Stopped
    };
    let epochs_done = history.len();
    let resumable = matches!(status, RunStatus::Stopped)
        && epochs_done < config.epochs
        && run.checkpoint_path(CheckpointKind::Last).is_file();
    Some(RunSummary {
        id: id.to_owned(),
        backbone: config.backbone.clone(),
        strategy: config.strategy.label().to_owned(),
        epochs: (epochs_done, config.epochs),
        best,
        status,
        resumable,
    })
}
