//! Deleting a run: its folder moves to the project's trash (`.trash/runs/<id>`, beside the
//! trash of deleted projects), whole and restorable by moving it back. A run whose lock is
//! held (it is training, here or in another process) is refused, naming the holder. A
//! damaged run (no config, a cut history) can be deleted too.

use std::path::{Path, PathBuf};

use super::TrainError;
use super::run::{RunDir, runs_dir};
use crate::project::{TRASH_DIR, unused_dir};

/// The folder under the project's trash that holds deleted runs.
pub const RUNS_TRASH: &str = "runs";

/// Moves run `run_id` of the project at `project_dir` to the project's trash and returns
/// where it went.
pub fn trash_run(project_dir: &Path, run_id: &str) -> Result<PathBuf, TrainError> {
    let dir = runs_dir(project_dir).join(run_id);
    let plain_name =
        !run_id.is_empty() && !run_id.starts_with('.') && !run_id.contains(['/', '\\']);
    if !plain_name || !dir.is_dir() {
        return Err(TrainError::NoRun {
            id: run_id.to_owned(),
            path: dir,
        });
    }
    let run = RunDir {
        id: run_id.to_owned(),
        dir: dir.clone(),
    };
    // Held until the folder has moved: no training job can take the run meanwhile.
    let _lock = run.lock("delete")?;
    let trash = project_dir.join(TRASH_DIR).join(RUNS_TRASH);
    std::fs::create_dir_all(&trash).map_err(TrainError::io("create the trash folder", &trash))?;
    let target = unused_dir(&trash, run_id);
    std::fs::rename(&dir, &target).map_err(TrainError::io("move the run to the trash", &dir))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::TrainConfig;
    use crate::train::catalogue::list_runs;

    #[test]
    fn a_deleted_run_leaves_the_list_for_the_trash_and_a_training_one_is_refused() {
        let project = tempfile::tempdir().unwrap();
        let config = TrainConfig::default();
        let first = RunDir::create(project.path(), &config, &serde_json::json!({})).unwrap();
        let second = RunDir::create(project.path(), &config, &serde_json::json!({})).unwrap();
        // A damaged run: its config is gone.
        std::fs::remove_file(second.dir.join("config.ron")).unwrap();

        let moved = trash_run(project.path(), &first.id).unwrap();
        assert_eq!(moved, project.path().join(".trash/runs").join(&first.id));
        assert!(moved.join("config.ron").is_file(), "moved whole");
        let listed: Vec<String> = list_runs(project.path())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert!(!listed.contains(&first.id), "{listed:?}");
        trash_run(project.path(), &second.id).unwrap();
        assert!(!second.dir.exists());

        // A run whose lock is held (a training job) stays.
        let third = RunDir::create(project.path(), &config, &serde_json::json!({})).unwrap();
        let held = third.lock("train").unwrap();
        let err = trash_run(project.path(), &third.id)
            .unwrap_err()
            .to_string();
        assert!(third.dir.is_dir(), "{err}");
        drop(held);
        let again = trash_run(project.path(), &third.id).unwrap();
        assert!(again.is_dir());

        for bad in ["", "../x", ".trash", "run-999"] {
            assert!(trash_run(project.path(), bad).is_err(), "{bad}");
        }
    }
}
