//! ImageNet-1k classification with a backbone's shipped head: the first end-to-end path
//! through the stack (`transfer-workbench imagenet-classify`).

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::{ModelError, WeightsChoice, load_backbone};
use crate::data::{DataError, preprocess::prepare_center_crop};

/// One of an image's top classes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClassScore {
    /// ImageNet class index.
    pub index: i64,
    /// Human-readable class name.
    pub name: String,
    /// Softmax probability.
    pub probability: f32,
}

/// The result for one input image.
#[derive(Debug, serde::Serialize)]
pub struct ImageClassification {
    /// The image file.
    pub path: PathBuf,
    /// Top classes, most probable first; empty when the image could not be read.
    pub top: Vec<ClassScore>,
    /// Why the image could not be classified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Failures of a classification job as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("could not read any of the images; first: {0}")]
    NoImages(DataError),
}

impl From<tch::TchError> for ClassifyError {
    fn from(e: tch::TchError) -> Self {
        ClassifyError::Model(ModelError::Torch(e))
    }
}

/// Classifies image files with a pretrained backbone's ImageNet head, `top_k` classes each.
/// An unreadable image gets its error in its entry; the others are still classified.
pub fn classify_images(
    backbone: &str,
    images: &[PathBuf],
    top_k: usize,
    device: Device,
) -> Result<Vec<ImageClassification>, ClassifyError> {
    let loaded = super::with_init_lock(None, || {
        load_backbone(backbone, true, &WeightsChoice::Pretrained, device)
    })?;
    let model = loaded.model;
    let info = model.info().clone();
    let names = crate::assets::imagenet_class_names().map_err(ModelError::from)?;

    let prepared: Vec<_> = images
        .iter()
        .map(|p| prepare_center_crop(p, info.input_size_px, info.normalization))
        .collect();
    let good: Vec<&[f32]> = prepared
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|p| p.chw.as_slice()))
        .collect();
    if good.is_empty() {
        if let Some(Err(first)) = prepared.into_iter().next() {
            return Err(ClassifyError::NoImages(first));
        }
        return Ok(Vec::new());
    }
    let side = i64::from(info.input_size_px);
    let batch = Tensor::f_from_slice(&good.concat())?
        .f_view([good.len() as i64, 3, side, side])?
        .f_to_device(device)?;
    let probabilities = tch::no_grad(|| -> Result<Tensor, ClassifyError> {
        let out = model.forward_t(&batch, false)?;
        let logits = out
            .logits
            .ok_or_else(|| ModelError::NoPretrained(backbone.to_owned()))?;
        Ok(logits
            .f_softmax(-1, Kind::Float)?
            .f_to_device(Device::Cpu)?)
    })?;

    let mut row = 0i64;
    let mut results = Vec::with_capacity(images.len());
    for (path, prep) in images.iter().zip(prepared) {
        match prep {
            Ok(_) => {
                results.push(ImageClassification {
                    path: path.clone(),
                    top: top_classes(&probabilities.f_get(row)?, top_k, &names)?,
                    error: None,
                });
                row += 1;
            }
            Err(err) => results.push(ImageClassification {
                path: path.clone(),
                top: Vec::new(),
                error: Some(err.to_string()),
            }),
        }
    }
    Ok(results)
}

fn top_classes(
    probabilities: &Tensor,
    k: usize,
    names: &[String],
) -> Result<Vec<ClassScore>, tch::TchError> {
    let k = k.min(names.len()).max(1) as i64;
    let (values, indices) = probabilities.f_topk(k, -1, true, true)?;
    let values = Vec::<f32>::try_from(&values)?;
    let indices = Vec::<i64>::try_from(&indices)?;
    Ok(indices
        .into_iter()
        .zip(values)
        .map(|(index, probability)| ClassScore {
            index,
            name: names
                .get(index as usize)
                .cloned()
                .unwrap_or_else(|| format!("class {index}")),
            probability,
        })
        .collect())
}

/// The shipped sample photos (`chelsea.png`, a cat; `coffee.png`, an espresso).
pub fn sample_photo(name: &str) -> Result<PathBuf, crate::assets::AssetError> {
    crate::assets::require(Path::new("samples/photos").join(name), "a sample photo")
}
