//! The run catalogue: what a project's runs are, read from their folders, for every reader
//! (the Training tab's run list, Compare, the Inspector's run picker, the CLI). One
//! [`RunSummary`], one [`list_runs`], one definition of a run's curves ([`RunCurves`]).
//! The state comes from the structured status the engine writes ([`RunStatus`]), or for
//! runs older than it, from what the folder holds. Damage is reported, never hidden: a run
//! whose config cannot be read is a [`DamagedRun`], and a readable run says what else is
//! wrong with its folder in [`RunSummary::problems`].

use std::collections::BTreeMap;
use std::path::Path;

use super::TrainError;
use super::config::{TaskKind, TrainConfig, WeightsSpec};
use super::events::{CheckpointKind, EpochMetrics};
use super::run::{EpochRecord, RunDir, runs_dir};
use super::status::{RunState, RunStatus};
use super::task::train_task;

/// The key of plain accuracy among a run's validation metrics (classification).
pub const ACCURACY: &str = "accuracy";

/// The key of pixel accuracy among a run's validation metrics (segmentation).
pub const PIXEL_ACCURACY: &str = "pixel_accuracy";

/// The validation metrics of one epoch of a `task` run by key, as curves show them:
/// accuracy (under the task's name for it, e.g. [`PIXEL_ACCURACY`]) and every further
/// metric.
pub fn validation_points(task: TaskKind, validation: &EpochMetrics) -> Vec<(String, f64)> {
    let accuracy = train_task(task).accuracy_key();
    std::iter::once((accuracy.to_owned(), validation.accuracy))
        .chain(validation.extra.iter().map(|(k, v)| (k.clone(), *v)))
        .collect()
}

/// The per-epoch curves of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurves {
    /// Epoch numbers (1-based).
    pub epochs: Vec<f64>,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub loss: Vec<f64>,
    /// `[global step, learning rate]` at each epoch's end.
    pub lr: Vec<[f64; 2]>,
    /// Validation metrics per epoch by key (see [`validation_points`]); a metric missing
    /// from an epoch is NaN there.
    pub metrics: BTreeMap<String, Vec<f64>>,
}

impl RunCurves {
    /// The curves of a stored history of a `task` run.
    pub fn from_history(task: TaskKind, records: &[EpochRecord]) -> Self {
        let mut curves = Self::default();
        for (n, r) in records.iter().enumerate() {
            curves.epochs.push(r.epoch as f64 + 1.0);
            curves.train_loss.push(r.train.loss);
            curves.loss.push(r.validation.loss);
            curves.lr.push([r.global_step as f64, r.lr]);
            for (key, value) in validation_points(task, &r.validation) {
                let series = curves.metrics.entry(key).or_default();
                series.resize(n, f64::NAN);
                series.push(value);
            }
        }
        let len = curves.epochs.len();
        for series in curves.metrics.values_mut() {
            series.resize(len, f64::NAN);
        }
        curves
    }
}

/// A run as every list of runs shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run id.
    pub id: String,
    /// Backbone name.
    pub backbone: String,
    /// Training strategy label (probe, finetune, staged; for detection with the head, e.g.
    /// "finetune · yolo").
    pub strategy: String,
    /// Where the initial weights came from.
    pub weights: String,
    /// Epochs with a history record, and epochs planned.
    pub epochs: (usize, usize),
    /// Epochs asked for.
    pub epochs_planned: usize,
    /// Input size in pixels.
    pub input_size_px: u32,
    /// Its task.
    pub task: TaskKind,
    /// The monitored metric's name and best value.
    pub best: Option<(String, f64)>,
    /// How it ended (or `Running` while a job of this session trains it).
    pub status: RunState,
    /// Whether a last checkpoint exists and epochs remain.
    pub resumable: bool,
    /// Its curves (empty when it has no history).
    pub curves: RunCurves,
    /// What is wrong with its folder (a damaged history or status, missing checkpoints),
    /// each naming the file; empty for a sound run.
    pub problems: Vec<String>,
}

/// A run folder whose config cannot be read: it is listed apart, with why.
#[derive(Clone, Debug, PartialEq)]
pub struct DamagedRun {
    /// The run id (its folder's name).
    pub id: String,
    /// Why it cannot be read, naming the file.
    pub message: String,
}

/// A project's runs: those that can be read (oldest first) and those that cannot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunListing {
    /// The readable runs, oldest first.
    pub runs: Vec<RunSummary>,
    /// The run folders whose config cannot be read.
    pub damaged: Vec<DamagedRun>,
}

impl RunSummary {
    /// The key of the headline score (the task's: accuracy, Dice, ...).
    fn score_key(&self) -> &'static str {
        train_task(self.task).headline().0
    }

    /// The headline score's name ("accuracy", "Dice", ...).
    pub fn score_name(&self) -> &'static str {
        train_task(self.task).headline().1
    }

    /// The headline validation score per epoch.
    pub fn scores(&self) -> &[f64] {
        self.curves
            .metrics
            .get(self.score_key())
            .map_or(&[], Vec::as_slice)
    }

    /// The best validation score.
    pub fn best_score(&self) -> Option<f64> {
        self.scores().iter().copied().reduce(f64::max)
    }

    /// The last epoch's validation score.
    pub fn final_score(&self) -> Option<f64> {
        self.scores().last().copied()
    }

    /// The last epoch's validation loss.
    pub fn final_loss(&self) -> Option<f64> {
        self.curves.loss.last().copied()
    }
}

