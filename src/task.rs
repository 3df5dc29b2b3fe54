//! The one task discriminant: what a project's model learns to do. The project document
//! stores it, each run freezes it in its `config.ron`; every layer turns it into its own
//! implementation in one registry (see `docs/architecture.md`, "A task"). Class names and
//! counts come from the data, never from this value. Imports nothing of the crate.

use serde::{Deserialize, Deserializer, Serialize};

/// What a project's model learns to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum TaskKind {
    /// One class per image (class subfolders or a manifest).
    #[default]
    Classification,
    /// One class per pixel (images/ + masks/).
    Segmentation,
    /// Boxes around objects, each with a class (COCO JSON, YOLO txt or Pascal VOC XML).
    Detection,
}

impl TaskKind {
    /// Every task, in the order the interface lists them.
    pub const ALL: [TaskKind; 3] = [
        TaskKind::Classification,
        TaskKind::Segmentation,
        TaskKind::Detection,
    ];

    /// A short human-readable name (also the command line's name of the task).
    pub fn label(self) -> &'static str {
        match self {
            TaskKind::Classification => "classification",
            TaskKind::Segmentation => "segmentation",
            TaskKind::Detection => "detection",
        }
    }

    /// The label with a capital, as the interface's choices show it.
    pub fn title(self) -> String {
        crate::text::capitalised(self.label())
    }

    /// Further names the command line accepts (a verb: `classify`, `segment`).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            TaskKind::Classification => &["classify"],
            TaskKind::Segmentation => &["segment"],
            TaskKind::Detection => &["detect"],
        }
    }

    /// The task called `name` (its label or an alias).
    pub fn from_name(name: &str) -> Option<TaskKind> {
        Self::ALL
            .into_iter()
            .find(|task| task.label() == name || task.aliases().contains(&name))
    }

    /// Every task's label, joined for an error message ("classification, segmentation or detection").
    pub fn names() -> String {
        let labels: Vec<&str> = Self::ALL.iter().map(|t| t.label()).collect();
        match labels.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

/// Reads `Classification` and `Segmentation`, and also the form of run configs written
/// before the discriminant existed, `Segmentation(classes: N)` (the count is dropped: the
/// run's class names in `split.json` say how many classes it has).
impl<'de> Deserialize<'de> for TaskKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        enum Plain {
            Classification,
            Segmentation,
            Detection,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)] // the legacy count is read and dropped
        enum Legacy {
            Segmentation { classes: usize },
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Plain(Plain),
            Legacy(Legacy),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::Plain(Plain::Classification) => TaskKind::Classification,
            Either::Plain(Plain::Segmentation) | Either::Legacy(Legacy::Segmentation { .. }) => {
                TaskKind::Segmentation
            }
            Either::Plain(Plain::Detection) => TaskKind::Detection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        task: TaskKind,
    }

    #[test]
    fn reads_the_current_and_the_legacy_forms() {
        for (text, task) in [
            ("(task: Classification)", TaskKind::Classification),
            ("(task: Segmentation)", TaskKind::Segmentation),
            ("(task: Segmentation(classes: 2))", TaskKind::Segmentation),
            ("(task: Segmentation(classes: 5))", TaskKind::Segmentation),
            ("(task: Detection)", TaskKind::Detection),
        ] {
            assert_eq!(ron::from_str::<Holder>(text).unwrap().task, task, "{text}");
        }
        assert!(ron::from_str::<Holder>("(task: Tracking)").is_err());
        assert_eq!(
            TaskKind::names(),
            "classification, segmentation or detection"
        );
        assert_eq!(TaskKind::Segmentation.title(), "Segmentation");
        for task in TaskKind::ALL {
            assert_eq!(TaskKind::from_name(task.label()), Some(task));
            for alias in task.aliases() {
                assert_eq!(TaskKind::from_name(alias), Some(task));
            }
            let text = ron::to_string(&Holder { task }).unwrap();
            assert_eq!(ron::from_str::<Holder>(&text).unwrap().task, task);
            let json = serde_json::to_string(&Holder { task }).unwrap();
            assert_eq!(serde_json::from_str::<Holder>(&json).unwrap().task, task);
        }
        let legacy = r#"{"task":{"Segmentation":{"classes":2}}}"#;
        let back: Holder = serde_json::from_str(legacy).unwrap();
        assert_eq!(back.task, TaskKind::Segmentation);
    }
}
