//! Detection data: boxes around objects, each with a class, from an annotation file (COCO
//! JSON, YOLO txt, Pascal VOC XML). The boxes follow the image's geometry through
//! augmentation and reach the loss as a padded tensor `[N, M, 6]` (see
//! [`crate::data::loader::BOX_FIELDS`]).

use super::{DataTargets, EvalFit, Evidence};
use crate::data::loader::BatchTensors;
use crate::task::TaskKind;

/// The data side of object detection.
pub struct ObjectBoxes;

impl DataTargets for ObjectBoxes {
    fn kind(&self) -> TaskKind {
        TaskKind::Detection
    }

    fn claims(&self, evidence: &Evidence) -> bool {
        evidence.boxes
    }

    fn class_labels(&self) -> bool {
        false
    }

    fn masks(&self) -> bool {
        false
    }

    fn boxes(&self) -> bool {
        true
    }

    fn batch_targets(&self, tensors: &mut BatchTensors) -> Option<tch::Tensor> {
        tensors.boxes.take()
    }

    /// The whole image resized to the square: every object stays in view, and a box maps
    /// back to the original pixels by one scale per axis.
    fn eval_fit(&self) -> EvalFit {
        EvalFit::Stretch
    }
}
