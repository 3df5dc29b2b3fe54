//! The inspection jobs of a segmentation run, as the GUI runs them on a worker: the
//! predicted and true class masks of every image of the run's frozen validation split with
//! their Dice ([`inspect_segmentation`]), and the class masks of any image files
//! ([`predict_masks`], shared with the CLI's `predict`). Plain data out; the GUI draws the
//! overlay layers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Device, Kind};

use super::overlay::{ClassMask, DiceScores, IGNORE_CLASS, dice};
use super::{InspectError, Progress};
use crate::data::decode::{load_mask, load_mask_with};
use crate::data::mask::MaskEncoding;
use crate::data::thumbnail::shrunk_size;
use crate::project::load_project;
use crate::train::project_source::{EvalTransform, load_images_with};
use crate::train::{BatchSource, CheckpointChoice, ProjectSource, Split, TrainedModel};

/// Longest side of the masks kept for display, in pixels (as the inspector's previews).
pub const MASK_SIDE_PX: u32 = 512;

/// Validation images predicted per forward pass.
const BATCH: usize = 8;

/// One validation image of a segmentation run.
#[derive(Clone, Debug)]
pub struct SegImage {
    /// The sample id (path relative to the data root).
    pub id: String,
    /// The image file.
    pub path: PathBuf,
    /// The image's own width and height.
    pub size_px: (u32, u32),
    /// Predicted classes at display size (longer side at most [`MASK_SIDE_PX`]).
    pub predicted: ClassMask,
    /// True classes at display size.
    pub truth: ClassMask,
    /// Dice of the prediction against the truth at the image's own size.
    pub dice: DiceScores,
}

/// A segmentation run's masks and Dice on its validation split.
#[derive(Debug)]
pub struct SegInspection {
    /// Class names, background first.
    pub classes: Vec<String>,
    /// The validation images in split order (those that could be read).
    pub images: Vec<SegImage>,
    /// Why images are left out: the data set's unreadable files (a count), and `id: reason`
    /// of each validation image whose image or mask failed after the scan.
    pub skipped: Vec<String>,
}

impl SegInspection {
    /// Whether the run has one foreground class.
    pub fn binary(&self) -> bool {
        self.classes.len() <= 2
    }

    /// The headline Dice of image `index`: the foreground Dice for a binary run, the mean
    /// over foreground classes otherwise; `None` when neither mask has foreground.
    pub fn score(&self, index: usize) -> Option<f64> {
        let dice = &self.images.get(index)?.dice;
        if self.binary() {
            dice.foreground
        } else {
            dice.mean_foreground()
        }
    }

