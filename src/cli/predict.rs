//! `transfer-workbench predict`: a trained run's predictions for image files, one entry per
//! image (a file that cannot be read gets an entry with its error; the others are still
//! predicted). Segmentation runs report the share of each class and can write the masks;
//! detection runs can write COCO's results format (`--coco-results`, `predict_coco.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use tch::{Device, Kind};

use crate::inspect::overlay::ClassMask;
use crate::inspect::segmentation::predict_masks;
use crate::project::load_project;
use crate::train::metrics::argmax;
use crate::train::project_source::{EvalTransform, LoadedImages};
use crate::train::run::RunDir;
use crate::train::{CheckpointChoice, TrainedModel, load_eval_images};

/// Images predicted per forward pass.
const BATCH: usize = 16;

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
    let mut entries: Vec<Prediction> = args
        .images
        .iter()
        .map(|path| Prediction {
            path: path.clone(),
            label: None,
            class_index: None,
            probabilities: BTreeMap::new(),
            mask: None,
            detections: None,
            error: None,
        })
        .collect();
    if let Some(dir) = &args.masks {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let offers = crate::inspect::task::offers(model.config.task);
    if offers.boxes {
        super::predict_boxes::predict(&args, &mut model, &mut entries)?;
    } else if offers.masks {
        predict_segmentation(&args, &mut model, &mut entries)?;
    } else {
        predict_classes(&args, &mut model, &mut entries)?;
    }
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

/// Classification: each image's class probabilities and the predicted class.
fn predict_classes(
    args: &PredictArgs,
    model: &mut TrainedModel,
    entries: &mut [Prediction],
) -> anyhow::Result<()> {
    let LoadedImages {
        images,
        loaded,
        failed,
        ..
    } = load_eval_images(&args.images, &args.project, &model.config)?;
    for (path, reason) in failed {
        if let Some(entry) = entries.iter_mut().find(|e| e.path == path) {
            entry.error = Some(reason);
        }
    }
    for (chunk_no, chunk) in loaded.chunks(BATCH).enumerate() {
        let start = (chunk_no * BATCH) as i64;
        let inputs = images.f_narrow(0, start, chunk.len() as i64)?;
        let probabilities = model.probabilities(&inputs)?.f_to_device(Device::Cpu)?;
        for (row, &image_index) in chunk.iter().enumerate() {
            let p = probabilities.f_get(row as i64)?;
            let values = Vec::<f32>::try_from(p.f_to_kind(Kind::Float)?)?;
            let best = argmax(&values);
            let entry = &mut entries[image_index];
            entry.class_index = Some(best);
            entry.label = model.classes.get(best).cloned();
            entry.probabilities = model
                .classes
                .iter()
                .zip(&values)
                .map(|(c, p)| (c.clone(), f64::from(*p)))
                .collect();
        }
    }
    Ok(())
}

/// Segmentation: each image's class masks through the core's prediction (the share of
/// each class), written back at the image's own size with `--masks`.
fn predict_segmentation(
    args: &PredictArgs,
    model: &mut TrainedModel,
    entries: &mut [Prediction],
) -> anyhow::Result<()> {
    let window = load_project(&args.project)?.dataset.window;
    let transform = EvalTransform::of(&model.config, window);
    for (chunk_no, paths) in args.images.chunks(BATCH).enumerate() {
        let start = chunk_no * BATCH;
        let (masks, failed) = predict_masks(model, paths, &transform)?;
        for (offset, reason) in failed {
            entries[start + offset].error = Some(reason);
        }
        for (offset, mask) in masks {
            let entry = &mut entries[start + offset];
            let total = mask.classes.len().max(1) as f64;
            for (c, name) in model.classes.iter().enumerate() {
                let count = mask
                    .classes
                    .iter()
                    .filter(|&&v| usize::from(v) == c)
                    .count();
                entry
                    .probabilities
                    .insert(name.clone(), count as f64 / total);
            }
            if let Some(dir) = &args.masks {
                entry.mask = Some(write_mask(dir, &entry.path, mask)?);
            }
        }
    }
    Ok(())
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
