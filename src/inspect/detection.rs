//! The inspection jobs of a detection run: the predicted boxes of every image of the run's
//! frozen validation split against its annotated boxes, in the image's own pixels, with COCO's
//! box metrics over the split ([`inspect_detection`], also what `eval` prints), and the boxes
//! of any image files ([`predict_boxes`], shared with the CLI's `predict`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tch::Device;

use super::{InspectError, Progress};
use crate::data::boxes::{ObjectBox, PixelBox};
use crate::project::load_project;
use crate::train::coco_eval::{
    self, CocoEvaluation, Detection, GroundTruth, ImageMatch, match_image,
};
use crate::train::detection::{DetectedBox, TOP_K, decode, detections};
use crate::train::project_source::{EvalTransform, load_images_with};
use crate::train::{BatchSource, CheckpointChoice, ProjectSource, Split, TrainedModel};

/// Validation images predicted per forward pass.
const BATCH: usize = 8;

/// Detections below this score are not kept (COCO's metrics take the best 100 per image
/// whatever their score; this only drops the noise floor).
pub const KEEP_SCORE: f32 = 0.001;

/// The score threshold the app shows detections at by default.
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.3;

/// One detection in an image's own pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FoundBox {
    /// Class index into the run's classes.
    pub class: usize,
    pub score: f32,
    pub bbox: PixelBox,
}

/// One validation image of a detection run.
#[derive(Clone, Debug)]
pub struct DetImage {
    /// The sample id (path relative to the data root).
    pub id: String,
    /// The image file.
    pub path: PathBuf,
    /// The image's own width and height.
    pub size_px: (u32, u32),
    /// The annotated boxes.
    pub truth: Vec<ObjectBox>,
    /// The detections, best first (scores of at least [`KEEP_SCORE`]).
    pub found: Vec<FoundBox>,
}

/// A detection run's boxes and COCO metrics on its validation split.
#[derive(Debug)]
pub struct DetInspection {
    /// Class names.
    pub classes: Vec<String>,
    /// The validation images in split order (those that could be read).
    pub images: Vec<DetImage>,
    /// COCO's box metrics over `images`, in their own pixels.
    pub coco: CocoEvaluation,
    /// Why images are left out.
    pub skipped: Vec<String>,
}

