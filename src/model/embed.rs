//! Pooled embeddings of image files, batch by batch (the retrieval use).

use std::path::PathBuf;

use tch::{Device, Kind, Tensor};

use super::{LoadedBackbone, ModelError};
use crate::data::{DataError, preprocess::prepare_center_crop};

/// Failures of an embedding job.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{} image(s) could not be read; first: {}", .0.len(), .0[0])]
    BadImages(Vec<DataError>),
}

impl From<tch::TchError> for EmbedError {
    fn from(e: tch::TchError) -> Self {
        EmbedError::Model(ModelError::Torch(e))
    }
}

/// Embeds `images` with the backbone's eval transform at its input size, `batch_size` at a
/// time. Every image is decoded first; if any cannot be read nothing is embedded and each
/// bad file is reported. Returns `[N, D]` float32 on the CPU.
pub fn embed_images(
    backbone: &LoadedBackbone,
    images: &[PathBuf],
    batch_size: usize,
    device: Device,
) -> Result<Tensor, EmbedError> {
    let info = backbone.model.info();
    let (prepared, bad): (Vec<_>, Vec<_>) = images
        .iter()
        .map(|p| prepare_center_crop(p, info.input_size_px, info.normalization))
        .partition(Result::is_ok);
    let bad: Vec<DataError> = bad.into_iter().filter_map(Result::err).collect();
    if !bad.is_empty() {
        return Err(EmbedError::BadImages(bad));
    }
    let side = i64::from(info.input_size_px);
    let mut rows = Vec::new();
    for chunk in prepared.chunks(batch_size.max(1)) {
        let data: Vec<f32> = chunk
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .flat_map(|p| p.chw.iter().copied())
            .collect();
        let batch = Tensor::f_from_slice(&data)?
            .f_view([chunk.len() as i64, 3, side, side])?
            .f_to_device(device)?;
        let out = tch::no_grad(|| backbone.model.forward_t(&batch, false))?;
        rows.push(
            out.embedding
                .f_to_kind(Kind::Float)?
                .f_to_device(Device::Cpu)?,
        );
    }
    if rows.is_empty() {
        return Ok(Tensor::f_zeros([0, 0], (Kind::Float, Device::Cpu))?);
    }
    Ok(Tensor::f_cat(&rows, 0)?)
}
