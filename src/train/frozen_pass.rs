//! The frozen backbone's pass over one split: what the linear probe (and detection on a
//! frozen backbone) trains on, and what a backbone study scores before any training. Read
//! from the embedding cache ([`super::cache`]) when it holds the split, else computed batch
//! by batch (image-level heads in bfloat16 where the CPU has it natively) and stored, so a
//! study's scores and a later probe run share one computation.

use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::TrainError;
use super::cache::{CachedEmbeddings, cache_key, load_or_compute};
use super::classifier::channels_last;
use super::config::TrainConfig;
use super::net::Net;
use super::sampler::fixed_plan;
use super::source::{BatchSource, Split};
use crate::model::Backbone;

/// The most memory the cached frozen-backbone output of one split may take.
const MAX_CACHE_BYTES: f64 = 4e9;

/// One network's frozen passes, split by split.
pub struct FrozenPass<'a> {
    config: &'a TrainConfig,
    device: Device,
    channels_last: bool,
    model: &'a mut Net,
    use_bf16: bool,
    /// The bfloat16 copy of the backbone, built on the first cache miss.
    bf16: Option<(VarStore, Box<dyn Backbone>)>,
}

impl<'a> FrozenPass<'a> {
    /// The passes of `model` (built for `config`) on `device`.
    pub fn new(
        config: &'a TrainConfig,
        device: Device,
        channels_last: bool,
        model: &'a mut Net,
    ) -> Self {
        // The bfloat16 backbone copy serves image-level heads (pooled embeddings).
        let use_bf16 =
            config.use_bf16_frozen(device == Device::Cpu) && model.as_classifier().is_some();
        Self {
            config,
            device,
            channels_last,
            model,
            use_bf16,
            bf16: None,
        }
    }

    /// "bfloat16" or "float32".
    pub fn precision(&self) -> &'static str {
        if self.use_bf16 { "bfloat16" } else { "float32" }
    }

    /// The outputs of every sample of `split`, from the cache under `dir` or computed;
    /// `None` when `stop` says so before the end.
    pub fn split(
        &mut self,
        dir: &Path,
        source: &mut dyn BatchSource,
        split: Split,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<CachedEmbeddings>, TrainError> {
        let key = cache_key(self.config, source, split, self.use_bf16)?;
        load_or_compute(dir, &key, || self.compute(source, split, stop))
    }

    fn compute(
        &mut self,
        source: &mut dyn BatchSource,
        split: Split,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<(Tensor, Tensor)>, TrainError> {
        if let (true, None, Some(model)) = (self.use_bf16, &self.bf16, self.model.as_classifier()) {
            self.bf16 = Some(model.bf16_backbone()?);
        }
        let samples = source.labels(split).len();
        let plan = fixed_plan(samples, self.config.batch_size);
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for batch in source.batches(split, plan, false, 0) {
            if stop() {
                return Ok(None);
            }
            let batch = batch?;
            let images = self.prepare(&batch.images)?;
            let embedding = match &self.bf16 {
                Some((_, backbone)) => {
                    if let Some(model) = self.model.as_classifier() {
                        model.backbone_passes += 1;
                    }
                    let name = backbone.info().name;
                    let images = crate::model::precision::inference_input(&images, name)?;
                    tch::no_grad(|| backbone.forward_t(&images, false))?.embedding
                }
                None => self.model.frozen_rows(&images)?,
            };
            if rows.is_empty() {
                check_cache_size(&embedding, samples)?;
            }
            rows.push(embedding.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?);
            labels.push(batch.targets);
        }
        Ok(Some((Tensor::f_cat(&rows, 0)?, stack_targets(labels)?)))
    }

    fn prepare(&self, inputs: &Tensor) -> Result<Tensor, TrainError> {
        let inputs = inputs.f_to_device(self.device)?;
        Ok(if self.channels_last && inputs.dim() == 4 {
            channels_last(&inputs)?
        } else {
            inputs
        })
    }
}

/// Refuses a frozen-backbone cache of `samples` rows like `first` that would not fit.
fn check_cache_size(first: &Tensor, samples: usize) -> Result<(), TrainError> {
    let per_row = first.size().get(1).copied().unwrap_or(1) as f64;
    let bytes = per_row * samples as f64 * 4.0;
    if bytes > MAX_CACHE_BYTES {
        return Err(TrainError::Config(format!(
            "the frozen backbone's output for {samples} images would take {:.1} GB (at most \
             {:.0} GB): train with fine-tune or staged, or a smaller input size",
            bytes / 1e9,
            MAX_CACHE_BYTES / 1e9
        )));
    }
    Ok(())
}

/// The targets of a split's batches as one tensor: class indices `[N]` (int64), or box
/// targets `[N, M, 6]` padded to the most boxes of any image (padding rows are zeros,
/// which mark no object).
fn stack_targets(batches: Vec<Tensor>) -> Result<Tensor, TrainError> {
    if batches.iter().all(|t| t.dim() == 1) {
        let labels = batches
            .iter()
            .map(|t| t.f_to_kind(Kind::Int64))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Tensor::f_cat(&labels, 0)?);
    }
    let most = batches.iter().map(|t| t.size()[1]).max().unwrap_or(0);
    let padded = batches
        .iter()
        .map(|t| {
            let missing = most - t.size()[1];
            t.f_to_kind(Kind::Float)?
                .f_constant_pad_nd([0, 0, 0, missing])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::f_cat(&padded, 0)?)
}
