//! `transfer-workbench inspect --gradcam IMAGE --out heat.png`: where a classification run
//! looked, as a class activation map blended onto the image at its own resolution.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::data::decode::load_rgb8;
use crate::inspect::gradcam::{
    CamLayer, CamMethod, CamOptions, CamTarget, class_activation_maps, to_original,
    write_blended_png,
};
use crate::project::load_project;
use crate::train::{TrainedModel, load_eval_images};

/// Options of the heatmap.
#[derive(Debug, Clone)]
pub struct GradcamRequest {
    /// The image file.
    pub image: PathBuf,
    /// The PNG to write.
    pub out: PathBuf,
    /// A class name to explain (default: the predicted class).
    pub class: Option<String>,
    /// gradcam, hirescam or gradcam++.
    pub method: String,
    /// Feature map index (fine to coarse); default: the coarsest.
    pub layer: Option<usize>,
    /// Opacity of the heatmap over the image.
    pub opacity: f32,
}

/// What `--gradcam` reports.
#[derive(Debug, Serialize)]
pub struct GradcamReport {
    /// The image explained.
    pub image: PathBuf,
    /// The class explained.
    pub class: String,
    /// Its probability.
    pub probability: f32,
    /// The hottest pixel of the map, in image pixels.
    pub peak_px: (u32, u32),
    /// The written PNG.
    pub out: PathBuf,
}

/// Computes, blends and writes the heatmap of `request.image` for `model`.
pub fn run_gradcam(
    project_dir: &Path,
    model: &mut TrainedModel,
    request: &GradcamRequest,
) -> anyhow::Result<GradcamReport> {
    let method = match request.method.as_str() {
        "gradcam" | "grad-cam" => CamMethod::GradCam,
        "hirescam" => CamMethod::HiResCam,
        "gradcam++" | "gradcampp" => CamMethod::GradCamPlusPlus,
        other => bail!("unknown method '{other}' (gradcam, hirescam or gradcam++)"),
    };
    let target = match &request.class {
        None => CamTarget::Predicted,
        Some(name) => CamTarget::Class(
            model
                .classes
                .iter()
                .position(|c| c == name)
                .with_context(|| format!("no class '{name}' (classes: {:?})", model.classes))?,
        ),
    };
    let loaded = load_eval_images(
        std::slice::from_ref(&request.image),
        project_dir,
        &model.config,
    )?;
    if let Some((_, reason)) = loaded.failed.first() {
        bail!("{reason}");
    }
    let options = CamOptions {
        target,
        layer: request.layer.map_or(CamLayer::Auto, CamLayer::Index),
        method,
    };
    let heatmap = class_activation_maps(model, &loaded.images, options)?
        .into_iter()
        .next()
        .context("no heatmap was computed")?;
    let window = load_project(project_dir)?.dataset.window;
    let image = load_rgb8(&request.image, &window)?;
    let (width_px, height_px) = image.dimensions();
    let full = to_original(
        &heatmap,
        width_px,
        height_px,
        model.config.eval_crop_fraction,
    )?;
    write_blended_png(&request.out, &image, &full, request.opacity)?;
    Ok(GradcamReport {
        image: request.image.clone(),
        class: model
            .classes
            .get(heatmap.class)
            .cloned()
            .unwrap_or_default(),
        probability: heatmap.score,
        peak_px: full.peak(),
        out: request.out.clone(),
    })
}
