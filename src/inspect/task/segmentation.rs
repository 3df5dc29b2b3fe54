//! Segmentation runs: predicted masks against the ground truth, image by image.

use super::{InspectTask, InspectorPane, Offers};
use crate::task::TaskKind;

/// The inspection side of segmentation.
pub struct SegmentationInspection;

impl InspectTask for SegmentationInspection {
    fn kind(&self) -> TaskKind {
        TaskKind::Segmentation
    }

    fn offers(&self) -> Offers {
        Offers {
            image_predictions: false,
            embeddings: false,
            masks: true,
            boxes: false,
        }
    }

    fn pane(&self) -> InspectorPane {
        InspectorPane::Masks
    }

    fn run_tag(&self) -> &'static str {
        "segmentation"
    }
}
