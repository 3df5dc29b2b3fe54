//! A run's folder `<project>/runs/<id>/`: `config.ron` (frozen), `split.json` (frozen),
//! `history.jsonl` (append-only metric history), `checkpoints/{last,best}.safetensors` with
//! a JSON sidecar each, and `train.log`. Checkpoints are written to a temp file and renamed;
//! the loop state is stored inside the checkpoint too, so one rename commits everything.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::TrainError;
use super::config::TrainConfig;
use super::events::{CheckpointKind, EpochMetrics};

/// The key under which the loop state (JSON bytes) is stored in a checkpoint.
const STATE_KEY: &str = "__run_state_json";

/// The loop state saved with a checkpoint (also written as `<kind>.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Epochs completed (the next epoch to run).
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub global_step: usize,
    /// Best monitored value so far and its epoch.
    pub best: Option<(usize, f64)>,
    /// Epochs since the last improvement.
    pub stale_epochs: usize,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Optimiser steps taken by the end of the epoch.
    pub global_step: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Train metrics.
    pub train: EpochMetrics,
    /// Validation metrics.
    pub validation: EpochMetrics,
    /// Wall time of the epoch.
    pub duration_secs: f64,
}

/// An open run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The run id (`run-001`, ...).
    pub id: String,
    /// The folder.
    pub dir: PathBuf,
}

/// The folder holding a project's runs.
pub fn runs_dir(project_dir: &Path) -> PathBuf {
    project_dir.join("runs")
}

impl RunDir {
    /// Creates the next free `run-NNN` with its frozen config and split. The folder is
    /// filled under a staging name and renamed into place, so a `run-NNN` folder always has
    /// its config and split (a kill during creation leaves only a staging folder, removed by
    /// a later creation), and processes creating runs at the same moment get distinct ids
    /// (renaming onto a taken name fails, and the next number is tried).
    pub fn create(
        project_dir: &Path,
        config: &TrainConfig,
        split: &serde_json::Value,
    ) -> Result<Self, TrainError> {
        let runs = runs_dir(project_dir);
        std::fs::create_dir_all(&runs).map_err(TrainError::io("create the runs folder", &runs))?;
        remove_dead_staging(&runs);
        let staging = runs.join(staging_name());
        let checkpoints = staging.join("checkpoints");
        std::fs::create_dir_all(&checkpoints)
            .map_err(TrainError::io("create the checkpoint folder", &checkpoints))?;
        let filled = fill_staging(&staging, config, split).and_then(|()| {
            let mut number = next_run_number(&runs);
            loop {
                let id = format!("run-{number:03}");
                let dir = runs.join(&id);
                match rename_new(&staging, &dir) {
                    Ok(()) => break Ok(RunDir { id, dir }),
                    Err(e) if taken(&e) => number += 1,
                    Err(e) => break Err(TrainError::io("create the run folder", &dir)(e)),
                }
            }
        });
        if filled.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        filled
    }

    /// Takes this run's lock for as long as the returned guard lives; refused at once, naming
    /// the holder, when another process (or job) holds it.
    pub fn lock(&self, purpose: &str) -> Result<crate::file_lock::FileLock, TrainError> {
        let path = self.dir.join(RUN_LOCK_FILE);
        crate::file_lock::try_lock(&path, &format!("{purpose} {}", self.id))
            .map_err(TrainError::io("lock the run", &path))
    }

    /// Opens an existing run and reads its frozen config.
    pub fn open(project_dir: &Path, id: &str) -> Result<(Self, TrainConfig), TrainError> {
        let dir = runs_dir(project_dir).join(id);
        if !dir.is_dir() || id.contains(['/', '\\']) {
            return Err(TrainError::NoRun {
                id: id.to_owned(),
                path: dir,
            });
        }
        let path = dir.join("config.ron");
        let text =
            std::fs::read_to_string(&path).map_err(TrainError::io("read the run config", &path))?;
        let config = ron::from_str(&text).map_err(|e| TrainError::Parse {
            path,
            reason: e.to_string(),
        })?;
        Ok((
            RunDir {
                id: id.to_owned(),
                dir,
            },
            config,
        ))
    }

    /// The newest run of the project, if any.
    pub fn latest_id(project_dir: &Path) -> Option<String> {
        let n = next_run_number(&runs_dir(project_dir));
        (n > 1).then(|| format!("run-{:03}", n - 1))
    }

    /// `id` when given, else the project's newest run; an error when it has none.
    pub fn resolve_id(project_dir: &Path, id: Option<&str>) -> Result<String, TrainError> {
        match id {
            Some(id) => Ok(id.to_owned()),
            None => Self::latest_id(project_dir).ok_or_else(|| TrainError::NoRun {
                id: "(newest)".into(),
                path: runs_dir(project_dir),
            }),
        }
    }

