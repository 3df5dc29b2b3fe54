//! Relabelling, excluding and restoring images of a project, and undoing it: checked
//! against the data set's listing (no image is opened, none is written) and stored in
//! `project.ron` with a locked read-modify-write. The window and `transfer-workbench
//! curate` both call these.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::curation::{CurationAction, CurationEdit};
use super::io::{ProjectError, load_project, update_project};
use super::{OpenProject, Project};
use crate::data::DataError;
use crate::data::overrides::item_id;

/// Why a curation edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CurateError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error("could not list the data set: {0}")]
    Data(#[from] DataError),
    #[error("{file} is not an image of the data set in {}", root.display())]
    UnknownFile { file: String, root: PathBuf },
    #[error("the data set has no class “{class}”; its classes: {}", classes.join(", "))]
    UnknownClass { class: String, classes: Vec<String> },
    #[error("only classification images can be relabelled; this is a {task} project")]
    NoClassLabels { task: String },
    #[error("{file} has no override to restore")]
    NoOverride { file: String },
    #[error("no file given")]
    NoFiles,
    #[error("nothing to undo: the project has no relabels or exclusions")]
    NothingToUndo,
}

/// What an edit did: the project as saved, and whether it changed anything (an exclusion of
/// images already left out changes nothing and is not logged).
#[derive(Debug)]
pub struct Curated {
    /// The project as saved.
    pub project: Project,
    /// The edit changed an override.
    pub changed: bool,
}

/// Checks `edit` against the project's data set and adds it to the project's curation.
pub fn curate(dir: &Path, edit: CurationEdit) -> Result<Curated, CurateError> {
    if edit.files.is_empty() {
        return Err(CurateError::NoFiles);
    }
    let project = load_project(dir)?;
    check(dir, &project, &edit)?;
    let mut changed = false;
    let project = update_project(dir, |p| changed = p.dataset.curation.push(edit))?;
    Ok(Curated { project, changed })
}

/// Drops the project's newest curation edit; returns it with the project as saved.
pub fn undo_curation(dir: &Path) -> Result<(CurationEdit, Project), CurateError> {
    let mut undone = None;
    let project = update_project(dir, |p| undone = p.dataset.curation.undo())?;
    let edit = undone.ok_or(CurateError::NothingToUndo)?;
    Ok((edit, project))
}

/// Refuses files the data set does not list, classes it does not have, and relabels outside
/// classification.
fn check(dir: &Path, project: &Project, edit: &CurationEdit) -> Result<(), CurateError> {
    if edit.action == CurationAction::Restore {
        let overrides = project.dataset.curation.overrides();
        for file in &edit.files {
            if !overrides.relabelled.contains_key(file) && !overrides.excluded.contains(file) {
                return Err(CurateError::NoOverride { file: file.clone() });
            }
        }
        return Ok(());
    }
    let open = OpenProject {
        dir: dir.to_owned(),
        project: project.clone(),
    };
    let source = open.dataset_source()?;
    let listing = source.list()?;
    let listed: BTreeSet<String> = listing
        .candidates
        .iter()
        .map(|c| item_id(&c.path))
        .collect();
    if let Some(file) = edit.files.iter().find(|f| !listed.contains(*f)) {
        return Err(CurateError::UnknownFile {
            file: file.clone(),
            root: source.root(),
        });
    }
    if let CurationAction::Relabel(class) = &edit.action {
        if !crate::data::targets::data_targets(project.task).class_labels() {
            return Err(CurateError::NoClassLabels {
                task: project.task.label().to_owned(),
            });
        }
        let mut classes: BTreeSet<String> = listing.folder_classes.iter().cloned().collect();
        classes.extend(listing.candidates.iter().filter_map(|c| c.label.clone()));
        if !classes.contains(class) {
            return Err(CurateError::UnknownClass {
                class: class.clone(),
                classes: classes.into_iter().collect(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{DataLocation, create_project};

    fn project_with_images() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("images");
        for (class, name) in [("cat", "a.png"), ("cat", "b.png"), ("dog", "c.png")] {
            std::fs::create_dir_all(data.join(class)).unwrap();
            image::RgbImage::new(8, 8)
                .save(data.join(class).join(name))
                .unwrap();
        }
        let project = Project {
            name: "Pets".into(),
            data: DataLocation::Path(data),
            ..Project::default()
        };
        let dir = create_project(&root.path().join("projects"), &project).unwrap();
        (root, dir)
    }

    fn edit(action: CurationAction, files: &[&str]) -> CurationEdit {
        CurationEdit {
            action,
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn edits_are_checked_against_the_listing_stored_and_undone() {
        let (_root, dir) = project_with_images();
        let relabel = edit(CurationAction::Relabel("dog".into()), &["cat/a.png"]);
        let done = curate(&dir, relabel).unwrap();
        assert!(done.changed);
        let excluded = curate(&dir, edit(CurationAction::Exclude, &["dog/c.png"])).unwrap();
        let overrides = excluded.project.dataset.curation.overrides();
        assert_eq!(overrides.describe(), "1 image relabelled, 1 image left out");
        assert_eq!(
            load_project(&dir).unwrap().dataset.curation.overrides(),
            overrides
        );
        let again = curate(&dir, edit(CurationAction::Exclude, &["dog/c.png"])).unwrap();
        assert!(!again.changed);
        for (bad, message) in [
            (
                edit(CurationAction::Relabel("horse".into()), &["cat/b.png"]),
                "no class “horse”; its classes: cat, dog",
            ),
            (
                edit(CurationAction::Exclude, &["cat/zz.png"]),
                "cat/zz.png is not an image of the data set",
            ),
            (
                edit(CurationAction::Restore, &["cat/b.png"]),
                "cat/b.png has no override",
            ),
            (edit(CurationAction::Exclude, &[]), "no file given"),
        ] {
            let error = curate(&dir, bad).unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
        }
        let (undone, project) = undo_curation(&dir).unwrap();
        assert_eq!(undone.describe(), "left out dog/c.png");
        assert!(project.dataset.curation.overrides().excluded.is_empty());
        undo_curation(&dir).unwrap();
        assert!(matches!(
            undo_curation(&dir),
            Err(CurateError::NothingToUndo)
        ));
    }
}
