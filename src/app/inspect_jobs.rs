//! The jobs behind the inspection tabs, run on worker threads: listing a project's runs with
//! their histories, inspecting a run's validation split, Grad-CAM heatmaps and t-SNE maps.
//! Each returns plain data (or a message) for the UI thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use tch::Device;

use super::inspect::{CamChoice, CamKey, RunInspection};
use crate::data::thumbnail::render;
use crate::data::window::WindowSetting;
use crate::inspect::gradcam::{
    CamLayer, CamMethod, CamOptions, class_activation_maps, heatmap_rgba,
};
use crate::inspect::{NeighbourIndex, Progress, Projection, TsneOptions, inspect_split, pca, tsne};
use crate::train::config::{Task, TrainConfig, WeightsSpec};
use crate::train::events::DICE;
use crate::train::run::{EpochRecord, RunDir, runs_dir};
use crate::train::{CheckpointChoice, ProjectSource, Split, TrainedModel, load_eval_images};

/// Longest side of a heatmap, in pixels (as the inspector's preview images).
const CAM_SIDE_PX: u32 = 512;

/// Per-epoch validation curves of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunCurves {
    /// Epoch numbers (1-based).
    pub epochs: Vec<f64>,
    /// Validation loss per epoch.
    pub loss: Vec<f64>,
    /// Validation accuracy (classification) or Dice (segmentation) per epoch.
    pub score: Vec<f64>,
}

/// A run as the Compare tab lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run id.
    pub id: String,
    /// Backbone name.
    pub backbone: String,
    /// Training strategy (probe, finetune, staged).
    pub strategy: String,
    /// Where the initial weights came from.
    pub weights: String,
    /// Epochs asked for.
    pub epochs_planned: usize,
    /// Input size in pixels.
    pub input_size_px: u32,
    /// Whether the run segments instead of classifying.
    pub segmentation: bool,
    /// Its validation curves (empty when it has no history).
    pub curves: RunCurves,
}

impl RunSummary {
    /// "accuracy" or "Dice".
    pub fn score_name(&self) -> &'static str {
        if self.segmentation {
            "Dice"
        } else {
            "accuracy"
        }
    }

    /// The best validation score.
    pub fn best_score(&self) -> Option<f64> {
        self.curves.score.iter().copied().reduce(f64::max)
    }

    /// The last epoch's validation score.
    pub fn final_score(&self) -> Option<f64> {
        self.curves.score.last().copied()
    }

    /// The last epoch's validation loss.
    pub fn final_loss(&self) -> Option<f64> {
        self.curves.loss.last().copied()
    }
}

/// A heatmap's pixels and what it explains.
#[derive(Debug)]
pub struct CamPixels {
    /// The coloured heatmap at the image's aspect ratio (opaque).
    pub image: egui::ColorImage,
    /// The explained class.
    pub class: usize,
    /// The model's probability of that class.
    pub score: f32,
}

/// Lists the runs of the project at `project`, oldest first, with their histories.
pub fn list_runs(project: &Path) -> Result<Vec<RunSummary>, String> {
    let dir = runs_dir(project);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("could not list the runs ({e}): {}", dir.display())),
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("config.ron").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    let mut runs = Vec::new();
    for id in ids {
        let (run, config) = RunDir::open(project, &id).map_err(|e| e.to_string())?;
        let history = run.read_history().map_err(|e| e.to_string())?;
        runs.push(summary(id, &config, &history));
    }
    Ok(runs)
}

