//! A study as plain data under `<project>/studies/<id>/`:
//!
//! - `study.ron`: the plan, written once: the recipe every run shares (the project's
//!   next-run settings when the study was made) and the runs, each a backbone, a strategy
//!   and its starting weights;
//! - `entries/<key>.ron`: where each run stands (its run id once started, done or failed,
//!   training seconds), written by whoever trains it, so that processes filling one study
//!   (`train --spec`) never write the same file;
//! - `scores.ron`: the before-training scores and measured cost of each backbone.
//!
//! Every file is versioned, written atomically and named in every error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::StudyError;
use super::cost::Cost;
use super::scores::BackboneScores;
use crate::train::{Strategy, TrainConfig, WeightsSpec};

/// The format version of a study's files.
pub const STUDY_VERSION: u32 = 1;

/// The folder of every study of a project.
pub fn studies_dir(project_dir: &Path) -> PathBuf {
    project_dir.join("studies")
}

/// One run of a study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyEntry {
    /// The run's name inside the study (`mobilenet_v2-probe`, `mobilenet_v2-probe-scratch`).
    pub key: String,
    /// The backbone.
    pub backbone: String,
    /// How much of the network is trained.
    pub strategy: Strategy,
    /// Pretrained or random (the from-scratch control).
    pub weights: WeightsSpec,
}

impl StudyEntry {
    /// A run of `backbone` with `strategy`, pretrained or from scratch.
    pub fn new(backbone: &str, strategy: Strategy, pretrained: bool) -> Self {
        let mut key = format!("{backbone}-{}", strategy.label());
        if !pretrained {
            key.push_str("-scratch");
        }
        Self {
            key,
            backbone: backbone.to_owned(),
            strategy,
            weights: if pretrained {
                WeightsSpec::Pretrained
            } else {
                WeightsSpec::Random
            },
        }
    }

    /// Whether the run starts from pretrained weights.
    pub fn pretrained(&self) -> bool {
        self.weights == WeightsSpec::Pretrained
    }

    /// The run's full config: the study's recipe with this backbone, strategy and weights.
    pub fn config(&self, recipe: &TrainConfig) -> TrainConfig {
        TrainConfig {
            backbone: self.backbone.clone(),
            strategy: self.strategy,
            weights: self.weights.clone(),
            ..recipe.clone()
        }
    }
}

/// The plan of a study (`study.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// Format version ([`STUDY_VERSION`]).
    pub version: u32,
    /// `study-NNN`.
    pub id: String,
    /// Seconds since the Unix epoch when it was made.
    pub created_unix: u64,
    /// What every run shares (epochs, learning rate, input size, seed, ...).
    pub recipe: TrainConfig,
    /// The runs, in the order they are trained.
    pub entries: Vec<StudyEntry>,
}

/// Where one run of a study stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EntryState {
    /// Not started, or started and not finished (resumable from its run's checkpoint).
    Pending,
    /// Trained to its end (all epochs, or early stopping).
    Done,
    /// Training failed; the study went on without it.
    Failed(String),
}

/// The state file of one run of a study (`entries/<key>.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// Format version ([`STUDY_VERSION`]).
    pub version: u32,
    /// The project run training it, once started.
    pub run_id: Option<String>,
    /// Where it stands.
    pub state: EntryState,
    /// Wall seconds of training so far (every job on it together).
    pub train_secs: f64,
    /// The size of its exported TorchScript model, once done.
    #[serde(default)]
    pub export_bytes: Option<u64>,
}

impl Default for EntryRecord {
    fn default() -> Self {
        Self {
            version: STUDY_VERSION,
            run_id: None,
            state: EntryState::Pending,
            train_secs: 0.0,
            export_bytes: None,
        }
    }
}

/// The before-training scores and cost of each backbone (`scores.ron`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StudyScores {
    /// Format version ([`STUDY_VERSION`]).
    pub version: u32,
    /// One per backbone, in the study's order.
    pub backbones: Vec<BackboneRecord>,
}

/// What was measured of one backbone before training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackboneRecord {
    /// The backbone.
    pub backbone: String,
    /// Its transferability scores (`None`: not available for the project's task).
    pub scores: Option<BackboneScores>,
    /// Its speed and size on this machine (`None`: not measured).
    pub cost: Option<Cost>,
}

/// A study's folder.
#[derive(Clone, Debug)]
pub struct StudyDir {
    /// `<project>/studies/<id>`.
    pub dir: PathBuf,
}

impl StudyDir {
    /// The folder of study `id` of the project at `project_dir`.
    pub fn of(project_dir: &Path, id: &str) -> Self {
        Self {
            dir: studies_dir(project_dir).join(id),
        }
    }