    /// The frozen split description (`split.json`).
    pub fn read_split(&self) -> Result<serde_json::Value, TrainError> {
        let path = self.dir.join("split.json");
        let bytes = std::fs::read(&path).map_err(TrainError::io("read the run's split", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::Parse {
            path,
            reason: e.to_string(),
        })
    }

    /// The class names frozen with the run, in index order (empty when the run predates
    /// them).
    pub fn class_names(&self) -> Result<Vec<String>, TrainError> {
        let split = self.read_split()?;
        Ok(split["classes"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The checkpoint folder.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// The path of a checkpoint.
    pub fn checkpoint_path(&self, kind: CheckpointKind) -> PathBuf {
        self.checkpoints()
            .join(format!("{}.safetensors", kind_name(kind)))
    }

    /// Appends one record to `history.jsonl`.
    pub fn append_history(&self, record: &EpochRecord) -> Result<(), TrainError> {
        let path = self.dir.join("history.jsonl");
        let mut line =
            serde_json::to_string(record).map_err(|e| TrainError::Config(e.to_string()))?;
        line.push('\n');
        append(&path, &line)
    }

    /// Reads `history.jsonl`, skipping a damaged trailing line (a kill mid-write).
    pub fn read_history(&self) -> Result<Vec<EpochRecord>, TrainError> {
        let path = self.dir.join("history.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(TrainError::io("read the history", &path)(e)),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut records = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str(line) {
                Ok(record) => records.push(record),
                Err(_) if i + 1 == lines.len() => {}
                Err(e) => {
                    return Err(TrainError::Parse {
                        path,
                        reason: format!("line {}: {e}", i + 1),
                    });
                }
            }
        }
        Ok(records)
    }

    /// Keeps only the history of epochs before `epoch` (on resume; rewritten atomically).
    pub fn truncate_history(&self, epoch: usize) -> Result<(), TrainError> {
        let mut text = String::new();
        for record in self.read_history()?.into_iter().filter(|r| r.epoch < epoch) {
            text.push_str(
                &serde_json::to_string(&record).map_err(|e| TrainError::Config(e.to_string()))?,
            );
            text.push('\n');
        }
        write_atomically(&self.dir.join("history.jsonl"), text.as_bytes())
    }

    /// Appends a line to `train.log` (best effort: a failing log never stops training).
    pub fn log(&self, line: &str) {
        let _ = append(&self.dir.join("train.log"), &format!("{line}\n"));
    }

    /// Writes a checkpoint: `tensors` plus the loop state, then the readable sidecar.
    pub fn save_checkpoint(
        &self,
        kind: CheckpointKind,
        tensors: &[(String, Tensor)],
        state: &CheckpointState,
    ) -> Result<PathBuf, TrainError> {
        let path = self.checkpoint_path(kind);
        let json =
            serde_json::to_vec_pretty(state).map_err(|e| TrainError::Config(e.to_string()))?;
        let state_tensor = Tensor::f_from_slice(&json)?.f_to_kind(Kind::Uint8)?;
        // Channels-last variables are not contiguous; safetensors stores contiguous data.
        let mut named: Vec<(&str, Tensor)> = tensors
            .iter()
            .map(|(n, t)| Ok((n.as_str(), t.f_contiguous()?)))
            .collect::<Result<_, tch::TchError>>()?;
        named.push((STATE_KEY, state_tensor));
        crate::atomic_file::write_with(&path, |tmp| {
            Tensor::write_safetensors(&named, tmp).map_err(std::io::Error::other)
        })
        .map_err(TrainError::io("write the checkpoint", &path))?;
        write_atomically(&path.with_extension("json"), &json)?;
        Ok(path)
    }

    /// The loop state saved with a checkpoint, from its JSON sidecar (no tensors read).
    pub fn load_checkpoint_state(
        &self,
        kind: CheckpointKind,
    ) -> Result<CheckpointState, TrainError> {
        let path = self.checkpoint_path(kind).with_extension("json");
        let bytes =
            std::fs::read(&path).map_err(TrainError::io("read the checkpoint state", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::Parse {
            path,
            reason: e.to_string(),
        })
    }

    /// Reads a checkpoint: its tensors (without the state) and the loop state.
    pub fn load_checkpoint(
        &self,
        kind: CheckpointKind,
    ) -> Result<(HashMap<String, Tensor>, CheckpointState), TrainError> {
        let path = self.checkpoint_path(kind);
        if !path.is_file() {
            return Err(TrainError::Checkpoint {
                path,
                reason: "no checkpoint was saved yet".into(),
            });
        }
        let mut tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
            .map_err(|e| TrainError::Checkpoint {
                path: path.clone(),
                reason: format!("the file is damaged or not a safetensors checkpoint: {e}"),
            })?
            .into_iter()
            .collect();
        let state = tensors
            .remove(STATE_KEY)
            .ok_or_else(|| TrainError::Checkpoint {
                path: path.clone(),
                reason: "the loop state is missing".into(),
            })?;
        let bytes = Vec::<u8>::try_from(&state)?;
        let state = serde_json::from_slice(&bytes).map_err(|e| TrainError::Parse {
            path,
            reason: e.to_string(),
        })?;
        Ok((tensors, state))
    }
}

fn kind_name(kind: CheckpointKind) -> &'static str {
    match kind {
        CheckpointKind::Last => "last",
        CheckpointKind::Best => "best",
    }
}

/// The lock file of a run being trained (see [`crate::file_lock`]).
pub const RUN_LOCK_FILE: &str = "run.lock";

/// The prefix of a run folder being created.
const STAGING_PREFIX: &str = ".creating-";

/// A staging folder name unique to this process and call: `.creating-<pid>-<n>`.
fn staging_name() -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{STAGING_PREFIX}{}-{n}", std::process::id())
}

/// Writes the frozen config and split into a staging folder.
fn fill_staging(
    staging: &Path,
    config: &TrainConfig,
    split: &serde_json::Value,
) -> Result<(), TrainError> {
    let ron = ron::ser::to_string_pretty(config, Default::default())
        .map_err(|e| TrainError::Config(e.to_string()))?;
    write_atomically(&staging.join("config.ron"), ron.as_bytes())?;
    let split = serde_json::to_vec_pretty(split).map_err(|e| TrainError::Config(e.to_string()))?;
    write_atomically(&staging.join("split.json"), &split)
}

/// Renames folder `from` to `to` unless `to` exists (an empty `to`, which a plain rename
/// would replace, counts as taken too).
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

/// Whether a rename failed because the target name is taken (by a run another process made).
fn taken(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty
    )
}

/// Removes staging folders whose creating process is gone (killed mid-creation). Only on
/// Linux, where `/proc` says which processes live; elsewhere they stay (they are hidden).
fn remove_dead_staging(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STAGING_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let proc = Path::new("/proc");
        if proc.join("self").exists() && !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn next_run_number(runs: &Path) -> u32 {
    std::fs::read_dir(runs)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_prefix("run-")?
                        .parse::<u32>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
                + 1
        })
        .unwrap_or(1)
}

