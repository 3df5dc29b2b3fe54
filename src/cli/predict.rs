//! `transfer-workbench predict`: a trained run's predictions for image files, one entry per
//! image (a file that cannot be read gets an entry with its error; the others are still
//! predicted). Segmentation runs report the share of each class and can write the masks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::train::project_source::LoadedImages;
use crate::train::run::RunDir;
use crate::train::{CheckpointChoice, TrainedModel, load_eval_images};

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
    /// Image files.
    #[arg(required = true)]
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
    /// Why the image could not be predicted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs `predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let id = RunDir::resolve_id(&args.project, args.run.as_deref())?;
    let mut model = TrainedModel::load(
        &args.project,
        &id,
        CheckpointChoice::BestOrLast,
        Device::cuda_if_available(),
    )?;
    let LoadedImages {
        images,
        loaded,
        failed,
    } = load_eval_images(&args.images, &args.project, &model.config)?;
    let mut entries: Vec<Prediction> = args
        .images
        .iter()
        .map(|path| Prediction {
            path: path.clone(),
            label: None,
            class_index: None,
            probabilities: BTreeMap::new(),
            mask: None,
            error: None,
        })
        .collect();
    for (path, reason) in failed {
        if let Some(entry) = entries.iter_mut().find(|e| e.path == path) {
            entry.error = Some(reason);
        }
    }
    if let Some(dir) = &args.masks {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let batch = 16;
    for (chunk_no, chunk) in loaded.chunks(batch).enumerate() {
        let start = (chunk_no * batch) as i64;
        let inputs = images.f_narrow(0, start, chunk.len() as i64)?;
        let probabilities = model.probabilities(&inputs)?.f_to_device(Device::Cpu)?;
        for (row, &image_index) in chunk.iter().enumerate() {
            let p = probabilities.f_get(row as i64)?;
            fill_entry(
                &mut entries[image_index],
                &p,
                &model.classes,
                args.masks.as_ref(),
            )?;
        }
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

/// Fills one entry from its probabilities (`[classes]` or `[classes, H, W]`).
fn fill_entry(
    entry: &mut Prediction,
    probabilities: &Tensor,
    classes: &[String],
    masks: Option<&PathBuf>,
) -> anyhow::Result<()> {
    if probabilities.dim() == 1 {
        let values = Vec::<f32>::try_from(probabilities.f_to_kind(Kind::Float)?)?;
        let best = argmax(&values);
        entry.class_index = Some(best);
        entry.label = classes.get(best).cloned();
        entry.probabilities = classes
            .iter()
            .zip(&values)
            .map(|(c, p)| (c.clone(), f64::from(*p)))
            .collect();
        return Ok(());
    }
    let predicted = probabilities.f_argmax(0, false)?.f_to_kind(Kind::Uint8)?;
    let (height, width) = (predicted.size()[0], predicted.size()[1]);
    let pixels = Vec::<u8>::try_from(predicted.f_flatten(0, -1)?)?;
    let total = pixels.len().max(1) as f64;
    for (c, name) in classes.iter().enumerate() {
        let count = pixels.iter().filter(|&&v| usize::from(v) == c).count();
        entry
            .probabilities
            .insert(name.clone(), count as f64 / total);
    }
    if let Some(dir) = masks {
        let stem = entry
            .path
            .file_stem()
            .map_or("image".into(), |s| s.to_string_lossy().into_owned());
        let out = dir.join(format!("{stem}.png"));
        let mask = image::GrayImage::from_raw(width as u32, height as u32, pixels)
            .context("mask buffer")?;
        // Back at the image's own size (the model saw it resized to the input size).
        let mask = match image::image_dimensions(&entry.path) {
            Ok((w, h)) if (w, h) != mask.dimensions() => {
                image::imageops::resize(&mask, w, h, image::imageops::FilterType::Nearest)
            }
            _ => mask,
        };
        mask.save(&out)
            .with_context(|| format!("writing {}", out.display()))?;
        entry.mask = Some(out);
    }
    Ok(())
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn describe(entry: &Prediction) -> String {
    if let Some(error) = &entry.error {
        return format!("{}: error: {error}", entry.path.display());
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