/// The readable runs of the project at `project_dir`, oldest first (see [`list_runs_checked`]
/// for the damaged ones too).
pub fn list_runs(project_dir: &Path) -> Result<Vec<RunSummary>, TrainError> {
    list_runs_checked(project_dir).map(|listing| listing.runs)
}

/// Every run folder (`runs/run-*`) of the project at `project_dir`: the readable runs,
/// oldest first, and the damaged ones with why.
pub fn list_runs_checked(project_dir: &Path) -> Result<RunListing, TrainError> {
    let dir = runs_dir(project_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunListing::default()),
        Err(e) => return Err(TrainError::io("list the runs", &dir)(e)),
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.starts_with("run-"))
        .collect();
    ids.sort();
    let mut listing = RunListing::default();
    for id in ids {
        match summarise(project_dir, &id) {
            Ok(summary) => listing.runs.push(summary),
            Err(e) => listing.damaged.push(DamagedRun {
                message: e.to_string(),
                id,
            }),
        }
    }
    Ok(listing)
}

/// The summary of run `id`.
pub fn summarise(project_dir: &Path, id: &str) -> Result<RunSummary, TrainError> {
    let (run, config) = RunDir::open(project_dir, id)?;
    let mut problems = Vec::new();
    let history = run.read_history().unwrap_or_else(|e| {
        problems.push(format!("{e}: its curves are not shown"));
        Vec::new()
    });
    let status = match RunStatus::load(&run) {
        Ok(Some(status)) => status.settled(),
        Ok(None) => RunStatus::derive(&run, &config, &history),
        Err(e) => {
            problems.push(format!(
                "{e}: its state is worked out from the run folder instead"
            ));
            RunStatus::derive(&run, &config, &history)
        }
    };
    let epochs_done = history.len();
    if status.epochs_done > epochs_done {
        problems.push(format!(
            "{} holds {epochs_done} of the {} epochs trained (missing or cut short): the \
             curves stop there",
            run.dir.join("history.jsonl").display(),
            status.epochs_done
        ));
    }
    let checkpoints = [CheckpointKind::Best, CheckpointKind::Last].map(|k| run.checkpoint_path(k));
    if status.epochs_done.max(epochs_done) > 0 && !checkpoints.iter().any(|p| p.is_file()) {
        problems.push(format!(
            "no checkpoint in {}: the run cannot be inspected, exported or resumed",
            run.checkpoints().display()
        ));
    }
    let resumable = status.state == RunState::Stopped
        && epochs_done < config.epochs
        && run.checkpoint_path(CheckpointKind::Last).is_file();
    Ok(RunSummary {
        id: id.to_owned(),
        backbone: config.backbone.clone(),
        strategy: match config.task {
            // Detection runs also say which head they trained.
            crate::task::TaskKind::Detection => {
                format!("{} · {}", config.strategy.label(), config.detector.label())
            }
            _ => config.strategy.label().to_owned(),
        },
        weights: weights_label(&config),
        epochs: (epochs_done, config.epochs),
        epochs_planned: config.epochs,
        input_size_px: config.input_size_px,
        task: config.task,
        best: status.best.map(|b| (b.metric, b.value)),
        status: status.state,
        resumable,
        curves: RunCurves::from_history(config.task, &history),
        problems,
    })
}

fn weights_label(config: &TrainConfig) -> String {
    match &config.weights {
        WeightsSpec::Pretrained => "pretrained".to_owned(),
        WeightsSpec::Random => "random".to_owned(),
        WeightsSpec::File(path) => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::events::DICE;

    #[test]
    fn curves_keep_every_metric_aligned_with_the_epochs() {
        let record = |epoch: usize, dice: Option<f64>| EpochRecord {
            epoch,
            global_step: 2 * epoch,
            lr: 0.1,
            train: EpochMetrics::default(),
            validation: EpochMetrics {
                loss: 0.5,
                accuracy: 0.75,
                extra: dice.map(|d| (DICE.to_owned(), d)).into_iter().collect(),
                ..EpochMetrics::default()
            },
            duration_secs: 1.0,
        };
        let curves = RunCurves::from_history(
            TaskKind::Segmentation,
            &[record(0, Some(0.5)), record(1, Some(0.6))],
        );
        assert_eq!(curves.epochs, vec![1.0, 2.0]);
        assert_eq!(curves.metrics[DICE], vec![0.5, 0.6]);
        assert_eq!(curves.metrics[PIXEL_ACCURACY], vec![0.75, 0.75]);
        let plain = RunCurves::from_history(TaskKind::Classification, &[record(0, None)]);
        assert_eq!(plain.metrics[ACCURACY], vec![0.75]);
    }

    #[test]
    fn an_old_run_without_a_status_is_listed_from_its_folder() {
        let project = tempfile::tempdir().unwrap();
        let config = TrainConfig {
            epochs: 4,
            ..TrainConfig::default()
        };
        RunDir::create(project.path(), &config, &serde_json::json!({})).unwrap();
        let runs = list_runs(project.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, RunState::Stopped);
        assert_eq!(runs[0].epochs, (0, 4));
        assert!(!runs[0].resumable);
    }
}
