//! How images outside the data set are prepared for a trained model (prediction, query by
//! example, Grad-CAM, export checks): the run's evaluation transform applied to files.

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use super::normalization_of;
use crate::data::loader::{BatchLoader, LoaderConfig, LoaderItem, Transform};
use crate::data::targets::{EvalFit, data_targets};
use crate::data::window::WindowSetting;
use crate::model::Normalization;
use crate::project::load_project;
use crate::train::TrainError;
use crate::train::config::TrainConfig;

/// How images are prepared for a trained model outside the data set (prediction, query by
/// example, export checks): the run's evaluation transform.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalTransform {
    /// Square input side.
    pub size_px: u32,
    /// The backbone's normalisation.
    pub normalization: Normalization,
    /// Window for 16-bit and DICOM images.
    pub window: WindowSetting,
    /// How the image is fitted into the square input (the task's evaluation fit).
    pub fit: EvalFit,
    /// [`EvalFit::CentreCrop`]: the centre crop's share of the resized shorter side.
    pub crop_fraction: f32,
}

impl EvalTransform {
    /// The transform of a run's `config` with the project's `window`.
    pub fn of(config: &TrainConfig, window: WindowSetting) -> Self {
        Self {
            size_px: config.input_size_px,
            normalization: normalization_of(&config.backbone),
            window,
            fit: data_targets(config.task).eval_fit(),
            crop_fraction: config.eval_crop_fraction,
        }
    }
}

/// Images loaded for a model.
#[derive(Debug)]
pub struct LoadedImages {
    /// `[N, 3, S, S]` normalised, the files that loaded, in the order given.
    pub images: Tensor,
    /// For each row of `images`, its index in the list of paths.
    pub loaded: Vec<usize>,
    /// For each row of `images`, the file's decoded width and height (EXIF orientation
    /// applied), to map predictions back to its pixels.
    pub original_px: Vec<(u32, u32)>,
    /// `(path, reason)` of each file that failed.
    pub failed: Vec<(PathBuf, String)>,
}

/// The evaluation transform of run config `config`, with the window of the project at
/// `project_dir`, applied to arbitrary image files.
pub fn load_eval_images(
    paths: &[PathBuf],
    project_dir: &Path,
    config: &TrainConfig,
) -> Result<LoadedImages, TrainError> {
    let project = load_project(project_dir)?;
    load_images_with(paths, &EvalTransform::of(config, project.dataset.window))
}

/// Applies `transform` to image files; files that fail are listed, the rest loaded.
pub fn load_images_with(
    paths: &[PathBuf],
    transform: &EvalTransform,
) -> Result<LoadedImages, TrainError> {
    let items: Vec<LoaderItem> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| LoaderItem {
            id: i.to_string(),
            path: path.clone(),
            label: 0,
            mask_path: None,
            boxes: None,
        })
        .collect();
    let config = LoaderConfig {
        window: transform.window.clone(),
        eval_crop_fraction: transform.crop_fraction,
        transform: match transform.fit {
            EvalFit::CentreCrop => Transform::Eval,
            EvalFit::Stretch => Transform::EvalResize,
        },
        ..LoaderConfig::eval(transform.size_px, 16, transform.normalization)
    };
    let loader = BatchLoader::new(items, config, None)?;
    let mut images = Vec::new();
    let mut loaded = Vec::new();
    let mut original_px = Vec::new();
    let mut failed = Vec::new();
    for batch in loader.epoch(0)? {
        failed.extend(
            batch
                .skipped
                .iter()
                .map(|s| (s.path.clone(), s.reason.clone())),
        );
        loaded.extend(batch.ids.iter().filter_map(|id| id.parse::<usize>().ok()));
        original_px.extend(batch.original_px.iter().copied());
        images.push(batch.to_tensors(Device::Cpu)?.images);
    }
    let size = i64::from(transform.size_px);
    let images = if images.is_empty() {
        Tensor::f_zeros([0, 3, size, size], (tch::Kind::Float, Device::Cpu))?
    } else {
        Tensor::f_cat(&images, 0)?
    };
    Ok(LoadedImages {
        images,
        loaded,
        original_px,
        failed,
    })
}