/// Predicts every image of detection run `run`'s frozen validation split (or the split
/// `validation` names; best checkpoint),
/// maps each box back to its image's pixels and scores the split as COCO does. Progress
/// counts images; `stop` ends the job between batches (`Ok(None)`).
pub fn inspect_detection(
    project: &Path,
    run: &str,
    validation: Option<crate::data::split::Split>,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<DetInspection>, InspectError> {
    let mut model = TrainedModel::load(
        project,
        run,
        CheckpointChoice::BestOrLast,
        Device::cuda_if_available(),
    )?;
    if !super::task::offers(model.config.task).boxes {
        return Err(InspectError::Invalid(format!(
            "{run} is not a detection run"
        )));
    }
    let source = ProjectSource::open_run(project, &model.run, &model.config, validation)?;
    let window = load_project(project)?.dataset.window;
    let transform = EvalTransform::of(&model.config, window);
    let ids = source.sample_ids(Split::Validation);
    let total = ids.len();
    let mut images = Vec::with_capacity(total);
    let mut skipped = Vec::new();
    if source.files_left_out() > 0 {
        skipped.push(format!(
            "{} file(s) of the data set could not be read and are left out (the Dataset tab \
             lists them)",
            source.files_left_out()
        ));
    }
    progress(0, total);
    for start in (0..total).step_by(BATCH) {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let end = (start + BATCH).min(total);
        let paths: Vec<PathBuf> = (start..end)
            .map(|i| source.sample_path(Split::Validation, i).unwrap_or_default())
            .collect();
        let predicted = predict_boxes(&mut model, &paths, &transform, KEEP_SCORE)?;
        for (offset, reason) in predicted.failed {
            skipped.push(format!("{}: {reason}", ids[start + offset]));
        }
        for (offset, size_px, found) in predicted.found {
            let index = start + offset;
            let truth = source
                .sample_boxes(Split::Validation, index)
                .map(|b| b.as_ref().clone())
                .unwrap_or_default();
            images.push(DetImage {
                id: ids[index].clone(),
                path: paths[offset].clone(),
                size_px,
                truth,
                found,
            });
        }
        progress(end, total);
    }
    let coco = score_images(&images, model.classes.len())?;
    Ok(Some(DetInspection {
        classes: model.classes.clone(),
        images,
        coco,
        skipped,
    }))
}

impl DetImage {
    /// The image's boxes as the metrics take them, under image id `id`.
    pub fn metric_boxes(&self, id: u64) -> (Vec<GroundTruth>, Vec<Detection>) {
        let truths = self
            .truth
            .iter()
            .map(|t| GroundTruth::from_object_box(id, t))
            .collect();
        let found = self
            .found
            .iter()
            .map(|d| Detection {
                image: id,
                class: d.class,
                bbox_xywh: d.bbox.to_xywh().map(f64::from),
                score: f64::from(d.score),
            })
            .collect();
        (truths, found)
    }

    /// How the image fares at `iou` with the detections scored `threshold` or more.
    pub fn matched(&self, iou: f32, threshold: f32) -> ImageMatch {
        let (truths, found) = self.metric_boxes(0);
        match_image(&truths, &found, f64::from(iou), f64::from(threshold))
    }
}

/// COCO's box metrics of `images` (each image's id is its position).
pub fn score_images(images: &[DetImage], classes: usize) -> Result<CocoEvaluation, InspectError> {
    let mut truths = Vec::new();
    let mut found = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let (t, f) = image.metric_boxes(i as u64);
        truths.extend(t);
        found.extend(f);
    }
    let ids: Vec<u64> = (0..images.len() as u64).collect();
    coco_eval::evaluate(&ids, classes, &truths, &found)
        .map_err(|e| InspectError::Invalid(e.to_string()))
}

/// The boxes found in image files.
#[derive(Debug, Default)]
pub struct PredictedBoxes {
    /// `(position in the paths, the image's width and height, its detections)`.
    pub found: Vec<(usize, (u32, u32), Vec<FoundBox>)>,
    /// `(position in the paths, reason)` of the files that could not be read.
    pub failed: Vec<(usize, String)>,
}

/// The detections (score at least `min_score`, best first) of the images of `paths`, in each
/// image's own pixels.
pub fn predict_boxes(
    model: &mut TrainedModel,
    paths: &[PathBuf],
    transform: &EvalTransform,
    min_score: f32,
) -> Result<PredictedBoxes, InspectError> {
    let loaded = load_images_with(paths, transform)?;
    let failed = loaded
        .failed
        .iter()
        .map(|(path, reason)| {
            let at = paths.iter().position(|p| p == path).unwrap_or(0);
            (
                at,
                format!("could not load the image ({reason}): {}", path.display()),
            )
        })
        .collect();
    if loaded.loaded.is_empty() {
        return Ok(PredictedBoxes {
            found: Vec::new(),
            failed,
        });
    }
    let output = model.logits(&loaded.images)?;
    let decoded = tch::no_grad(|| decode(&output, TOP_K))?;
    let per_image = detections(&decoded, min_score)?;
    let size = transform.size_px as f32;
    let found = per_image
        .into_iter()
        .zip(&loaded.loaded)
        .zip(&loaded.original_px)
        .map(|((boxes, &at), &(w, h))| {
            let (sx, sy) = (w as f32 / size, h as f32 / size);
            (at, (w, h), to_image_pixels(&boxes, sx, sy, w, h))
        })
        .collect();
    Ok(PredictedBoxes { found, failed })
}

/// Detections at input size scaled by `(sx, sy)` and clipped to a `w` x `h` image.
fn to_image_pixels(boxes: &[DetectedBox], sx: f32, sy: f32, w: u32, h: u32) -> Vec<FoundBox> {
    boxes
        .iter()
        .map(|d| FoundBox {
            class: d.class,
            score: d.score,
            bbox: d.bbox.scaled(sx, sy).clipped(w as f32, h as f32),
        })
        .collect()
}
