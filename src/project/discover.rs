//! Finding the projects inside a folder of project folders.

use std::path::{Path, PathBuf};

use super::{OpenProject, PROJECT_FILE, ProjectError, load_project};

/// One project folder found on disk: loaded, or with the reason it could not be.
#[derive(Debug)]
pub struct ProjectEntry {
    /// The project folder.
    pub dir: PathBuf,
    /// The loaded project, or why it could not be read.
    pub project: Result<OpenProject, ProjectError>,
    /// Last modification of `project.ron`, for most-recent-first ordering.
    pub modified: Option<std::time::SystemTime>,
}

/// Lists the project folders directly inside `root` (those holding `project.ron`),
/// most recently modified first. A damaged project is listed with its error, never skipped.
pub fn discover_projects(root: &Path) -> std::io::Result<Vec<ProjectEntry>> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(root)? {
        let dir = item?.path();
        let file = dir.join(PROJECT_FILE);
        if !file.is_file() {
            continue;
        }
        let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        let project = load_project(&dir).map(|project| OpenProject {
            dir: dir.clone(),
            project,
        });
        entries.push(ProjectEntry {
            dir,
            project,
            modified,
        });
    }
    entries.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.dir.cmp(&b.dir)));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{Project, save_project};

    #[test]
    fn lists_good_and_damaged_projects_and_skips_other_folders() {
        let root = tempfile::tempdir().unwrap();
        let good = Project {
            name: "good".into(),
            ..Project::default()
        };
        save_project(&root.path().join("a"), &good).unwrap();
        std::fs::create_dir_all(root.path().join("b")).unwrap();
        std::fs::write(root.path().join("b").join(PROJECT_FILE), "not ron (").unwrap();
        std::fs::create_dir_all(root.path().join("not-a-project")).unwrap();

        let entries = discover_projects(root.path()).unwrap();
        assert_eq!(entries.len(), 2);
        let names: Vec<_> = entries
            .iter()
            .filter_map(|e| e.project.as_ref().ok())
            .map(|p| p.project.name.clone())
            .collect();
        assert_eq!(names, vec!["good".to_owned()]);
        assert!(entries.iter().any(|e| e.project.is_err()));
    }
}
