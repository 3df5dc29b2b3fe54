//! Classification data: one class name per image (its folder, or a label column).

use super::{DataTargets, EvalFit, Evidence};
use crate::data::loader::BatchTensors;
use crate::task::TaskKind;

/// The data side of classification.
pub struct ClassLabels;

impl DataTargets for ClassLabels {
    fn kind(&self) -> TaskKind {
        TaskKind::Classification
    }

    fn claims(&self, _evidence: &Evidence) -> bool {
        false
    }

    fn class_labels(&self) -> bool {
        true
    }

    fn masks(&self) -> bool {
        false
    }

    fn batch_targets(&self, tensors: &mut BatchTensors) -> Option<tch::Tensor> {
        Some(tensors.labels.shallow_clone())
    }

    fn eval_fit(&self) -> EvalFit {
        EvalFit::CentreCrop
    }
}