    /// Image indices, lowest Dice first (images without foreground in either mask last).
    pub fn worst_first(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.images.len()).collect();
        order.sort_by(|&a, &b| {
            let key = |i| self.score(i).unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        order
    }

    /// The mean headline Dice over images that have one.
    pub fn mean_score(&self) -> Option<f64> {
        let scores: Vec<f64> = (0..self.images.len())
            .filter_map(|i| self.score(i))
            .collect();
        (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
    }
}

/// Predicts every image of segmentation run `run`'s frozen validation split (its evaluation
/// transform, the best checkpoint), maps each predicted mask back to its image's size and
/// scores it against the ground truth. Progress counts images; `stop` ends the job between
/// batches (`Ok(None)`).
pub fn inspect_segmentation(
    project: &Path,
    run: &str,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<SegInspection>, InspectError> {
    let mut model = TrainedModel::load(
        project,
        run,
        CheckpointChoice::BestOrLast,
        Device::cuda_if_available(),
    )?;
    if !super::task::offers(model.config.task).masks {
        return Err(InspectError::Invalid(format!(
            "{run} is not a segmentation run"
        )));
    }
    let source = ProjectSource::open_run(project, &model.run, &model.config, None)?;
    let encoding = source.index().mask_encoding;
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
        let (predicted, failed) = predict_masks(&mut model, &paths, &transform)?;
        for (offset, reason) in failed {
            skipped.push(format!("{}: {reason}", ids[start + offset]));
        }
        for (offset, at_input) in predicted {
            let index = start + offset;
            let scored = match source.sample_mask_path(Split::Validation, index) {
                Some(mask_path) => scored_image(
                    ids[index].clone(),
                    paths[offset].clone(),
                    &mask_path,
                    encoding,
                    at_input,
                    model.classes.len(),
                ),
                None => Err(InspectError::Invalid("it has no mask".to_owned())),
            };
            match scored {
                Ok(image) => images.push(image),
                Err(reason) => skipped.push(format!("{}: {reason}", ids[index])),
            }
        }
        progress(end, total);
    }
    Ok(Some(SegInspection {
        classes: model.classes.clone(),
        images,
        skipped,
    }))
}

/// The argmax class masks at the model's input size of the images of `paths` that load,
/// each with its position in `paths`, and `(position, reason)` of those that do not.
#[allow(clippy::type_complexity)] // Two plain lists.
pub fn predict_masks(
    model: &mut TrainedModel,
    paths: &[PathBuf],
    transform: &EvalTransform,
) -> Result<(Vec<(usize, ClassMask)>, Vec<(usize, String)>), InspectError> {
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
        return Ok((Vec::new(), failed));
    }
    let probabilities = model.probabilities(&loaded.images)?;
    let classes = probabilities
        .f_argmax(1, false)?
        .f_to_kind(Kind::Uint8)?
        .f_to_device(Device::Cpu)?;
    let size = classes.size();
    let [count, height, width] = size[..] else {
        return Err(InspectError::Invalid(format!(
            "the model gave masks of shape {size:?}"
        )));
    };
    let values = Vec::<u8>::try_from(classes.f_flatten(0, -1)?)?;
    let plane = (height * width) as usize;
    let masks = (0..count as usize)
        .map(|i| {
            let pixels = values[i * plane..(i + 1) * plane].to_vec();
            let mask = ClassMask::new(width as u32, height as u32, pixels)?;
            Ok((loaded.loaded[i], mask))
        })
        .collect::<Result<Vec<_>, InspectError>>()?;
    Ok((masks, failed))
}

/// One image's masks and Dice: the prediction at input size is brought to the mask's size
/// (nearest), scored, then both masks are shrunk for display.
fn scored_image(
    id: String,
    path: PathBuf,
    mask_path: &Path,
    encoding: Option<MaskEncoding>,
    at_input: ClassMask,
    classes: usize,
) -> Result<SegImage, InspectError> {
    let truth = match encoding {
        Some(encoding) => load_mask_with(mask_path, encoding),
        None => load_mask(mask_path),
    }?;
    let (width_px, height_px) = truth.dimensions();
    let truth = ClassMask::new(width_px, height_px, truth.into_raw())?;
    let predicted = at_input.resized(width_px, height_px);
    // Mask values beyond the run's classes are still counted (as classes of their own).
    let largest = predicted
        .classes
        .iter()
        .chain(truth.classes.iter().filter(|&&c| c != IGNORE_CLASS))
        .copied()
        .max()
        .unwrap_or(0);
    let classes = classes.max(usize::from(largest) + 1);
    let dice = dice(&predicted, &truth, classes)?;
    let (shown_w, shown_h) = shrunk_size(width_px, height_px, MASK_SIDE_PX);
    Ok(SegImage {
        id,
        path,
        size_px: (width_px, height_px),
        predicted: predicted.resized(shown_w, shown_h),
        truth: truth.resized(shown_w, shown_h),
        dice,
    })
}

/// A 2 x 2 image with `predicted` and `truth` classes, scored over 3 classes (tests).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_image(id: &str, predicted: &[u8], truth: &[u8]) -> SegImage {
    let predicted = ClassMask::new(2, 2, predicted.to_vec()).unwrap();
    let truth = ClassMask::new(2, 2, truth.to_vec()).unwrap();
    let scores = dice(&predicted, &truth, 3).unwrap();
    SegImage {
        id: id.to_owned(),
        path: PathBuf::from(id),
        size_px: (2, 2),
        predicted,
        truth,
        dice: scores,
    }
}

#[cfg(test)]
mod tests {
    use super::test_image as image;
    use super::*;

    #[test]
    fn worst_first_orders_by_dice_and_puts_empty_images_last() {
        let run = SegInspection {
            classes: vec!["background".into(), "foreground".into()],
            images: vec![
                image("perfect", &[1, 1, 0, 0], &[1, 1, 0, 0]),
                image("empty", &[0, 0, 0, 0], &[0, 0, 0, 0]),
                image("half", &[1, 0, 0, 0], &[1, 1, 0, 0]),
                image("missed", &[0, 0, 0, 0], &[1, 0, 0, 0]),
            ],
            skipped: Vec::new(),
        };
        assert_eq!(run.score(2), Some(2.0 / 3.0));
        assert_eq!(run.score(1), None);
        assert_eq!(run.worst_first(), vec![3, 2, 0, 1]);
        let mean = run.mean_score().unwrap();
        assert!((mean - (1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // Multi-class runs score by the mean over foreground classes.
        let multi = SegInspection {
            classes: vec!["background".into(), "a".into(), "b".into()],
            images: vec![image("two", &[1, 2, 0, 0], &[1, 1, 0, 0])],
            skipped: Vec::new(),
        };
        assert_eq!(multi.score(0), Some((2.0 / 3.0 + 0.0) / 2.0));
    }
}
