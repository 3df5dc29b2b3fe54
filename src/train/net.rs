//! The network a job trains: a [`Classifier`] (backbone + head) or a [`Segmenter`]
//! (backbone + U-Net decoder), with what the loop needs of either: parameter groups per
//! strategy, checkpoint tensors and the channels-last layout.

use std::collections::HashMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::TrainError;
use super::classifier::{
    Classifier, load_model_tensors, model_tensors, strategy_groups, to_channels_last,
};
use super::config::{Strategy, TaskKind, TrainConfig};
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

    /// Per-pixel logits `[N, C, H, W]`; the backbone gets gradients and batch statistics only
    /// when `trainable`, the decoder batch statistics when `train`.
    pub fn logits(
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

/// The trained network of a job.
pub enum Net {
    /// One class per image.
    Classifier(Classifier),
    /// One class per pixel.
    Segmenter(Segmenter),
}

impl Net {
    /// Builds the network of `config`'s task for `classes`, in channels-last layout when
    /// `channels_last`.
    pub fn build(
        config: &TrainConfig,
        classes: usize,
        device: Device,
        channels_last: bool,
    ) -> Result<Self, TrainError> {
        let net = match config.task {
            TaskKind::Classification => {
                Net::Classifier(Classifier::build(config, classes, device)?)
            }
            TaskKind::Segmentation => Net::Segmenter(Segmenter::build(config, classes, device)?),
        };
        if channels_last {
            to_channels_last(net.vs())?;
        }
        Ok(net)
    }

    /// The variables.
    pub fn vs(&self) -> &VarStore {
        match self {
            Net::Classifier(c) => &c.vs,
            Net::Segmenter(s) => &s.vs,
        }
    }

    /// The variables, mutably (precision changes).
    pub fn vs_mut(&mut self) -> &mut VarStore {
        match self {
            Net::Classifier(c) => &mut c.vs,
            Net::Segmenter(s) => &mut s.vs,
        }
    }

    /// Forward passes through the backbone so far.
    pub fn backbone_passes(&self) -> usize {
        match self {
            Net::Classifier(c) => c.backbone_passes,
            Net::Segmenter(s) => s.backbone_passes,
        }
    }

    /// The parameter groups trained by `strategy` in `epoch` (the head or the decoder is
    /// the part trained alone during a staged warm-up).
    pub fn param_groups(&self, strategy: Strategy, epoch: usize) -> Vec<ParamGroup> {
        match self {
            Net::Classifier(c) => c.param_groups(strategy, epoch),
            Net::Segmenter(s) => strategy_groups(&s.vs, DECODER_PREFIX, strategy, epoch),
        }
    }

    /// All variables (including batch-norm statistics) by name.
    pub fn model_tensors(&self) -> Vec<(String, Tensor)> {
        model_tensors(self.vs())
    }

    /// Copies every variable from `tensors` (strict).
    pub fn load_model_tensors(
        &self,
        tensors: &HashMap<String, Tensor>,
        path: &Path,
    ) -> Result<(), TrainError> {
        load_model_tensors(self.vs(), tensors, path)
    }

    /// Logits for a batch of images: `[N, classes]` or `[N, C, H, W]`.
    pub fn logits(
        &mut self,
        images: &Tensor,
        trainable: bool,
        train: bool,
    ) -> Result<Tensor, TrainError> {
        match self {
            Net::Classifier(c) => {
                let embedding = c.embed(images, trainable)?;
                c.head_logits(&embedding, train)
            }
            Net::Segmenter(s) => s.logits(images, trainable, train),
        }
    }
}
