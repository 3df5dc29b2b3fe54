//! Project folder operations: create, rename, duplicate, and delete (into a trash folder, so
//! nothing is lost by a slip).

use std::path::{Path, PathBuf};

use super::{PROJECT_FILE, Project, ProjectError, load_project, save_project};

/// Folder inside the projects folder that deleted projects are moved to.
pub const TRASH_DIR: &str = ".trash";

/// Makes a folder name from a project name: lowercase ASCII letters, digits and dashes.
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-').to_owned();
    if slug.is_empty() {
        "project".to_owned()
    } else {
        slug
    }
}

/// A folder under `root` named after `name` that does not exist yet.
pub fn unused_dir(root: &Path, name: &str) -> PathBuf {
    let base = slug(name);
    let mut candidate = root.join(&base);
    let mut n = 2;
    while candidate.exists() {
        candidate = root.join(format!("{base}-{n}"));
        n += 1;
    }
    candidate
}

/// Guesses the task from a data folder's layout (`images/` beside `masks/` means
/// segmentation; see [`crate::data::targets::detect_task`]), classification otherwise.
pub fn detect_task(data_dir: &Path) -> super::TaskKind {
    crate::data::targets::detect_task(&crate::data::targets::Evidence::of_folder(data_dir))
}

/// Creates a new project folder under `root` and saves `project` into it.
pub fn create_project(root: &Path, project: &Project) -> Result<PathBuf, ProjectError> {
    let dir = unused_dir(root, &project.name);
    save_project(&dir, project)?;
    Ok(dir)
}

/// Renames a project (its display name; the folder keeps its name so paths stay valid).
pub fn rename_project(dir: &Path, new_name: &str) -> Result<Project, ProjectError> {
    super::update_project(dir, |project| new_name.clone_into(&mut project.name))
}

/// Copies a project's settings (not its runs) into a new folder beside it, named
/// "<name> (copy)". A data path relative to the old folder is rewritten to stay valid.
pub fn duplicate_project(dir: &Path) -> Result<PathBuf, ProjectError> {
    let mut project = load_project(dir)?;
    project.name = format!("{} (copy)", project.name);
    let root = dir.parent().unwrap_or(Path::new("."));
    let new_dir = unused_dir(root, &project.name);
    if let super::DataLocation::Path(p) = &project.data
        && p.is_relative()
    {
        let absolute = normalize(&dir.join(p));
        project.data =
            super::DataLocation::Path(relative_to(&absolute, &new_dir).unwrap_or(absolute));
    }
    save_project(&new_dir, &project)?;
    Ok(new_dir)
}

/// Moves a project folder into `<projects folder>/.trash/`, returning where it went.
pub fn delete_project(dir: &Path) -> Result<PathBuf, ProjectError> {
    let file = dir.join(PROJECT_FILE);
    let move_err = |source| ProjectError::Write {
        path: dir.to_owned(),
        source,
    };
    if !file.is_file() {
        return Err(ProjectError::Read {
            path: file,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a project folder"),
        });
    }
    let root = dir.parent().unwrap_or(Path::new("."));
    let trash = root.join(TRASH_DIR);
    std::fs::create_dir_all(&trash).map_err(move_err)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "project".to_owned());
    let target = unused_dir(&trash, &name);
    std::fs::rename(dir, &target).map_err(move_err)?;
    Ok(target)
}

/// Removes `.` and `name/..` pairs without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// `path` expressed relative to `base` when both are relative to a common prefix.
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    let path: Vec<_> = path.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut relative = PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for part in &path[common..] {
        relative.push(part);
    }
    Some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::DataLocation;

    fn project(name: &str) -> Project {
        Project {
            name: name.to_owned(),
            data: DataLocation::Path("../shared-data".into()),
            ..Project::default()
        }
    }

    #[test]
    fn slugs_are_safe_folder_names() {
        assert_eq!(slug("Chest X-ray: pneumonia!"), "chest-x-ray-pneumonia");
        assert_eq!(slug("Ünïcode ✓"), "n-code");
        assert_eq!(slug("!!!"), "project");
    }

    #[test]
    fn create_rename_duplicate_delete() {
        let root = tempfile::tempdir().unwrap();
        let a = create_project(root.path(), &project("Skin lesions")).unwrap();
        let b = create_project(root.path(), &project("Skin lesions")).unwrap();
        assert_ne!(
            a, b,
            "a second project with the same name gets its own folder"
        );

        rename_project(&a, "Dermoscopy").unwrap();
        assert_eq!(load_project(&a).unwrap().name, "Dermoscopy");

        let copy = duplicate_project(&a).unwrap();
        let copied = load_project(&copy).unwrap();
        assert_eq!(copied.name, "Dermoscopy (copy)");
        assert_eq!(copied.data.resolve(&copy), copy.join("../shared-data"));

        let trashed = delete_project(&a).unwrap();
        assert!(!a.exists());
        assert!(trashed.join(PROJECT_FILE).is_file());
        assert!(trashed.starts_with(root.path().join(TRASH_DIR)));
        assert!(delete_project(&a).is_err());
    }
}
