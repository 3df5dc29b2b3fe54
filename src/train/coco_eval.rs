//! Placeholder for COCO bbox evaluation (replaced by the full implementation on merge).

/// One ground-truth box.
#[derive(Clone, Debug, PartialEq)]
pub struct GroundTruth {
    pub image: u64,
    pub class: usize,
    pub bbox_xywh: [f64; 4],
    pub area: f64,
    pub crowd: bool,
}

/// One detection.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub image: u64,
    pub class: usize,
    pub bbox_xywh: [f64; 4],
    pub score: f64,
}

/// The result.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoEvaluation {
    pub stats: [f64; 12],
    pub per_class_ap: Vec<Option<f64>>,
    pub per_class_ap50: Vec<Option<f64>>,
}

/// Placeholder error.
#[derive(Debug, thiserror::Error)]
#[error("placeholder")]
pub struct CocoEvalError;

/// Placeholder.
pub fn evaluate(
    _image_ids: &[u64],
    num_classes: usize,
    _gts: &[GroundTruth],
    _dets: &[Detection],
) -> Result<CocoEvaluation, CocoEvalError> {
    Ok(CocoEvaluation {
        stats: [0.0; 12],
        per_class_ap: vec![None; num_classes],
        per_class_ap50: vec![None; num_classes],
    })
}