    /// Makes the next free `study-NNN` folder and writes its plan.
    pub fn create(
        project_dir: &Path,
        recipe: TrainConfig,
        entries: Vec<StudyEntry>,
    ) -> Result<(Self, Study), StudyError> {
        let root = studies_dir(project_dir);
        std::fs::create_dir_all(&root).map_err(StudyError::io("create", &root))?;
        let mut number = next_number(&root);
        loop {
            let id = format!("study-{number:03}");
            let dir = root.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let study = Study {
                        version: STUDY_VERSION,
                        id,
                        created_unix: now_unix(),
                        recipe,
                        entries,
                    };
                    let this = Self { dir };
                    this.save_plan(&study)?;
                    return Ok((this, study));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => number += 1,
                Err(e) => return Err(StudyError::io("create", &dir)(e)),
            }
        }
    }

    /// The plan's path.
    pub fn plan_path(&self) -> PathBuf {
        self.dir.join("study.ron")
    }

    /// The state file of entry `key`.
    pub fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join("entries").join(format!("{key}.ron"))
    }

    /// The scores' path.
    pub fn scores_path(&self) -> PathBuf {
        self.dir.join("scores.ron")
    }

    /// Reads the plan.
    pub fn load_plan(&self) -> Result<Study, StudyError> {
        let path = self.plan_path();
        if !self.dir.is_dir() {
            return Err(StudyError::Invalid(format!(
                "no such study: {}",
                self.dir.display()
            )));
        }
        let study: Study = read_ron(&path)?;
        check_version(study.version, &path)?;
        Ok(study)
    }

    /// Writes the plan.
    pub fn save_plan(&self, study: &Study) -> Result<(), StudyError> {
        write_ron(&self.plan_path(), study)
    }

    /// Reads entry `key`'s state (a fresh one when it has none yet).
    pub fn load_entry(&self, key: &str) -> Result<EntryRecord, StudyError> {
        let path = self.entry_path(key);
        if !path.exists() {
            return Ok(EntryRecord::default());
        }
        let record: EntryRecord = read_ron(&path)?;
        check_version(record.version, &path)?;
        Ok(record)
    }

    /// Writes entry `key`'s state.
    pub fn save_entry(&self, key: &str, record: &EntryRecord) -> Result<(), StudyError> {
        let path = self.entry_path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(StudyError::io("create", parent))?;
        }
        write_ron(&path, record)
    }

    /// Reads the scores (none yet: empty).
    pub fn load_scores(&self) -> Result<StudyScores, StudyError> {
        let path = self.scores_path();
        if !path.exists() {
            return Ok(StudyScores {
                version: STUDY_VERSION,
                backbones: Vec::new(),
            });
        }
        let scores: StudyScores = read_ron(&path)?;
        check_version(scores.version, &path)?;
        Ok(scores)
    }

    /// Writes the scores.
    pub fn save_scores(&self, scores: &StudyScores) -> Result<(), StudyError> {
        write_ron(&self.scores_path(), scores)
    }
}

/// The ids of the project's studies, oldest first.
pub fn list_studies(project_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(studies_dir(project_dir)) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| study_number(name).is_some())
        .collect();
    ids.sort_by_key(|id| study_number(id));
    ids
}

fn study_number(name: &str) -> Option<u32> {
    name.strip_prefix("study-")?.parse().ok()
}

fn next_number(root: &Path) -> u32 {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| study_number(e.file_name().to_str()?))
        .max()
        .map_or(1, |n| n + 1)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn check_version(found: u32, path: &Path) -> Result<(), StudyError> {
    if found > STUDY_VERSION {
        return Err(StudyError::File {
            path: path.to_owned(),
            reason: format!(
                "written by a newer transfer-workbench (version {found}, this one reads up to \
                 {STUDY_VERSION})"
            ),
        });
    }
    Ok(())
}

fn read_ron<T: DeserializeOwned>(path: &Path) -> Result<T, StudyError> {
    let text = std::fs::read_to_string(path).map_err(StudyError::io("read", path))?;
    ron::from_str(&text).map_err(|e| StudyError::File {
        path: path.to_owned(),
        reason: format!("damaged: {e}"),
    })
}

fn write_ron<T: Serialize>(path: &Path, value: &T) -> Result<(), StudyError> {
    let text =
        ron::ser::to_string_pretty(value, ron::ser::PrettyConfig::default()).map_err(|e| {
            StudyError::File {
                path: path.to_owned(),
                reason: format!("could not encode: {e}"),
            }
        })?;
    crate::atomic_file::write(path, text.as_bytes()).map_err(StudyError::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_and_its_entries_round_trip_and_damage_names_the_file() {
        let project = tempfile::tempdir().unwrap();
        let entries = vec![
            StudyEntry::new("mobilenet_v2", Strategy::LinearProbe, true),
            StudyEntry::new("mobilenet_v2", Strategy::LinearProbe, false),
        ];
        assert_eq!(entries[1].key, "mobilenet_v2-probe-scratch");
        let (dir, study) =
            StudyDir::create(project.path(), TrainConfig::default(), entries).unwrap();
        assert_eq!(study.id, "study-001");
        let (_, second) = StudyDir::create(project.path(), TrainConfig::default(), vec![]).unwrap();
        assert_eq!(second.id, "study-002");
        assert_eq!(dir.load_plan().unwrap(), study);
        assert_eq!(list_studies(project.path()), ["study-001", "study-002"]);

        let key = &study.entries[0].key;
        assert_eq!(dir.load_entry(key).unwrap(), EntryRecord::default());
        let record = EntryRecord {
            run_id: Some("run-004".into()),
            state: EntryState::Done,
            train_secs: 12.5,
            ..EntryRecord::default()
        };
        dir.save_entry(key, &record).unwrap();
        assert_eq!(dir.load_entry(key).unwrap(), record);

        std::fs::write(dir.entry_path(key), "EntryRecord(version: 1, run_").unwrap();
        let error = dir.load_entry(key).unwrap_err().to_string();
        assert!(error.contains("mobilenet_v2-probe.ron"), "{error}");
        std::fs::write(dir.plan_path(), "Study(version: 9)").unwrap();
        let error = dir.load_plan().unwrap_err().to_string();
        assert!(error.contains("study.ron"), "{error}");
    }
}
