//! Detection runs: predicted boxes against the ground truth, image by image.

use super::{InspectTask, InspectorPane, Offers};
use crate::task::TaskKind;

/// The inspection side of object detection.
pub struct DetectionInspection;

impl InspectTask for DetectionInspection {
    fn kind(&self) -> TaskKind {
        TaskKind::Detection
    }

    fn offers(&self) -> Offers {
        Offers {
            image_predictions: false,
            embeddings: false,
            masks: false,
            boxes: true,
        }
    }

    fn pane(&self) -> InspectorPane {
        InspectorPane::Boxes
    }

    fn run_tag(&self) -> &'static str {
        "detection"
    }
}
