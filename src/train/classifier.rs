//! A backbone with a classification head in one VarStore (backbone keys at the root as in
//! the reference implementation, head under `head.`), the parameter groups of each strategy,
//! and strict checkpoint import/export.

use std::collections::HashMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::TrainError;
use super::config::{Strategy, TrainConfig};
use super::net::TaskNet;
use super::optim::ParamGroup;
use crate::model::head::ClassificationHead;
use crate::model::{Backbone, WeightsChoice, load_backbone};

/// Prefix of the head's variables.
pub const HEAD_PREFIX: &str = "head.";

/// Backbone + head.
pub struct Classifier {
    /// Owns all variables.
    pub vs: VarStore,
    backbone: Box<dyn Backbone>,
    head: ClassificationHead,
    /// Forward passes through the backbone so far (the probe's cache test counts them).
    pub backbone_passes: usize,
}

impl Classifier {
    /// Builds the configured backbone with its weights and a fresh head for `classes`,
    /// seeding libtorch with the run's seed first.
    pub fn build(config: &TrainConfig, classes: usize, device: Device) -> Result<Self, TrainError> {
        let (loaded, head) = crate::model::with_init_lock(Some(config.seed), || {
            let loaded = load_backbone(&config.backbone, false, &config.weights.choice(), device)?;
            let dim = loaded.model.info().embedding_dim;
            let head = ClassificationHead::new(
                loaded.vs.root() / "head",
                dim,
                classes as i64,
                config.head_dropout,
            );
            Ok::<_, TrainError>((loaded, head))
        })?;
        Ok(Self {
            vs: loaded.vs,
            backbone: loaded.model,
            head,
            backbone_passes: 0,
        })
    }

    /// The device of the variables.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Pooled embeddings; gradients flow into the backbone only when `trainable`, batch
    /// statistics are used only when `trainable` too.
    pub fn embed(&mut self, images: &Tensor, trainable: bool) -> Result<Tensor, TrainError> {
        self.backbone_passes += 1;
        let out = if trainable {
            self.backbone.forward_t(images, true)?
        } else {
            tch::no_grad(|| self.backbone.forward_t(images, false))?
        };
        Ok(out.embedding)
    }

    /// The backbone.
    pub fn backbone(&self) -> &dyn Backbone {
        self.backbone.as_ref()
    }

    /// A frozen bfloat16 copy of the backbone (for inference passes): built like the
    /// original, its variables copied, then converted except its precision-sensitive first
    /// layers ([`crate::model::precision`]). Feed it bf16 images.
    pub fn bf16_backbone(&self) -> Result<(VarStore, Box<dyn Backbone>), TrainError> {
        let name = self.backbone.info().name;
        let loaded = crate::model::with_init_lock(None, || {
            load_backbone(name, false, &WeightsChoice::Random, self.device())
        })?;
        let ours = self.vs.variables();
        tch::no_grad(|| -> Result<(), TrainError> {
            for (key, mut target) in loaded.vs.variables() {
                let source = ours.get(&key).ok_or_else(|| {
                    TrainError::Config(format!("backbone variable {key} is missing"))
                })?;
                target.f_copy_(source)?;
            }
            Ok(())
        })?;
        let mut vs = loaded.vs;
        crate::model::precision::to_inference_bf16(&mut vs, name)?;
        vs.freeze();
        Ok((vs, loaded.model))
    }

    /// Backbone feature maps (fine to coarse) and head logits in evaluation mode, with the
    /// autograd graph kept so gradients of the logits reach the maps (Grad-CAM).
    pub fn forward_with_features(
        &mut self,
        images: &Tensor,
    ) -> Result<(Vec<Tensor>, Tensor), TrainError> {
        self.backbone_passes += 1;
        let out = self.backbone.forward_t(images, false)?;
        let logits = self.head.forward_t(&out.embedding, false)?;
        Ok((out.features, logits))
    }

    /// Head logits for embeddings.
    pub fn head_logits(&self, embedding: &Tensor, train: bool) -> Result<Tensor, TrainError> {
        Ok(self.head.forward_t(embedding, train)?)
    }

    /// The parameter groups trained by `strategy` in `epoch`.
    pub fn param_groups(&self, strategy: Strategy, epoch: usize) -> Vec<ParamGroup> {
        strategy_groups(&self.vs, HEAD_PREFIX, strategy, epoch)
    }

    /// Whether `strategy` trains the backbone in `epoch`.
    pub fn backbone_trainable(strategy: Strategy, epoch: usize) -> bool {
        match strategy {
            Strategy::LinearProbe => false,
            Strategy::FineTune => true,
            Strategy::Staged { warmup_epochs, .. } => epoch >= warmup_epochs,
        }
    }

