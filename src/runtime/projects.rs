//! The project list as the UI holds it: rows made on a worker by scanning the projects
//! folder.

use std::path::{Path, PathBuf};

use super::Loading;
use crate::project::{OpenProject, discover_projects};

/// A project folder as the UI shows it (plain data made on a worker).
#[derive(Clone, Debug)]
pub struct ProjectRow {
    /// The project folder.
    pub dir: PathBuf,
    /// The loaded project, or the message saying why it could not be read.
    pub project: Result<OpenProject, String>,
    /// Whether the project's data folder exists on this machine.
    pub data_present: bool,
}

impl ProjectRow {
    /// The name shown in lists: the project's name, else its folder name.
    pub fn title(&self) -> String {
        match &self.project {
            Ok(open) if !open.project.name.is_empty() => open.project.name.clone(),
            _ => self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.dir.display().to_string()),
        }
    }
}

/// The state of the project list: scanning on a worker, the projects found (most recent
/// first), or why the folder could not be listed.
pub type ProjectsState = Loading<Vec<ProjectRow>>;

/// Lists and loads every project in `dir` (runs on a worker).
pub fn scan_projects(dir: &Path) -> ProjectsState {
    match discover_projects(dir) {
        Ok(entries) => ProjectsState::Ready(
            entries
                .into_iter()
                .map(|entry| {
                    let data_present = entry
                        .project
                        .as_ref()
                        .is_ok_and(|open| open.data_dir().exists());
                    ProjectRow {
                        dir: entry.dir,
                        project: entry.project.map_err(|e| e.to_string()),
                        data_present,
                    }
                })
                .collect(),
        ),
        Err(e) => ProjectsState::Failed(format!(
            "could not list the projects folder ({e}): {}",
            dir.display()
        )),
    }
}
