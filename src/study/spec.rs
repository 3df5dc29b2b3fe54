//! Run specs: a study spread over machines. `study --plan DIR` makes the study in the
//! project and writes one self-contained spec per run into `DIR` (`<key>.ron`: the study,
//! the run's backbone, strategy and weights, and its full config); `train PROJECT --spec
//! FILE` trains exactly that run into the study, under the run's own lock, so that any
//! scheduler (a Slurm job array, Ray tasks) can start one process per spec with the project
//! folder on shared storage.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StudyError;
use super::record::{STUDY_VERSION, Study, StudyDir, StudyEntry};
use super::runner::{StudyEvent, StudyOutcome, run_entry};
use crate::train::{Control, TrainConfig};

/// One run of a study, as a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Format version ([`STUDY_VERSION`]).
    pub version: u32,
    /// The study it belongs to.
    pub study: String,
    /// The run.
    pub entry: StudyEntry,
    /// Its full training config (what the run will freeze).
    pub config: TrainConfig,
}

/// Writes a spec per run of `study` into `out` and returns their paths.
pub fn write_specs(study: &Study, out: &Path) -> Result<Vec<PathBuf>, StudyError> {
    std::fs::create_dir_all(out).map_err(StudyError::io("create", out))?;
    study
        .entries
        .iter()
        .map(|entry| {
            let spec = RunSpec {
                version: STUDY_VERSION,
                study: study.id.clone(),
                entry: entry.clone(),
                config: entry.config(&study.recipe),
            };
            let path = out.join(format!("{}.ron", entry.key));
            let text = ron::ser::to_string_pretty(&spec, ron::ser::PrettyConfig::default())
                .map_err(|e| StudyError::File {
                    path: path.clone(),
                    reason: format!("could not encode: {e}"),
                })?;
            crate::atomic_file::write(&path, text.as_bytes())
                .map_err(StudyError::io("write", &path))?;
            Ok(path)
        })
        .collect()
}

/// Reads a spec.
pub fn read_spec(path: &Path) -> Result<RunSpec, StudyError> {
    let text = std::fs::read_to_string(path).map_err(StudyError::io("read", path))?;
    let spec: RunSpec = ron::from_str(&text).map_err(|e| StudyError::File {
        path: path.to_owned(),
        reason: format!("not a run spec: {e}"),
    })?;
    if spec.version > STUDY_VERSION {
        return Err(StudyError::File {
            path: path.to_owned(),
            reason: format!(
                "written by a newer transfer-workbench (version {}, this one reads up to \
                 {STUDY_VERSION})",
                spec.version
            ),
        });
    }
    Ok(spec)
}

/// Trains the run of the spec at `path` into its study in the project at `project_dir`
/// (nothing when it is done or another process trains it now).
pub fn run_spec(
    project_dir: &Path,
    path: &Path,
    device: tch::Device,
    on_event: &mut (dyn FnMut(StudyEvent) + Send),
    control: &mut Control,
) -> Result<StudyOutcome, StudyError> {
    let spec = read_spec(path)?;
    let dir = StudyDir::of(project_dir, &spec.study);
    let study = dir.load_plan()?;
    let planned = study
        .entries
        .iter()
        .find(|e| e.key == spec.entry.key)
        .ok_or_else(|| StudyError::File {
            path: path.to_owned(),
            reason: format!("{} has no run {}", study.id, spec.entry.key),
        })?;
    if *planned != spec.entry || planned.config(&study.recipe) != spec.config {
        return Err(StudyError::File {
            path: path.to_owned(),
            reason: format!(
                "the spec differs from the plan of {} in {} (write the specs again with \
                 `study --plan`)",
                study.id,
                dir.plan_path().display()
            ),
        });
    }
    run_entry(
        project_dir,
        &dir,
        &study,
        planned,
        device,
        on_event,
        control,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Strategy;

    #[test]
    fn specs_round_trip_and_a_changed_spec_is_refused() {
        let project = tempfile::tempdir().unwrap();
        let entries = vec![
            StudyEntry::new("mobilenet_v2", Strategy::LinearProbe, true),
            StudyEntry::new("efficientnet_lite0", Strategy::FineTune, true),
        ];
        let recipe = TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        };
        let (_, study) = StudyDir::create(project.path(), recipe, entries).unwrap();
        let out = tempfile::tempdir().unwrap();
        let paths = write_specs(&study, out.path()).unwrap();
        assert_eq!(paths.len(), 2);
        for (path, entry) in paths.iter().zip(&study.entries) {
            let spec = read_spec(path).unwrap();
            assert_eq!(spec.entry, *entry);
            assert_eq!(spec.config.backbone, entry.backbone);
            assert_eq!(spec.config.epochs, 3);
        }
        let changed = std::fs::read_to_string(&paths[0])
            .unwrap()
            .replace("epochs: 3", "epochs: 30");
        std::fs::write(&paths[0], changed).unwrap();
        let error = run_spec(
            project.path(),
            &paths[0],
            tch::Device::Cpu,
            &mut |_| {},
            &mut Control::detached(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("differs from the plan"), "{error}");
        std::fs::write(&paths[1], "RunSpec(").unwrap();
        let error = read_spec(&paths[1]).unwrap_err().to_string();
        assert!(error.contains("efficientnet_lite0-finetune.ron"), "{error}");
    }
}
