//! Segmentation data: a mask file per image (`masks/` beside `images/`, or a mask column),
//! whose values are the classes.

use super::{DataTargets, EvalFit, Evidence};
use crate::data::loader::BatchTensors;
use crate::task::TaskKind;

/// The data side of segmentation.
pub struct Masks;

impl DataTargets for Masks {
    fn kind(&self) -> TaskKind {
        TaskKind::Segmentation
    }

    fn claims(&self, evidence: &Evidence) -> bool {
        evidence.masks
    }

    fn class_labels(&self) -> bool {
        false
    }

    fn masks(&self) -> bool {
        true
    }

    fn batch_targets(&self, tensors: &mut BatchTensors) -> Option<tch::Tensor> {
        tensors.masks.take()
    }

    fn eval_fit(&self) -> EvalFit {
        EvalFit::Stretch
    }
}
