//! The inspection side of a task: what a run of it offers the Inspector, Embeddings and
//! Compare, and which Inspector pane shows it. One file per task implements
//! [`InspectTask`]; [`inspect_task`] is the registry, the one place in the inspection layer
//! that matches on the [`TaskKind`].

mod classification;
mod detection;
mod segmentation;

use crate::task::TaskKind;

pub use classification::ClassificationInspection;
pub use detection::DetectionInspection;
pub use segmentation::SegmentationInspection;

/// The views a run of a task can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offers {
    /// One prediction per image: the confusion matrix, per-image probabilities, Grad-CAM,
    /// and Compare's agreement between runs.
    pub image_predictions: bool,
    /// Pooled embeddings: maps (PCA, t-SNE) and nearest neighbours.
    pub embeddings: bool,
    /// Per-pixel masks against the ground truth: overlays and per-image Dice.
    pub masks: bool,
    /// Boxes against the ground truth: true and false positives, misses, per-image AP.
    pub boxes: bool,
}

/// The Inspector pane that shows a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectorPane {
    /// Predictions per image (`ui/inspector.rs`).
    ImagePredictions,
    /// Masks per image (`ui/inspector_seg.rs`).
    Masks,
    /// Boxes per image (`ui/inspector_det.rs`).
    Boxes,
}

/// What the inspection layer and the views need of a task.
pub trait InspectTask: Sync {
    /// Which task this is.
    fn kind(&self) -> TaskKind;

    /// The views its runs can fill.
    fn offers(&self) -> Offers;

    /// The Inspector pane of its runs.
    fn pane(&self) -> InspectorPane;

    /// The task's word in run pickers ("segmentation"); empty for classification, the default.
    fn run_tag(&self) -> &'static str {
        ""
    }
}

/// The inspection side of `kind` (the registry).
pub fn inspect_task(kind: TaskKind) -> &'static dyn InspectTask {
    match kind {
        TaskKind::Classification => &ClassificationInspection,
        TaskKind::Segmentation => &SegmentationInspection,
        TaskKind::Detection => &DetectionInspection,
    }
}

/// The views a run of `kind` can fill.
pub fn offers(kind: TaskKind) -> Offers {
    inspect_task(kind).offers()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_is_registered_and_offers_a_view() {
        for kind in TaskKind::ALL {
            let task = inspect_task(kind);
            assert_eq!(task.kind(), kind);
            let offers = task.offers();
            assert!(
                offers.image_predictions || offers.masks || offers.boxes,
                "{kind:?} offers no pane"
            );
            let pane_fits = match task.pane() {
                InspectorPane::ImagePredictions => offers.image_predictions,
                InspectorPane::Masks => offers.masks,
                InspectorPane::Boxes => offers.boxes,
            };
            assert!(pane_fits, "{kind:?}'s pane shows what it does not offer");
        }
    }
}
