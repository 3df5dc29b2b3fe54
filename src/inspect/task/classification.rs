//! Classification runs: one prediction per image, embeddings, Grad-CAM.

use super::{InspectTask, InspectorPane, Offers};
use crate::task::TaskKind;

/// The inspection side of classification.
pub struct ClassificationInspection;

impl InspectTask for ClassificationInspection {
    fn kind(&self) -> TaskKind {
        TaskKind::Classification
    }

    fn offers(&self) -> Offers {
        Offers {
            image_predictions: true,
            embeddings: true,
            masks: false,
            boxes: false,
        }
    }

    fn pane(&self) -> InspectorPane {
        InspectorPane::ImagePredictions
    }
}