fn append(path: &Path, text: &str) -> Result<(), TrainError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(TrainError::io("open for appending", path))?;
    file.write_all(text.as_bytes())
        .map_err(TrainError::io("append to", path))
}

/// Writes a run file atomically (see [`crate::atomic_file`]).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    crate::atomic_file::write(path, bytes).map_err(TrainError::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_get_numbered_and_history_survives_a_torn_last_line() {
        let project = tempfile::tempdir().unwrap();
        let config = TrainConfig::default();
        let split = serde_json::json!({"train": 3});
        let a = RunDir::create(project.path(), &config, &split).unwrap();
        let b = RunDir::create(project.path(), &config, &split).unwrap();
        assert_eq!((a.id.as_str(), b.id.as_str()), ("run-001", "run-002"));
        assert_eq!(
            RunDir::latest_id(project.path()).as_deref(),
            Some("run-002")
        );
        let (_, back) = RunDir::open(project.path(), "run-001").unwrap();
        assert_eq!(back, config);
        let record = |epoch| EpochRecord {
            epoch,
            global_step: epoch * 2,
            lr: 0.1,
            train: EpochMetrics::default(),
            validation: EpochMetrics::default(),
            duration_secs: 0.5,
        };
        for epoch in 0..3 {
            a.append_history(&record(epoch)).unwrap();
        }
        append(&a.dir.join("history.jsonl"), "{\"epoch\": 3, \"glo").unwrap();
        assert_eq!(a.read_history().unwrap().len(), 3);
        a.truncate_history(2).unwrap();
        assert_eq!(a.read_history().unwrap(), vec![record(0), record(1)]);

        let state = CheckpointState {
            epochs_done: 2,
            global_step: 4,
            best: Some((1, 0.25)),
            stale_epochs: 0,
        };
        let tensors = vec![("w".to_owned(), Tensor::from_slice(&[1.0f32, 2.0]))];
        let path = a
            .save_checkpoint(CheckpointKind::Last, &tensors, &state)
            .unwrap();
        assert!(path.with_extension("json").is_file());
        let (loaded, back) = a.load_checkpoint(CheckpointKind::Last).unwrap();
        assert_eq!(back, state);
        assert_eq!(Vec::<f32>::try_from(&loaded["w"]).unwrap(), vec![1.0, 2.0]);
        assert!(a.load_checkpoint(CheckpointKind::Best).is_err());
    }
}
