//! The inspection jobs of a classification run, as the GUI's tabs and the CLI run them on a
//! worker: the run's predictions, embeddings, PCA map and neighbour index on its frozen
//! validation split ([`inspect_run`]), a class-activation heatmap of one image laid over
//! its preview ([`cam_image`]), and a t-SNE map of the embeddings ([`tsne_map`]). Plain
//! data out (pixels as `RgbaImage`); the GUI turns them into textures.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use image::RgbaImage;
use tch::Device;

use super::gradcam::{CamLayer, CamMethod, CamOptions, class_activation_maps, heatmap_rgba};
use super::predictions::Predictions;
use super::{
    InspectError, NeighbourIndex, Progress, Projection, TsneOptions, inspect_split, pca, tsne,
};
use crate::data::thumbnail::render;
use crate::data::window::WindowSetting;
use crate::train::run::RunDir;
use crate::train::{CheckpointChoice, ProjectSource, Split, TrainedModel, load_eval_images};

/// Longest side of a heatmap, in pixels (as the inspector's preview images).
pub const CAM_SIDE_PX: u32 = 512;

/// A run's predictions, embeddings and PCA map on its validation split.
#[derive(Debug)]
pub struct RunInspection {
    /// Per-image predictions (ids, paths, labels, probabilities, losses).
    pub predictions: Predictions,
    /// Row-major embeddings `[len x dim]`.
    pub embeddings: Vec<f32>,
    /// Embedding width.
    pub dim: usize,
    /// The embeddings' nearest-neighbour index.
    pub neighbours: NeighbourIndex,
    /// PCA of the embeddings (one point per image).
    pub pca: Projection,
    /// Image position by sample id.
    pub index_of_id: HashMap<String, usize>,
    /// Why the outputs could not be cached (naming the file), if they could not.
    pub not_stored: Option<String>,
}

/// A heatmap's pixels and what it explains.
#[derive(Debug)]
pub struct CamImage {
    /// The coloured heatmap at the image's aspect ratio (opaque).
    pub rgba: RgbaImage,
    /// The explained class.
    pub class: usize,
    /// The model's probability of that class.
    pub score: f32,
}

/// The device inspection runs on.
fn device() -> Device {
    Device::cuda_if_available()
}

/// Inspects run `run` of the project on its frozen validation split: predictions,
/// embeddings, their PCA map and neighbour index. Progress counts images; `Ok(None)` when
/// stopped.
pub fn inspect_run(
    project: &Path,
    run: &str,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<RunInspection>, InspectError> {
    let (run_dir, config) = RunDir::open(project, run)?;
    if !super::task::offers(config.task).image_predictions {
        return Err(InspectError::Invalid(format!(
            "{run} is a {} run: predictions, embeddings and Grad-CAM are made for \
             classification runs",
            config.task.label()
        )));
    }
    let mut source = ProjectSource::open_run(project, &run_dir, &config, None)?;
    let Some(inspection) = inspect_split(
        project,
        run,
        &mut source,
        Split::Validation,
        device(),
        progress,
        stop,
    )?
    else {
        return Ok(None);
    };
    let outputs = inspection.outputs;
    let map = pca(&outputs.embeddings, outputs.dim)?;
    let neighbours = NeighbourIndex::new(&outputs.embeddings, outputs.dim)?;
    let predictions = inspection.predictions;
    let index_of_id = predictions
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i))
        .collect();
    Ok(Some(RunInspection {
        predictions,
        embeddings: outputs.embeddings,
        dim: outputs.dim,
        neighbours,
        pca: map,
        index_of_id,
        not_stored: outputs.not_stored,
    }))
}

/// A class-activation heatmap (`method`) of the predicted class for `image`, explained by
/// run `run`'s best (else last) checkpoint and mapped back onto the whole image (scaled so
/// its longer side is at most [`CAM_SIDE_PX`], as the image's preview).
pub fn cam_image(
    project: &Path,
    run: &str,
    image: &Path,
    method: CamMethod,
) -> Result<CamImage, InspectError> {
    let mut model = TrainedModel::load(project, run, CheckpointChoice::BestOrLast, device())?;
    cam_image_with(&mut model, project, image, method)
}

/// [`cam_image`] with a model already loaded (many images of one run).
pub fn cam_image_with(
    model: &mut TrainedModel,
    project: &Path,
    image: &Path,
    method: CamMethod,
) -> Result<CamImage, InspectError> {
    let loaded = load_eval_images(&[image.to_owned()], project, &model.config)?;
    if let Some((path, reason)) = loaded.failed.first() {
        return Err(InspectError::Invalid(format!(
            "could not load the image ({reason}): {}",
            path.display()
        )));
    }
    let options = CamOptions {
        method,
        layer: CamLayer::Auto,
        ..CamOptions::default()
    };
    let heatmap = class_activation_maps(model, &loaded.images, options)?
        .into_iter()
        .next()
        .ok_or_else(|| InspectError::Invalid("Grad-CAM gave no heatmap".to_owned()))?;
    // The size the preview of the image has, so the layers line up.
    let shown = render(image, &WindowSetting::Auto, CAM_SIDE_PX)?;
    let (width_px, height_px) = shown.image.dimensions();
    let whole = super::gradcam::to_original(
        &heatmap,
        width_px,
        height_px,
        model.config.eval_crop_fraction,
    )?;
    Ok(CamImage {
        rgba: heatmap_rgba(&whole, 1.0),
        class: heatmap.class,
        score: heatmap.score,
    })
}

/// A t-SNE map (500 iterations) of row-major `embeddings` `[N x dim]`; `Ok(None)` when
/// stopped.
pub fn tsne_map(
    embeddings: &[f32],
    dim: usize,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<Projection>, InspectError> {
    let options = TsneOptions {
        iterations: 500,
        ..TsneOptions::default()
    };
    tsne(embeddings, dim, &options, progress, stop)
}
