//! The user's corrections of a data set, kept beside it instead of in its files: images
//! given another class and images left out. A scan's [`DatasetIndex`] is read through them
//! ([`Overrides::apply`]); the image folder is never written. A project keeps the edits
//! that make them (`crate::project::Curation`); a run freezes the overrides it trained
//! with in its config.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::scan::DatasetIndex;

/// Overrides of a data set's items, by item id (the path relative to the data root,
/// `/`-separated, as in `split.ron`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Overrides {
    /// Item id → the class it is given instead of its own (classification).
    pub relabelled: BTreeMap<String, String>,
    /// Items left out of training and evaluation.
    pub excluded: BTreeSet<String>,
}

/// What [`Overrides::apply`] did to an index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Items given another class.
    pub relabelled: usize,
    /// Items left out.
    pub excluded: usize,
    /// Overrides that name no item of the data set, or a class it does not have: the file
    /// was moved or deleted, or the class folder renamed. They are kept but do nothing.
    pub stale: Vec<String>,
}

impl Overrides {
    /// No override at all.
    pub fn is_empty(&self) -> bool {
        self.relabelled.is_empty() && self.excluded.is_empty()
    }

    /// The override count, as one line ("2 images relabelled, 1 left out").
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.relabelled.is_empty() {
            parts.push(format!("{} relabelled", images(self.relabelled.len())));
        }
        if !self.excluded.is_empty() {
            parts.push(format!("{} left out", images(self.excluded.len())));
        }
        if parts.is_empty() {
            "no overrides".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Reads `index` through the overrides: excluded items are removed, relabelled items
    /// (when the index labels items by class) get their new class. An override naming a
    /// class the index does not have is stale and changes nothing.
    pub fn apply(&self, index: &mut DatasetIndex) -> Applied {
        let mut applied = Applied::default();
        if self.is_empty() {
            return applied;
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let labelled = !index.classes.is_empty() && index.items.iter().any(|i| i.label.is_some());
        let classes = index.classes.clone();
        index.items.retain_mut(|item| {
            let id = item_id(&item.path);
            if self.excluded.contains(&id) {
                seen.insert(id);
                applied.excluded += 1;
                return false;
            }
            if let Some(class) = self.relabelled.get(&id) {
                match classes.iter().position(|c| c == class) {
                    Some(label) if labelled && item.label.is_some() => {
                        seen.insert(id);
                        item.label = Some(label);
                        applied.relabelled += 1;
                    }
                    _ => {}
                }
            }
            true
        });
        applied.stale = self
            .relabelled
            .keys()
            .chain(self.excluded.iter())
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        applied
    }
}

/// The id of an item at `path` (relative to the data root): `/`-separated.
pub fn item_id(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn images(n: usize) -> String {
    if n == 1 {
        "1 image".to_owned()
    } else {
        format!("{n} images")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scan::DatasetItem;

    fn item(path: &str, label: usize) -> DatasetItem {
        DatasetItem {
            path: path.into(),
            label: Some(label),
            group: None,
            split: None,
            mask: None,
            boxes: None,
            source_id: None,
            size_px: (8, 8),
            content_hash: path.to_owned(),
        }
    }

    fn index() -> DatasetIndex {
        DatasetIndex {
            root: "/data".into(),
            classes: vec!["cat".into(), "dog".into()],
            items: vec![
                item("cat/a.png", 0),
                item("cat/b.png", 0),
                item("dog/c.png", 1),
            ],
            mask_encoding: None,
            category_ids: None,
        }
    }

    #[test]
    fn relabels_and_excludes_by_id_and_reports_stale_overrides() {
        let overrides = Overrides {
            relabelled: [
                ("cat/b.png".to_owned(), "dog".to_owned()),
                ("dog/c.png".to_owned(), "horse".to_owned()),
                ("gone.png".to_owned(), "cat".to_owned()),
            ]
            .into(),
            excluded: ["cat/a.png".to_owned()].into(),
        };
        let mut index = index();
        let applied = overrides.apply(&mut index);
        let items: Vec<(String, Option<usize>)> = index
            .items
            .iter()
            .map(|i| (item_id(&i.path), i.label))
            .collect();
        assert_eq!(
            items,
            [
                ("cat/b.png".to_owned(), Some(1)),
                ("dog/c.png".to_owned(), Some(1))
            ]
        );
        assert_eq!((applied.relabelled, applied.excluded), (1, 1));
        assert_eq!(applied.stale, ["dog/c.png", "gone.png"]);
        assert_eq!(
            overrides.describe(),
            "3 images relabelled, 1 image left out"
        );
        assert_eq!(Overrides::default().describe(), "no overrides");
    }

    #[test]
    fn relabelling_changes_nothing_where_items_have_no_class_labels() {
        let mut index = index();
        for i in &mut index.items {
            i.label = None;
        }
        let overrides = Overrides {
            relabelled: [("cat/a.png".to_owned(), "dog".to_owned())].into(),
            excluded: BTreeSet::new(),
        };
        let applied = overrides.apply(&mut index);
        assert_eq!(applied.relabelled, 0);
        assert!(index.items.iter().all(|i| i.label.is_none()));
        assert_eq!(applied.stale, ["cat/a.png"]);
    }
}