    /// All variables (including batch-norm statistics) by name.
    pub fn model_tensors(&self) -> Vec<(String, Tensor)> {
        model_tensors(&self.vs)
    }

    /// Copies every variable from `tensors` (strict: each must be present with its shape).
    pub fn load_model_tensors(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        path: &Path,
    ) -> Result<(), TrainError> {
        load_model_tensors(&self.vs, tensors, path)
    }
}

impl TaskNet for Classifier {
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
        Classifier::param_groups(self, strategy, epoch)
    }

    /// Class logits `[N, classes]`.
    fn logits(
        &mut self,
        images: &Tensor,
        trainable: bool,
        train: bool,
    ) -> Result<Tensor, TrainError> {
        let embedding = self.embed(images, trainable)?;
        self.head_logits(&embedding, train)
    }

    fn as_classifier(&mut self) -> Option<&mut Classifier> {
        Some(self)
    }
}

/// Trainable variables with their names, in creation (depth) order.
fn named_trainable(vs: &VarStore) -> Vec<(String, Tensor)> {
    let by_ptr: HashMap<usize, String> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (t.data_ptr() as usize, name))
        .collect();
    vs.trainable_variables()
        .into_iter()
        .filter_map(|t| by_ptr.get(&(t.data_ptr() as usize)).map(|n| (n.clone(), t)))
        .collect()
}

/// The parameter groups trained by `strategy` in `epoch`, for a model whose task-specific
/// part (head or decoder) has the variable prefix `head_prefix` and the rest is backbone.
pub fn strategy_groups(
    vs: &VarStore,
    head_prefix: &str,
    strategy: Strategy,
    epoch: usize,
) -> Vec<ParamGroup> {
    let (head, backbone): (Vec<_>, Vec<_>) = named_trainable(vs)
        .into_iter()
        .partition(|(name, _)| name.starts_with(head_prefix));
    let group = |name: &str, lr_scale: f64, params| ParamGroup {
        name: name.to_owned(),
        lr_scale,
        params,
    };
    match strategy {
        Strategy::LinearProbe => vec![group("head", 1.0, head)],
        Strategy::FineTune => {
            let mut all = backbone;
            all.extend(head);
            vec![group("all", 1.0, all)]
        }
        Strategy::Staged { warmup_epochs, .. } if epoch < warmup_epochs => {
            vec![group("head", 1.0, head)]
        }
        Strategy::Staged {
            layer_groups,
            lr_decay,
            ..
        } => {
            let groups = layer_groups.max(1);
            let chunk = backbone.len().div_ceil(groups).max(1);
            let mut out: Vec<ParamGroup> = backbone
                .chunks(chunk)
                .enumerate()
                .map(|(i, params)| {
                    let scale = lr_decay.powi((groups - i) as i32);
                    let params = params
                        .iter()
                        .map(|(n, t)| (n.clone(), t.shallow_clone()))
                        .collect();
                    group(&format!("backbone.{i}"), scale, params)
                })
                .collect();
            out.push(group("head", 1.0, head));
            out
        }
    }
}

/// All variables of `vs` (including batch-norm statistics) by name, sorted.
pub fn model_tensors(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut all: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Copies every variable of `vs` from `tensors` (strict: each must be present with its
/// shape); `path` names the checkpoint in errors.
pub fn load_model_tensors(
    vs: &VarStore,
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<(), TrainError> {
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_owned(),
        reason,
    };
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = tensors
                .get(&name)
                .ok_or_else(|| bad(format!("'{name}' is missing")))?;
            if src.size() != var.size() {
                return Err(bad(format!(
                    "'{name}' has shape {:?}, the model {:?}",
                    src.size(),
                    var.size()
                )));
            }
            var.f_copy_(src)?;
        }
        Ok(())
    })
}

/// Converts every 4-D variable of `vs` to channels-last (NHWC) strides in place, keeping
/// values and identity (optimisers built afterwards see the new layout).
pub fn to_channels_last(vs: &VarStore) -> Result<(), TrainError> {
    tch::no_grad(|| {
        for (_, mut var) in vs.variables() {
            if var.dim() == 4 {
                let nhwc = channels_last(&var)?;
                var.f_set_data(&nhwc)?;
            }
        }
        Ok(())
    })
}

/// `xs` `[N, C, H, W]` with channels-last strides (same values and shape).
pub fn channels_last(xs: &Tensor) -> Result<Tensor, tch::TchError> {
    xs.f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_permute([0, 3, 1, 2])
}
