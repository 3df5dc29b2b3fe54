//! A backbone with the "objects as points" head in one VarStore (backbone keys at the root,
//! head under `detector.`): the network of the detection task.

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::TrainError;
use super::classifier::strategy_groups;
use super::config::{Strategy, TrainConfig};
use super::net::TaskNet;
use super::optim::ParamGroup;
use crate::model::det_head::{DetectionModel, image_size};
use crate::model::load_backbone;

/// Prefix of the head's variables (the backbone's keys stay at the root).
pub const DETECTOR_PREFIX: &str = "detector.";

/// Backbone + detection head in one VarStore.
pub struct Detector {
    /// Owns all variables.
    pub vs: VarStore,
    model: DetectionModel,
    /// Forward passes through the backbone so far.
    pub backbone_passes: usize,
}

impl Detector {
    /// Builds the configured backbone with its weights and a fresh head for `classes`
    /// object classes, seeding libtorch with the run's seed first.
    pub fn build(config: &TrainConfig, classes: usize, device: Device) -> Result<Self, TrainError> {
        let (vs, model) = crate::model::with_init_lock(Some(config.seed), || {
            let loaded = load_backbone(&config.backbone, false, &config.weights.choice(), device)?;
            let model =
                DetectionModel::new(loaded.vs.root() / "detector", loaded.model, classes as i64)?;
            Ok::<_, TrainError>((loaded.vs, model))
        })?;
        Ok(Self {
            vs,
            model,
            backbone_passes: 0,
        })
    }
}

impl TaskNet for Detector {
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
        strategy_groups(&self.vs, DETECTOR_PREFIX, strategy, epoch)
    }

    /// The head's output `[N, C + 4, H / 4, W / 4]`; the backbone gets gradients and batch
    /// statistics only when `trainable`, the head batch statistics when `train`.
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
        let input_px = image_size(images)?;
        let features = tch::no_grad(|| self.model.backbone.forward_t(images, false))?.features;
        Ok(self.model.head.forward_t(&features, input_px, train)?)
    }
}
