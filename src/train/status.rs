//! A run's structured status, `runs/<id>/status.json`, written (atomically) by the engine
//! when a job starts, after every epoch and when it ends: the state, epochs done and
//! planned, the best monitored value, the failure reason and the checkpoints saved. Readers
//! (the run catalogue, the GUI, the CLI) load it; nobody parses `train.log`, which stays a
//! log for people.
//!
//! Runs written before the status existed have none: [`RunStatus::derive`] rebuilds one
//! from what the folder holds (config, history, checkpoints).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::config::TrainConfig;
use super::events::CheckpointKind;
use super::run::{EpochRecord, RunDir};

/// The status file's name inside a run folder.
pub const STATUS_FILE: &str = "status.json";

/// The status file's format version.
pub const STATUS_VERSION: u32 = 1;

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    /// A job was training it when the status was written (a process that died leaves
    /// this; see [`RunStatus::settled`]).
    Running,
    /// All epochs ran.
    Finished,
    /// Early stopping ended it.
    EarlyStopped,
    /// Stopped by the user, or interrupted.
    Stopped,
    /// It failed.
    Failed {
        /// Why.
        reason: String,
    },
}

impl RunState {
    /// A short label for run lists.
    pub fn label(&self) -> String {
        match self {
            RunState::Finished => "finished".into(),
            RunState::EarlyStopped => "early stopped".into(),
            RunState::Failed { reason } => format!("failed: {reason}"),
            RunState::Stopped => "stopped".into(),
            RunState::Running => "running".into(),
        }
    }
}

/// The best monitored value of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestMetric {
    /// The monitored metric's name.
    pub metric: String,
    /// The 0-based epoch it was reached at.
    pub epoch: usize,
    /// Its value.
    pub value: f64,
}

/// The content of `status.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Format version ([`STATUS_VERSION`]).
    pub version: u32,
    /// Where the run stands.
    #[serde(flatten)]
    pub state: RunState,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Epochs asked for.
    pub epochs_planned: usize,
    /// The best monitored value so far.
    pub best: Option<BestMetric>,
    /// The checkpoints saved (`last`, `best`), by file stem.
    pub checkpoints: Vec<String>,
}

impl RunStatus {
    /// A status of `run` with `config`, `state`, `epochs_done` and the best `(epoch, value)`;
    /// the checkpoints are those present in the folder.
    pub fn new(
        run: &RunDir,
        config: &TrainConfig,
        state: RunState,
        epochs_done: usize,
        best: Option<(usize, f64)>,
    ) -> Self {
        Self {
            version: STATUS_VERSION,
            state,
            epochs_done,
            epochs_planned: config.epochs,
            best: best.map(|(epoch, value)| BestMetric {
                metric: config.monitor.name().to_owned(),
                epoch,
                value,
            }),
            checkpoints: saved_checkpoints(run),
        }
    }

    /// A status rebuilt from what an older run's folder holds: finished when its history
    /// has every planned epoch, else stopped; the best monitored value from the history.
    pub fn derive(run: &RunDir, config: &TrainConfig, history: &[EpochRecord]) -> Self {
        let monitor = &config.monitor;
        let best = history
            .iter()
            .map(|r| (r.epoch, monitor.value(&r.validation)))
            .filter(|(_, v)| v.is_finite())
            .reduce(
                |a, b| match (monitor.higher_is_better(config.task), b.1 > a.1) {
                    (true, true) | (false, false) => b,
                    _ => a,
                },
            );
        let epochs_done = history.len();
        let state = if epochs_done >= config.epochs {
            RunState::Finished
        } else {
            RunState::Stopped
        };
        Self::new(run, config, state, epochs_done, best)
    }

    /// The status as a reader outside the job sees it: `Running` becomes `Stopped` (the
    /// job that wrote it is gone; the app marks its own live run itself).
    pub fn settled(mut self) -> Self {
        if self.state == RunState::Running {
            self.state = RunState::Stopped;
        }
        self
    }

    /// The path of the status file of `run`.
    pub fn path(run: &RunDir) -> PathBuf {
        run.dir.join(STATUS_FILE)
    }

    /// Writes the status of `run` atomically.
    pub fn save(&self, run: &RunDir) -> Result<(), TrainError> {
        let path = Self::path(run);
        let json = serde_json::to_vec_pretty(self).map_err(|e| TrainError::Parse {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        crate::atomic_file::write(&path, &json).map_err(TrainError::io("write", &path))
    }

    /// Reads the status of `run`: `Ok(None)` when it has none (an older run); a newer
    /// format version is refused with a message.
    pub fn load(run: &RunDir) -> Result<Option<Self>, TrainError> {
        let path = Self::path(run);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrainError::io("read the run status", &path)(e)),
        };
        parse(&bytes, &path).map(Some)
    }
}

fn parse(bytes: &[u8], path: &Path) -> Result<RunStatus, TrainError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let err = |reason: String| TrainError::Parse {
        path: path.to_owned(),
        reason,
    };
    let version: VersionOnly = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
    if version.version > STATUS_VERSION {
        return Err(err(format!(
            "status version {} is newer than this app reads ({STATUS_VERSION}); update the app",
            version.version
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))
}

/// The checkpoints present in the run folder, by file stem.
fn saved_checkpoints(run: &RunDir) -> Vec<String> {
    [CheckpointKind::Last, CheckpointKind::Best]
        .into_iter()
        .filter(|kind| run.checkpoint_path(*kind).is_file())
        .filter_map(|kind| {
            run.checkpoint_path(kind)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::events::EpochMetrics;

    #[test]
    fn a_status_round_trips_and_older_runs_derive_one() {
        let project = tempfile::tempdir().unwrap();
        let config = TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        };
        let run = RunDir::create(project.path(), &config, &serde_json::json!({})).unwrap();
        assert_eq!(RunStatus::load(&run).unwrap(), None);
        let failed = RunStatus::new(
            &run,
            &config,
            RunState::Failed {
                reason: "out of memory".into(),
            },
            1,
            Some((0, 0.5)),
        );
        failed.save(&run).unwrap();
        assert_eq!(RunStatus::load(&run).unwrap(), Some(failed.clone()));
        let text = std::fs::read_to_string(RunStatus::path(&run)).unwrap();
        assert!(text.contains("\"state\": \"failed\""), "{text}");

        let record = |epoch| EpochRecord {
            epoch,
            global_step: epoch,
            lr: 0.1,
            train: EpochMetrics::default(),
            validation: EpochMetrics {
                loss: 1.0 / (epoch as f64 + 1.0),
                ..EpochMetrics::default()
            },
            duration_secs: 0.1,
        };
        let two = [record(0), record(1)];
        let derived = RunStatus::derive(&run, &config, &two);
        assert_eq!(derived.state, RunState::Stopped);
        assert_eq!(derived.epochs_done, 2);
        let all = [record(0), record(1), record(2)];
        assert_eq!(
            RunStatus::derive(&run, &config, &all).state,
            RunState::Finished
        );
        let running = RunStatus::new(&run, &config, RunState::Running, 1, None);
        assert_eq!(running.settled().state, RunState::Stopped);

        std::fs::write(RunStatus::path(&run), br#"{"version": 99}"#).unwrap();
        let newer = RunStatus::load(&run).unwrap_err().to_string();
        assert!(newer.contains("newer"), "{newer}");
    }
}
