//! The data side of a task: what its items are labelled with, how the scan recognises its
//! data, what the loader loads beside each image, and how evaluation fits an image into the
//! square input. One file per task implements [`DataTargets`]; [`data_targets`] is the
//! registry, the one place in the data layer that matches on the [`TaskKind`].

mod class_labels;
mod masks;
mod object_boxes;

use std::path::Path;

use crate::data::loader::BatchTensors;
use crate::data::source::{Candidate, DatasetSource};
use crate::task::TaskKind;

pub use class_labels::ClassLabels;
pub use masks::Masks;
pub use object_boxes::ObjectBoxes;

/// How evaluation fits an image into the square input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalFit {
    /// Resize the shorter side to `size / crop_fraction`, then crop the centre square
    /// (torchvision's ImageNet evaluation transform).
    CentreCrop,
    /// Resize to the square, whatever the aspect ratio (targets keep every pixel).
    Stretch,
}

/// What a folder or a listing shows about its labels, for recognising the task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Items come with mask files (or the folder has `images/` beside `masks/`).
    pub masks: bool,
    /// Items come with boxes (the folder is a COCO, YOLO or Pascal VOC layout).
    pub boxes: bool,
}

impl Evidence {
    /// What the layout of `data_dir` shows.
    pub fn of_folder(data_dir: &Path) -> Self {
        Self {
            masks: data_dir.join("images").is_dir() && data_dir.join("masks").is_dir(),
            boxes: crate::data::detection::detection_layout(data_dir).is_some(),
        }
    }

    /// What a listed source shows: its layout and what its candidates carry.
    pub fn of_listing(source: &DatasetSource, candidates: &[Candidate]) -> Self {
        Self {
            masks: matches!(source, DatasetSource::Segmentation { .. })
                || candidates.iter().any(|c| c.mask.is_some()),
            boxes: source.detection_format().is_some()
                || candidates.iter().any(|c| c.boxes.is_some()),
        }
    }
}

/// What the data layer needs of a task.
pub trait DataTargets: Sync {
    /// Which task this is.
    fn kind(&self) -> TaskKind;

    /// Whether data showing `evidence` is of this task (the default task claims nothing
    /// and is chosen when no other task does).
    fn claims(&self, evidence: &Evidence) -> bool;

    /// Whether an item is labelled by a class name (class folders, a label column), so the
    /// data set's classes are those names.
    fn class_labels(&self) -> bool;

    /// Whether every item has a mask file that is loaded with its image and follows the
    /// image's geometry through augmentation.
    fn masks(&self) -> bool;

    /// Whether every item has boxes that are loaded with its image and follow the image's
    /// geometry through augmentation.
    fn boxes(&self) -> bool {
        false
    }

    /// How evaluation fits an image into the square input.
    fn eval_fit(&self) -> EvalFit;

    /// Takes a batch's training targets (class indices `[N]`, masks `[N, H, W]`, padded boxes
    /// `[N, M, 6]`); `None`
    /// when the batch lacks them.
    fn batch_targets(&self, tensors: &mut BatchTensors) -> Option<tch::Tensor>;
}

/// The data side of `kind` (the registry).
pub fn data_targets(kind: TaskKind) -> &'static dyn DataTargets {
    match kind {
        TaskKind::Classification => &ClassLabels,
        TaskKind::Segmentation => &Masks,
        TaskKind::Detection => &ObjectBoxes,
    }
}

/// The task of data showing `evidence`: the first task that claims it, else the default.
pub fn detect_task(evidence: &Evidence) -> TaskKind {
    TaskKind::ALL
        .into_iter()
        .find(|kind| data_targets(*kind).claims(evidence))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_is_registered_and_detected_from_its_evidence() {
        for kind in TaskKind::ALL {
            assert_eq!(data_targets(kind).kind(), kind);
        }
        assert_eq!(detect_task(&Evidence::default()), TaskKind::default());
        assert_eq!(
            detect_task(&Evidence {
                masks: true,
                boxes: false
            }),
            TaskKind::Segmentation
        );
        assert_eq!(
            detect_task(&Evidence {
                masks: false,
                boxes: true
            }),
            TaskKind::Detection
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            detect_task(&Evidence::of_folder(dir.path())),
            TaskKind::Classification
        );
        std::fs::create_dir_all(dir.path().join("images")).unwrap();
        std::fs::create_dir_all(dir.path().join("masks")).unwrap();
        assert_eq!(
            detect_task(&Evidence::of_folder(dir.path())),
            TaskKind::Segmentation
        );
    }
}
