//! Data mismatch: how far the user's images are from the data a backbone was pretrained
//! on, read from its batch-norm layers. Each layer's running mean and variance are the
//! statistics of its input over the pretraining images; the same layer's input over the
//! user's images (the pretrained network as it is, in evaluation mode) gives a second pair.
//! Per channel, the symmetric Kullback-Leibler divergence of the two Gaussians, as
//! `ln(1 + d)` so that a few dead channels cannot dominate; per layer, the mean over its
//! channels; one number, the mean over the layers. Backbones without batch norm (ViT,
//! ConvNeXt: layer norm normalises each image on its own and keeps no data statistics) give
//! none: "not available".

use tch::Tensor;

use super::StudyError;
use crate::model::Backbone;
use crate::model::bn_statistics::{BnRecorder, LayerRecord};

/// Added to both variances (batch norm's own epsilon scale).
const VARIANCE_FLOOR: f64 = 1e-5;

/// The mismatch of a set of images under one backbone.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mismatch {
    /// One value per batch-norm layer, from the input end to the output end.
    pub per_layer: Vec<f64>,
    /// The mean of `per_layer`.
    pub summary: f64,
}

impl Mismatch {
    /// The summary in words, for people.
    pub fn verdict(&self) -> &'static str {
        verdict(self.summary)
    }
}

/// Below this summary the images look like the pretraining data to the network. Measured
/// under ImageNet MobileNetV2: the set-up's natural photos 0.05, Fashion-MNIST garments
/// 0.44 (EfficientNet-Lite0: 0.59), uniform noise 1.2, 16-bit nuclei microscopy tiles 2.0.
pub const CLOSE: f64 = 0.25;
/// Above this summary they are far from it.
pub const FAR: f64 = 1.0;

/// The words for a mismatch `summary`.
pub fn verdict(summary: f64) -> &'static str {
    if summary < CLOSE {
        "close to the pretraining data"
    } else if summary < FAR {
        "somewhat unlike the pretraining data"
    } else {
        "far from the pretraining data: expect fine-tuning to gain more over a linear probe"
    }
}

/// The mismatch of `batches` (normalised image batches, as the backbone's evaluation takes
/// them) under `backbone`; `None` when the backbone has no batch norm.
pub fn mismatch(
    backbone: &dyn Backbone,
    batches: impl IntoIterator<Item = Result<Tensor, StudyError>>,
) -> Result<Option<Mismatch>, StudyError> {
    let recorder = BnRecorder::start();
    for batch in batches {
        let batch = batch?;
        recorder
            .pass(|| tch::no_grad(|| backbone.forward_t(&batch, false)))
            .map_err(|e| StudyError::Invalid(e.to_string()))?;
    }
    let records = recorder.finish();
    if records.is_empty() {
        return Ok(None);
    }
    let per_layer: Vec<f64> = records.iter().map(layer_divergence).collect();
    let summary = per_layer.iter().sum::<f64>() / per_layer.len() as f64;
    Ok(Some(Mismatch { per_layer, summary }))
}

/// The mean over channels of ln(1 + symmetric KL) between the layer's running statistics
/// and what it saw.
pub fn layer_divergence(record: &LayerRecord) -> f64 {
    let (seen_mean, seen_var) = record.seen();
    let channels = seen_mean.len().max(1);
    let total: f64 = (0..seen_mean.len())
        .map(|c| {
            let (m1, v1) = (
                record.running_mean[c],
                record.running_var[c] + VARIANCE_FLOOR,
            );
            let (m2, v2) = (seen_mean[c], seen_var[c] + VARIANCE_FLOOR);
            let d2 = (m1 - m2) * (m1 - m2);
            let symmetric = (v1 + d2) / (2.0 * v2) + (v2 + d2) / (2.0 * v1) - 1.0;
            symmetric.max(0.0).ln_1p()
        })
        .sum();
    total / channels as f64
}
