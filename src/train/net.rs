//! The network a job trains: the backbone with its task's head (the model-head seam). Each
//! task's training side builds its network ([`super::task::TrainTask::build_net`]); the
//! loop, evaluation, checkpoints and inspection use it through [`TaskNet`].

use std::collections::HashMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::TrainError;
use super::classifier::{Classifier, load_model_tensors, model_tensors, to_channels_last};
use super::config::{Strategy, TrainConfig};
use super::optim::ParamGroup;
use super::task::train_task;

/// What the training loop needs of a network (backbone + the task's head).
pub trait TaskNet: Send {
    /// The variables.
    fn vs(&self) -> &VarStore;

    /// The variables, mutably (precision changes).
    fn vs_mut(&mut self) -> &mut VarStore;

    /// Forward passes through the backbone so far.
    fn backbone_passes(&self) -> usize;

    /// The parameter groups trained by `strategy` in `epoch` (the head is the part trained
    /// alone during a staged warm-up).
    fn param_groups(&self, strategy: Strategy, epoch: usize) -> Vec<ParamGroup>;

    /// The task's logits for a batch of images; the backbone gets gradients and batch
    /// statistics only when `trainable`, the head batch statistics when `train`.
    fn logits(
        &mut self,
        images: &Tensor,
        trainable: bool,
        train: bool,
    ) -> Result<Tensor, TrainError>;

    /// The network as a pooled embedding followed by an image-level head, when it is one
    /// (what the linear probe on cached embeddings, embeddings, Grad-CAM and an
    /// embedding-only export need).
    fn as_classifier(&mut self) -> Option<&mut Classifier> {
        None
    }

    /// The frozen backbone's output for a batch of images as one row per image, what the
    /// frozen-backbone strategy computes once and caches: the pooled embedding for an
    /// image-level head.
    fn frozen_rows(&mut self, images: &Tensor) -> Result<Tensor, TrainError> {
        match self.as_classifier() {
            Some(classifier) => classifier.embed(images, false),
            None => Err(TrainError::Config(
                "this network cannot train on a frozen backbone's cached output".into(),
            )),
        }
    }

    /// The head's logits for rows of [`TaskNet::frozen_rows`] (batch statistics when
    /// `train`).
    fn logits_of_rows(&mut self, rows: &Tensor, train: bool) -> Result<Tensor, TrainError> {
        match self.as_classifier() {
            Some(classifier) => classifier.head_logits(rows, train),
            None => Err(TrainError::Config(
                "this network cannot train on a frozen backbone's cached output".into(),
            )),
        }
    }
}

/// The trained network of a job.
pub struct Net(Box<dyn TaskNet>);

impl Net {
    /// Builds the network of `config`'s task for `classes`, in channels-last layout when
    /// `channels_last`.
    pub fn build(
        config: &TrainConfig,
        classes: usize,
        device: Device,
        channels_last: bool,
    ) -> Result<Self, TrainError> {
        let net = Net(train_task(config.task).build_net(config, classes, device)?);
        if channels_last {
            to_channels_last(net.vs())?;
        }
        Ok(net)
    }

    /// The variables.
    pub fn vs(&self) -> &VarStore {
        self.0.vs()
    }

    /// The variables, mutably (precision changes).
    pub fn vs_mut(&mut self) -> &mut VarStore {
        self.0.vs_mut()
    }

    /// Forward passes through the backbone so far.
    pub fn backbone_passes(&self) -> usize {
        self.0.backbone_passes()
    }

    /// The parameter groups trained by `strategy` in `epoch`.
    pub fn param_groups(&self, strategy: Strategy, epoch: usize) -> Vec<ParamGroup> {
        self.0.param_groups(strategy, epoch)
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

    /// The task's logits for a batch of images (`[N, classes]`, `[N, C, H, W]`, ...).
    pub fn logits(
        &mut self,
        images: &Tensor,
        trainable: bool,
        train: bool,
    ) -> Result<Tensor, TrainError> {
        self.0.logits(images, trainable, train)
    }

    /// The network as embedding + image-level head, when it is one.
    pub fn as_classifier(&mut self) -> Option<&mut Classifier> {
        self.0.as_classifier()
    }

    /// Logits of a batch that is either images or, when `is_embedding`, cached pooled
    /// embeddings (the linear probe: only an image-level head can take those).
    pub fn logits_of_batch(
        &mut self,
        inputs: &Tensor,
        is_embedding: bool,
        trainable: bool,
        train: bool,
    ) -> Result<Tensor, TrainError> {
        if !is_embedding {
            return self.logits(inputs, trainable, train);
        }
        self.0.logits_of_rows(inputs, train)
    }

    /// The frozen backbone's output for a batch of images, one row per image (see
    /// [`TaskNet::frozen_rows`]).
    pub fn frozen_rows(&mut self, images: &Tensor) -> Result<Tensor, TrainError> {
        self.0.frozen_rows(images)
    }
}
