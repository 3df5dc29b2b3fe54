//! `predict` for detection runs: each image's boxes with class names and scores, in the
//! image's own pixels (`x0, y0, x1, y1`).

use std::path::Path;

use serde::Serialize;

use super::predict::{PredictArgs, Prediction};
use crate::inspect::detection::{DEFAULT_SCORE_THRESHOLD, predict_boxes};
use crate::project::load_project;
use crate::train::TrainedModel;
use crate::train::project_source::EvalTransform;

/// Images predicted per forward pass.
const BATCH: usize = 16;

/// One box of `predict --json`.
#[derive(Debug, Serialize)]
pub struct DetectionEntry {
    /// The class name.
    pub label: String,
    /// The detector's confidence in [0, 1].
    pub score: f32,
    /// `[x0, y0, x1, y1]` in the image's own pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// Fills each entry with the boxes found at or above the threshold.
pub fn predict(
    args: &PredictArgs,
    model: &mut TrainedModel,
    entries: &mut [Prediction],
) -> anyhow::Result<()> {
    let threshold = args.threshold.unwrap_or(DEFAULT_SCORE_THRESHOLD);
    let window = load_project(&args.project)?.dataset.window;
    let transform = EvalTransform::of(&model.config, window);
    for (chunk_no, paths) in args.images.chunks(BATCH).enumerate() {
        let start = chunk_no * BATCH;
        let predicted = predict_boxes(model, paths, &transform, threshold)?;
        for (offset, reason) in predicted.failed {
            entries[start + offset].error = Some(reason);
        }
        for (offset, _, found) in predicted.found {
            let boxes = found
                .iter()
                .map(|f| DetectionEntry {
                    label: model
                        .classes
                        .get(f.class)
                        .cloned()
                        .unwrap_or_else(|| format!("class {}", f.class)),
                    score: f.score,
                    bbox: [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1],
                })
                .collect();
            entries[start + offset].detections = Some(boxes);
        }
    }
    Ok(())
}

/// One line per image: its boxes as `label score @ x0,y0,x1,y1`.
pub fn describe(path: &Path, found: &[DetectionEntry]) -> String {
    if found.is_empty() {
        return format!("{}: no object found", path.display());
    }
    let boxes: Vec<String> = found
        .iter()
        .map(|d| {
            format!(
                "{} {:.2} @ {:.0},{:.0},{:.0},{:.0}",
                d.label, d.score, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
            )
        })
        .collect();
    format!("{}: {}", path.display(), boxes.join("; "))
}
