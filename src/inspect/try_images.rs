//! A trained run's predictions for image files from anywhere, not only the project's data
//! (the window's "Try it" and the `predict` command): class probabilities, boxes or a class
//! mask per file, and an error for a file that cannot be read while the others are still
//! predicted. Nothing is written into the project or next to the images.

use std::path::{Path, PathBuf};

use tch::{Device, Kind};

use super::InspectError;
use super::detection::{FoundBox, predict_boxes};
use super::overlay::ClassMask;
use super::segmentation::predict_masks;
use crate::project::load_project;
use crate::train::project_source::{EvalTransform, LoadedImages};
use crate::train::{TrainedModel, load_eval_images};

/// Images predicted per forward pass.
const BATCH: usize = 16;

/// What the run says about one image.
#[derive(Clone, Debug)]
pub enum Tried {
    /// The probability of each class, in the run's class order.
    Classes(Vec<f32>),
    /// The boxes found at or above the score threshold, best first, in the image's pixels.
    Boxes(Vec<FoundBox>),
    /// The class of each pixel, at the model's input size.
    Mask(ClassMask),
}

/// One file and what became of it.
#[derive(Clone, Debug)]
pub struct TriedFile {
    /// The file as given.
    pub path: PathBuf,
    /// The prediction, or why the file could not be predicted.
    pub result: Result<Tried, String>,
}

/// Predicts every file of `paths` with `model` (a run of the project at `project`, whose
/// intensity window applies); `min_score` is the lowest score of a reported box.
pub fn predict_files(
    project: &Path,
    model: &mut TrainedModel,
    paths: &[PathBuf],
    min_score: f32,
) -> Result<Vec<TriedFile>, InspectError> {
    let window = load_project(project)?.dataset.window;
    let transform = EvalTransform::of(&model.config, window);
    let offers = super::task::offers(model.config.task);
    let mut results: Vec<Option<Result<Tried, String>>> = vec![None; paths.len()];
    for (chunk_no, chunk) in paths.chunks(BATCH).enumerate() {
        let start = chunk_no * BATCH;
        let mut put = |offset: usize, result| {
            if let Some(slot) = results.get_mut(start + offset) {
                *slot = Some(result);
            }
        };
        if offers.boxes {
            let predicted = predict_boxes(model, chunk, &transform, min_score)?;
            for (offset, reason) in predicted.failed {
                put(offset, Err(reason));
            }
            for (offset, _, found) in predicted.found {
                put(offset, Ok(Tried::Boxes(found)));
            }
        } else if offers.masks {
            let (masks, failed) = predict_masks(model, chunk, &transform)?;
            for (offset, reason) in failed {
                put(offset, Err(reason));
            }
            for (offset, mask) in masks {
                put(offset, Ok(Tried::Mask(mask)));
            }
        } else {
            for (offset, result) in classify(project, model, chunk)? {
                put(offset, result);
            }
        }
    }
    Ok(paths
        .iter()
        .zip(results)
        .map(|(path, result)| TriedFile {
            path: path.clone(),
            result: result.unwrap_or_else(|| Err("the image was not predicted".to_owned())),
        })
        .collect())
}

/// A file's position in the list given, and its prediction or error.
type Placed = (usize, Result<Tried, String>);

/// Class probabilities of each file of `paths`, by position.
fn classify(
    project: &Path,
    model: &mut TrainedModel,
    paths: &[PathBuf],
) -> Result<Vec<Placed>, InspectError> {
    let LoadedImages {
        images,
        loaded,
        failed,
        ..
    } = load_eval_images(paths, project, &model.config)?;
    let mut out: Vec<Placed> = failed
        .into_iter()
        .map(|(path, reason)| {
            let at = paths.iter().position(|p| *p == path).unwrap_or(0);
            (at, Err(reason))
        })
        .collect();
    if loaded.is_empty() {
        return Ok(out);
    }
    let probabilities = model.probabilities(&images)?.f_to_device(Device::Cpu)?;
    for (row, at) in loaded.into_iter().enumerate() {
        let p = probabilities.f_get(row as i64)?.f_to_kind(Kind::Float)?;
        out.push((at, Ok(Tried::Classes(Vec::<f32>::try_from(p)?))));
    }
    Ok(out)
}

impl Tried {
    /// The classes from most to least likely with their probabilities (classification), or
    /// the share of pixels of each class (segmentation), largest first; empty for boxes.
    pub fn ranked(&self, classes: &[String]) -> Vec<(String, f64)> {
        let mut ranked: Vec<(String, f64)> = match self {
            Tried::Classes(p) => classes
                .iter()
                .zip(p)
                .map(|(c, p)| (c.clone(), f64::from(*p)))
                .collect(),
            Tried::Mask(mask) => {
                let total = mask.classes.len().max(1) as f64;
                classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let n = mask
                            .classes
                            .iter()
                            .filter(|&&v| usize::from(v) == i)
                            .count();
                        (c.clone(), n as f64 / total)
                    })
                    .collect()
            }
            Tried::Boxes(_) => Vec::new(),
        };
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }
}