fn summary(id: String, config: &TrainConfig, history: &[EpochRecord]) -> RunSummary {
    let segmentation = matches!(config.task, Task::Segmentation { .. });
    let score = |r: &EpochRecord| {
        if segmentation {
            r.validation.extra.get(DICE).copied().unwrap_or(f64::NAN)
        } else {
            r.validation.accuracy
        }
    };
    RunSummary {
        id,
        backbone: config.backbone.clone(),
        strategy: config.strategy.label().to_owned(),
        weights: match &config.weights {
            WeightsSpec::Pretrained => "pretrained".to_owned(),
            WeightsSpec::Random => "random".to_owned(),
            WeightsSpec::File(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
        },
        epochs_planned: config.epochs,
        input_size_px: config.input_size_px,
        segmentation,
        curves: RunCurves {
            epochs: history.iter().map(|r| r.epoch as f64 + 1.0).collect(),
            loss: history.iter().map(|r| r.validation.loss).collect(),
            score: history.iter().map(score).collect(),
        },
    }
}

/// The device inspection runs on.
fn device() -> Device {
    Device::cuda_if_available()
}

/// Inspects run `run` of the project on its validation split: predictions, embeddings,
/// their PCA map and neighbour index. Progress counts images.
pub fn load_run(
    project: &Path,
    run: &str,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<RunInspection, String> {
    let (_, mut config) = RunDir::open(project, run).map_err(|e| e.to_string())?;
    if matches!(config.task, Task::Segmentation { .. }) {
        return Err(format!(
            "{run} is a segmentation run: predictions, embeddings and Grad-CAM are made for \
             classification runs"
        ));
    }
    let mut source =
        ProjectSource::open_for_training(project, &mut config).map_err(|e| e.to_string())?;
    let inspection = inspect_split(
        project,
        run,
        &mut source,
        Split::Validation,
        device(),
        progress,
        stop,
    )
    .map_err(|e| e.to_string())?
    .ok_or_else(|| "the inspection was stopped".to_owned())?;
    let outputs = inspection.outputs;
    let map = pca(&outputs.embeddings, outputs.dim).map_err(|e| e.to_string())?;
    let neighbours =
        NeighbourIndex::new(&outputs.embeddings, outputs.dim).map_err(|e| e.to_string())?;
    let predictions = inspection.predictions;
    let index_of_id: HashMap<String, usize> = predictions
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i))
        .collect();
    Ok(RunInspection {
        predictions,
        embeddings: outputs.embeddings,
        dim: outputs.dim,
        neighbours,
        pca: map,
        index_of_id,
    })
}

/// A class-activation heatmap of the predicted class for one image, mapped back onto the
/// whole image (scaled so its longer side is at most [`CAM_SIDE_PX`]).
pub fn cam(key: &CamKey) -> Result<CamPixels, String> {
    let mut model = TrainedModel::load(
        &key.project,
        &key.run,
        CheckpointChoice::BestOrLast,
        device(),
    )
    .map_err(|e| e.to_string())?;
    let paths: Vec<PathBuf> = vec![key.image.clone()];
    let loaded =
        load_eval_images(&paths, &key.project, &model.config).map_err(|e| e.to_string())?;
    if let Some((path, reason)) = loaded.failed.first() {
        return Err(format!(
            "could not load the image ({reason}): {}",
            path.display()
        ));
    }
    let method = match key.method {
        CamChoice::GradCam => CamMethod::GradCam,
        CamChoice::HiResCam => CamMethod::HiResCam,
    };
    let options = CamOptions {
        method,
        layer: CamLayer::Auto,
        ..CamOptions::default()
    };
    let heatmap = class_activation_maps(&mut model, &loaded.images, options)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| "Grad-CAM gave no heatmap".to_owned())?;
    // The size the preview of the image has, so the layers line up.
    let shown = render(&key.image, &WindowSetting::Auto, CAM_SIDE_PX).map_err(|e| e.to_string())?;
    let (width_px, height_px) = shown.image.dimensions();
    let whole = crate::inspect::gradcam::to_original(
        &heatmap,
        width_px,
        height_px,
        model.config.eval_crop_fraction,
    )
    .map_err(|e| e.to_string())?;
    let rgba = heatmap_rgba(&whole, 1.0);
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(CamPixels {
        image: egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw()),
        class: heatmap.class,
        score: heatmap.score,
    })
}

/// A t-SNE map of row-major `embeddings` `[N x dim]`; `Ok(None)` when stopped.
pub fn tsne_map(
    embeddings: &[f32],
    dim: usize,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<Projection>, String> {
    let options = TsneOptions {
        iterations: 500,
        ..TsneOptions::default()
    };
    tsne(embeddings, dim, &options, progress, stop).map_err(|e| e.to_string())
}
