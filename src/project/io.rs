//! Reading and writing `project.ron`: pretty RON, written to a temp file then renamed,
//! versions checked and migrated.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::{CURRENT_VERSION, Project};

/// The file name of a project inside its folder.
pub const PROJECT_FILE: &str = "project.ron";

/// Failures reading or writing a project file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("could not read the project file ({source}): {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the project file is damaged ({reason}): {}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error(
        "the project file was written by a newer transfer-workbench (version {found}, this one reads up to {CURRENT_VERSION}): {}",
        path.display()
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error("could not save the project ({source}): {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not encode the project ({reason}): {}", path.display())]
    Encode { path: PathBuf, reason: String },
}

/// Loads `dir/project.ron`, migrating older versions to the current one.
pub fn load_project(dir: &Path) -> Result<Project, ProjectError> {
    let path = dir.join(PROJECT_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ProjectError::Read {
        path: path.clone(),
        source,
    })?;
    let project: Project = ron::from_str(&text).map_err(|e| ProjectError::Parse {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    migrate(project, &path)
}

fn migrate(mut project: Project, path: &Path) -> Result<Project, ProjectError> {
    match project.version {
        v if v > CURRENT_VERSION => Err(ProjectError::TooNew {
            path: path.to_owned(),
            found: v,
        }),
        // Version 0 is a file without a version field: same shape as version 1.
        _ => {
            project.version = CURRENT_VERSION;
            Ok(project)
        }
    }
}

/// Saves the project atomically as `dir/project.ron` (temp file, fsync, rename), under the
/// project's lock (see [`crate::file_lock`]).
pub fn save_project(dir: &Path, project: &Project) -> Result<(), ProjectError> {
    let _lock = lock(dir, "saving project.ron")?;
    save_locked(dir, project)
}

/// Takes the project folder's lock, or names its holder and the project file.
fn lock(dir: &Path, purpose: &str) -> Result<crate::file_lock::FileLock, ProjectError> {
    crate::file_lock::lock_project(dir, purpose).map_err(|source| ProjectError::Write {
        path: dir.join(PROJECT_FILE),
        source,
    })
}

/// [`save_project`] for a caller that holds the lock.
fn save_locked(dir: &Path, project: &Project) -> Result<(), ProjectError> {
    let path = dir.join(PROJECT_FILE);
    let write_err = |source| ProjectError::Write {
        path: path.clone(),
        source,
    };
    let text =
        ron::ser::to_string_pretty(project, ron::ser::PrettyConfig::default()).map_err(|e| {
            ProjectError::Encode {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
    std::fs::create_dir_all(dir).map_err(write_err)?;
    backup_if_damaged(&path).map_err(write_err)?;
    crate::atomic_file::write(&path, format!("{text}\n").as_bytes()).map_err(write_err)
}

/// Serialises the read-modify-write edits of project files within this process.
static PROJECT_EDITS: Mutex<()> = Mutex::new(());

/// Loads `dir/project.ron`, applies `edit`, and saves the result when it changed. Edits
/// through this function never interleave, within the process or (under the project's file
/// lock) between processes, so none is lost to another.
/// Returns the project as it now is on disk.
pub fn update_project(
    dir: &Path,
    edit: impl FnOnce(&mut Project),
) -> Result<Project, ProjectError> {
    let _edits = PROJECT_EDITS.lock().unwrap_or_else(PoisonError::into_inner);
    let _lock = lock(dir, "editing project.ron")?;
    let mut project = load_project(dir)?;
    let before = project.clone();
    edit(&mut project);
    if project != before {
        save_locked(dir, &project)?;
    }
    Ok(project)
}

/// Before a damaged project file is replaced, keeps it as `project.ron.damaged-<unix secs>`
/// so whatever the user had can still be recovered by hand.
fn backup_if_damaged(path: &Path) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    if ron::from_str::<Project>(&text).is_ok() {
        return Ok(());
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::fs::copy(path, path.with_extension(format!("ron.damaged-{secs}"))).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{DataLocation, TaskKind};

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project {
            name: "Chest X-rays".into(),
            task: TaskKind::Segmentation,
            data: DataLocation::Asset("data/nuclei".into()),
            ..Project::default()
        };
        save_project(dir.path(), &project).unwrap();
        assert_eq!(load_project(dir.path()).unwrap(), project);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(PROJECT_FILE)]);
    }

    #[test]
    fn missing_fields_take_defaults_and_old_version_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROJECT_FILE), "(name: \"old\")").unwrap();
        let project = load_project(dir.path()).unwrap();
        assert_eq!(project.name, "old");
        assert_eq!(project.version, CURRENT_VERSION);
        assert_eq!(project.backbone, "mobilenet_v2");
        assert_eq!(project.dataset, crate::project::DatasetConfig::default());
    }

    #[test]
    fn current_version_without_training_settings_loads_and_keeps_them_once_set() {
        let dir = tempfile::tempdir().unwrap();
        let text = "(version: 1, name: \"x\", task: Classification, data: Path(\"data\"), \
                    backbone: \"resnet18\", input_size_px: 64, dataset: (min_side_px: 8))";
        std::fs::write(dir.path().join(PROJECT_FILE), text).unwrap();
        let project = load_project(dir.path()).unwrap();
        assert_eq!(project.training, None);
        assert_eq!(project.input_size_px, 64);

        let mut settings = crate::project::TrainingSettings::default();
        settings.config.backbone = "mobilenet_v2".into();
        settings.config.input_size_px = 96;
        settings.config.epochs = 4;
        let saved = update_project(dir.path(), |p| p.set_training(settings.clone())).unwrap();
        let loaded = load_project(dir.path()).unwrap();
        assert_eq!(loaded, saved);
        assert_eq!(loaded.training, Some(settings));
        assert_eq!(
            (loaded.backbone.as_str(), loaded.input_size_px),
            ("mobilenet_v2", 96)
        );
        assert_eq!(loaded.dataset.min_side_px, 8);
    }

    #[test]
    fn unchanged_edit_does_not_rewrite_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // Hand-written text with a comment: an edit that changes nothing keeps it.
        let text = "// kept\n(version: 1, name: \"x\")\n";
        std::fs::write(dir.path().join(PROJECT_FILE), text).unwrap();
        let project = update_project(dir.path(), |p| p.name = "x".into()).unwrap();
        assert_eq!(project.name, "x");
        let on_disk = std::fs::read_to_string(dir.path().join(PROJECT_FILE)).unwrap();
        assert_eq!(on_disk, text);
    }

    #[test]
    fn the_demo_projects_still_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("projects");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let dir = entry.unwrap().path();
            if dir.join(PROJECT_FILE).is_file() {
                let project = load_project(&dir).unwrap();
                assert!(!project.name.is_empty(), "{}", dir.display());
                loaded += 1;
            }
        }
        assert!(
            loaded >= 3,
            "found {loaded} demo projects in {}",
            root.display()
        );
    }

    #[test]
    fn damaged_and_future_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROJECT_FILE), "(name: \"x\", task: Bogus)").unwrap();
        let err = load_project(dir.path()).unwrap_err();
        assert!(matches!(err, ProjectError::Parse { .. }), "{err}");
        assert!(err.to_string().contains(PROJECT_FILE));

        // Saving over the damaged file keeps a backup of it.
        save_project(dir.path(), &Project::default()).unwrap();
        let backups: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("damaged"))
            .collect();
        assert_eq!(backups.len(), 1);
        let kept = std::fs::read_to_string(backups[0].path()).unwrap();
        assert!(kept.contains("Bogus"));

        std::fs::write(dir.path().join(PROJECT_FILE), "(version: 99, name: \"x\")").unwrap();
        let err = load_project(dir.path()).unwrap_err();
        assert!(
            matches!(err, ProjectError::TooNew { found: 99, .. }),
            "{err}"
        );
    }
}
