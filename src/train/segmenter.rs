//! A backbone with a U-Net decoder in one VarStore (backbone keys at the root, decoder under
//! `decoder.`): the network of the segmentation task.

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::TrainError;
use super::classifier::strategy_groups;
use super::config::{Strategy, TrainConfig};
use super::net::TaskNet;
use super::optim::ParamGroup;
use crate::model::load_backbone;
use crate::model::seg_decoder::{SegDecoderConfig, SegmentationModel};

/// Prefix of the decoder's variables (the backbone's keys stay at the root).
pub const DECODER_PREFIX: &str = "decoder.";

/// Backbone + U-Net decoder in one VarStore.
pub struct Segmenter {
    /// Owns all variables.
    pub vs: VarStore,
    model: SegmentationModel,
    /// Forward passes through the backbone so far.
    pub backbone_passes: usize,
}

impl Segmenter {
    /// Builds the configured backbone with its weights and a fresh decoder for `classes`
    /// (with background; two classes get one foreground logit channel), seeding libtorch
    /// with the run's seed first.
    pub fn build(config: &TrainConfig, classes: usize, device: Device) -> Result<Self, TrainError> {
        let (vs, model) = crate::model::with_init_lock(Some(config.seed), || {
            let loaded = load_backbone(&config.backbone, false, &config.weights.choice(), device)?;
            let channels = if classes == 2 { 1 } else { classes as i64 };
            let model = SegmentationModel::new(
                loaded.vs.root() / "decoder",
                loaded.model,
                channels,
                SegDecoderConfig::default(),
            )?;
            Ok::<_, TrainError>((loaded.vs, model))
        })?;
        Ok(Self {
            vs,
            model,
            backbone_passes: 0,
        })
    }
}

impl TaskNet for Segmenter {
    fn vs(&self) -> &VarStore {
        &self.vs
    }

    fn vs_mut(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    fn backbone_passes(&self) -> usize {
        self.backbone_passes
    }

    fn param_groups(&self, strategy: Strategy, epoch: usize) -> Vec<ParamGroup> {
        strategy_groups(&self.vs, DECODER_PREFIX, strategy, epoch)
    }

    /// Per-pixel logits `[N, C, H, W]`; the backbone gets gradients and batch statistics only
    /// when `trainable`, the decoder batch statistics when `train`.
    fn logits(
        &mut self,
        images: &Tensor,
        trainable: bool,
        train: bool,
    ) -> Result<Tensor, TrainError> {
        self.backbone_passes += 1;
        if trainable {
            return Ok(self.model.forward_t(images, true)?);
        }
        let size = images.size();
        let (height_px, width_px) = match size[..] {
            [_, _, h, w] => (h, w),
            _ => {
                return Err(TrainError::Source(format!(
                    "expected images [N, 3, H, W], got {size:?}"
                )));
            }
        };
        let features = tch::no_grad(|| self.model.backbone.forward_t(images, false))?.features;
        Ok(self
            .model
            .decoder
            .forward_t(&features, [height_px, width_px], train)?)
    }
}
