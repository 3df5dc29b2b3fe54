//! `transfer-workbench predict`: a trained run's predictions for image files, one entry per
//! image (a file that cannot be read gets an entry with its error; the others are still
//! predicted). Segmentation runs report the share of each class and can write the masks;
//! detection runs can write COCO's results format (`--coco-results`, `predict_coco.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use tch::Device;

use super::predict_boxes::DetectionEntry;
use crate::inspect::detection::DEFAULT_SCORE_THRESHOLD;
use crate::inspect::overlay::ClassMask;
use crate::inspect::try_images::{Tried, TriedFile, predict_files};
use crate::train::metrics::argmax;
use crate::train::run::RunDir;
use crate::train::{CheckpointChoice, TrainedModel};

/// Options of `predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The project folder.
    pub project: PathBuf,
    /// The run (default: the newest).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Print JSON (an array with one object per image).
    #[arg(long)]
    pub json: bool,
    /// Segmentation: write each predicted mask (class index per pixel, PNG, at the image's
    /// own size) into this folder.
    #[arg(long, value_name = "DIR")]
    pub masks: Option<PathBuf>,
    /// Detection: the lowest score of a box that is reported (default 0.3).
    #[arg(long, value_name = "T")]
    pub threshold: Option<f32>,
    /// Detection: write the boxes in COCO's results format (`image_id`, `category_id`,
    /// `bbox` [x, y, w, h], `score`; every score of at least 0.001, at most 100 per image)
    /// with the data set's own COCO ids, into this file. Without images, the run's
    /// validation split is predicted.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["masks", "threshold"])]
    pub coco_results: Option<PathBuf>,
    /// Image files.
    #[arg(required_unless_present = "coco_results")]
    pub images: Vec<PathBuf>,
}

/// One image's prediction.
#[derive(Debug, Serialize)]
pub struct Prediction {
    /// The image file as given.
    pub path: PathBuf,
    /// The predicted class (classification) or `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Class index of `label`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_index: Option<usize>,
    /// Probability per class name (classification), or share of pixels per class
    /// (segmentation).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub probabilities: BTreeMap<String, f64>,
    /// The mask written for this image (segmentation with `--masks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<PathBuf>,
    /// The boxes found (detection), best first, in the image's own pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detections: Option<Vec<super::predict_boxes::DetectionEntry>>,
    /// Why the image could not be predicted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs `predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.coco_results {
        return super::predict_coco::run(&args, out);
    }
    let id = RunDir::resolve_id(&args.project, args.run.as_deref())?;
    let mut model = TrainedModel::load(
        &args.project,
        &id,
        CheckpointChoice::BestOrLast,
        Device::cuda_if_available(),
    )?;
    if let Some(dir) = &args.masks {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let threshold = args.threshold.unwrap_or(DEFAULT_SCORE_THRESHOLD);
    let tried = predict_files(&args.project, &mut model, &args.images, threshold)?;
    let entries = tried
        .into_iter()
        .map(|file| entry(file, &model.classes, args.masks.as_deref()))
        .collect::<anyhow::Result<Vec<Prediction>>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        for entry in &entries {
            println!("{}", describe(entry));
        }
    }
    if entries.iter().all(|e| e.error.is_some()) {
        bail!("no image could be predicted");
    }
    Ok(())
}

/// The entry of one file: its class and probabilities, its pixel shares (and the mask
/// written into `masks`), or its boxes.
fn entry(file: TriedFile, classes: &[String], masks: Option<&Path>) -> anyhow::Result<Prediction> {
    let mut entry = Prediction {
        path: file.path,
        label: None,
        class_index: None,
        probabilities: BTreeMap::new(),
        mask: None,
        detections: None,
        error: None,
    };
    let tried = match file.result {
        Ok(tried) => tried,
        Err(reason) => {
            entry.error = Some(reason);
            return Ok(entry);
        }
    };
    entry.probabilities = tried.ranked(classes).into_iter().collect();
    match tried {
        Tried::Classes(p) => {
            let best = argmax(&p);
            entry.class_index = Some(best);
            entry.label = classes.get(best).cloned();
        }
        Tried::Mask(mask) => {
            if let Some(dir) = masks {
                entry.mask = Some(write_mask(dir, &entry.path, mask)?);
            }
        }
        Tried::Boxes(found) => {
            entry.detections = Some(
                found
                    .iter()
                    .map(|f| DetectionEntry {
                        label: classes
                            .get(f.class)
                            .cloned()
                            .unwrap_or_else(|| format!("class {}", f.class)),
                        score: f.score,
                        bbox: [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1],
                    })
                    .collect(),
            );
        }
    }
    Ok(entry)
}

/// Writes a predicted mask (class index per pixel) as `<dir>/<image stem>.png` at the
/// image's own size (the model saw it resized to the input size).
fn write_mask(dir: &Path, image_path: &Path, mask: ClassMask) -> anyhow::Result<PathBuf> {
    let stem = image_path
        .file_stem()
        .map_or("image".into(), |s| s.to_string_lossy().into_owned());
    let out = dir.join(format!("{stem}.png"));
    let mask = match image::image_dimensions(image_path) {
        Ok((w, h)) if (w, h) != (mask.width_px, mask.height_px) => mask.resized(w, h),
        _ => mask,
    };
    let gray = image::GrayImage::from_raw(mask.width_px, mask.height_px, mask.classes)
        .context("mask buffer")?;
    gray.save(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

fn describe(entry: &Prediction) -> String {
    if let Some(error) = &entry.error {
        return format!("{}: error: {error}", entry.path.display());
    }
    if let Some(found) = &entry.detections {
        return super::predict_boxes::describe(&entry.path, found);
    }
    let mut ranked: Vec<(&String, &f64)> = entry.probabilities.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(a.1));
    let top: Vec<String> = ranked
        .iter()
        .take(3)
        .map(|(c, p)| format!("{c} {:.1}%", *p * 100.0))
        .collect();
    match &entry.label {
        Some(label) => format!("{}: {label} ({})", entry.path.display(), top.join(", ")),
        None => format!("{}: {}", entry.path.display(), top.join(", ")),
    }
}
