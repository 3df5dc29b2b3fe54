//! The project's curation: the user's relabels and exclusions as a log of edits stored in
//! `project.ron`, newest last. The overrides a new run uses are the log folded
//! ([`Curation::overrides`]); undo drops the newest edit. The image folder is never written.

use serde::{Deserialize, Serialize};

use crate::data::overrides::Overrides;

/// What one edit does to its files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CurationAction {
    /// The files get this class (classification).
    Relabel(String),
    /// The files are left out of training and evaluation.
    Exclude,
    /// The files lose their overrides: their own label, included again.
    Restore,
}

/// One user action on one or more files (a selection is one edit, undone at once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurationEdit {
    /// What is done.
    pub action: CurationAction,
    /// Item ids: paths relative to the data root, `/`-separated.
    pub files: Vec<String>,
}

impl CurationEdit {
    /// The edit as one line ("left out 3 images", "relabelled cat/a.png as dog").
    pub fn describe(&self) -> String {
        let what = match self.files.as_slice() {
            [one] => one.clone(),
            files => format!("{} images", files.len()),
        };
        match &self.action {
            CurationAction::Relabel(class) => format!("relabelled {what} as {class}"),
            CurationAction::Exclude => format!("left out {what}"),
            CurationAction::Restore => format!("restored {what}"),
        }
    }
}

/// The edit log of a project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Curation {
    /// Oldest first.
    pub edits: Vec<CurationEdit>,
}

impl Curation {
    /// The overrides the log adds up to.
    pub fn overrides(&self) -> Overrides {
        let mut overrides = Overrides::default();
        for edit in &self.edits {
            for file in &edit.files {
                match &edit.action {
                    CurationAction::Relabel(class) => {
                        overrides.relabelled.insert(file.clone(), class.clone());
                    }
                    CurationAction::Exclude => {
                        overrides.excluded.insert(file.clone());
                    }
                    CurationAction::Restore => {
                        overrides.relabelled.remove(file);
                        overrides.excluded.remove(file);
                    }
                }
            }
        }
        overrides
    }

    /// Adds an edit; `false` (and nothing added) when it would change no override.
    pub fn push(&mut self, edit: CurationEdit) -> bool {
        let before = self.overrides();
        self.edits.push(edit);
        if self.overrides() == before {
            self.edits.pop();
            return false;
        }
        true
    }

    /// Drops the newest edit and returns it.
    pub fn undo(&mut self) -> Option<CurationEdit> {
        self.edits.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(action: CurationAction, files: &[&str]) -> CurationEdit {
        CurationEdit {
            action,
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn the_log_folds_into_overrides_and_undo_steps_back() {
        let mut curation = Curation::default();
        assert!(curation.push(edit(CurationAction::Relabel("dog".into()), &["a.png"])));
        assert!(curation.push(edit(CurationAction::Exclude, &["b.png", "c.png"])));
        assert!(curation.push(edit(CurationAction::Restore, &["c.png"])));
        // Changes nothing: not logged.
        assert!(!curation.push(edit(CurationAction::Exclude, &["b.png"])));
        let overrides = curation.overrides();
        assert_eq!(
            overrides.relabelled.get("a.png").map(String::as_str),
            Some("dog")
        );
        assert_eq!(overrides.excluded.iter().collect::<Vec<_>>(), ["b.png"]);
        assert_eq!(curation.edits.len(), 3);
        assert_eq!(
            curation.undo().map(|e| e.describe()),
            Some("restored c.png".into())
        );
        assert!(curation.overrides().excluded.contains("c.png"));
        assert_eq!(curation.edits[1].describe(), "left out 2 images");
        let text = ron::ser::to_string_pretty(&curation, Default::default()).unwrap();
        assert_eq!(ron::from_str::<Curation>(&text).unwrap(), curation);
    }
}
