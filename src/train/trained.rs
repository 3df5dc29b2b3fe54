//! A trained model loaded back from a run: the frozen config, the class names frozen with
//! the split, the network with a checkpoint's weights, and inference helpers (probabilities,
//! embeddings, per-pixel classes) used by `predict`, evaluation, inspection and export.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::TrainError;
use super::classifier::channels_last;
use super::config::{TrainConfig, WeightsSpec};
use super::events::CheckpointKind;
use super::net::Net;
use super::run::{CheckpointState, RunDir};

/// Which checkpoint of a run to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CheckpointChoice {
    /// The best checkpoint, else the last one.
    #[default]
    BestOrLast,
    /// Exactly this one.
    Exactly(CheckpointKind),
}

/// A run's network with the weights of one checkpoint, in evaluation mode.
pub struct TrainedModel {
    /// The run folder.
    pub run: RunDir,
    /// The run's frozen config.
    pub config: TrainConfig,
    /// Class names in index order (segmentation: background first).
    pub classes: Vec<String>,
    /// The checkpoint file the weights came from.
    pub checkpoint: PathBuf,
    /// The loop state saved with it.
    pub state: CheckpointState,
    /// The network.
    pub net: Net,
    device: Device,
    channels_last: bool,
    kind: Kind,
}

impl TrainedModel {
    /// Loads run `run_id` of the project at `project_dir` onto `device`.
    pub fn load(
        project_dir: &Path,
        run_id: &str,
        choice: CheckpointChoice,
        device: Device,
    ) -> Result<Self, TrainError> {
        let (run, config) = RunDir::open(project_dir, run_id)?;
        let (kind, (tensors, state)) = match choice {
            CheckpointChoice::Exactly(kind) => (kind, run.load_checkpoint(kind)?),
            CheckpointChoice::BestOrLast => match run.load_checkpoint(CheckpointKind::Best) {
                Ok(found) => (CheckpointKind::Best, found),
                Err(_) => (
                    CheckpointKind::Last,
                    run.load_checkpoint(CheckpointKind::Last)?,
                ),
            },
        };
        let checkpoint = run.checkpoint_path(kind);
        // The class names come from the data the run was trained on (its `split.json`);
        // the engine writes them for every task.
        let classes = run.class_names()?;
        if classes.is_empty() {
            return Err(TrainError::Parse {
                path: run.dir.join("split.json"),
                reason: "the run's class names are missing".into(),
            });
        }
        super::cpu_runtime::prepare_cpu(config.threads());
        let channels_last = config.use_channels_last(device == Device::Cpu);
        let build_config = TrainConfig {
            weights: WeightsSpec::Random,
            ..config.clone()
        };
        let net = Net::build(&build_config, classes.len(), device, channels_last)?;
        net.load_model_tensors(&tensors, &checkpoint)?;
        Ok(Self {
            run,
            config,
            classes,
            checkpoint,
            state,
            net,
            device,
            channels_last,
            kind: Kind::Float,
        })
    }

    /// The device the model lives on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Converts the weights to float64: numerical checks compare float32 results with this
    /// exact counterpart to tell rounding from a difference of method.
    pub fn to_double(&mut self) {
        self.net.vs_mut().double();
        self.kind = Kind::Double;
    }

    /// Moves normalised images `[N, 3, H, W]` to the model's device, precision and layout.
    pub fn prepare(&self, images: &Tensor) -> Result<Tensor, TrainError> {
        let images = images.f_to_device(self.device)?.f_to_kind(self.kind)?;
        Ok(if self.channels_last {
            channels_last(&images)?
        } else {
            images
        })
    }

    /// Logits in evaluation mode: `[N, classes]`, or `[N, C, H, W]` for segmentation (C = 1
    /// for a binary task).
    pub fn logits(&mut self, images: &Tensor) -> Result<Tensor, TrainError> {
        let images = self.prepare(images)?;
        let net = &mut self.net;
        tch::no_grad(|| net.logits(&images, false, false))
    }

    /// Class probabilities `[N, classes]` (classification) or per-pixel probabilities
    /// `[N, classes, H, W]` (segmentation; a binary logit becomes two channels).
    pub fn probabilities(&mut self, images: &Tensor) -> Result<Tensor, TrainError> {
        let logits = self.logits(images)?;
        Ok(probabilities_of(&logits)?)
    }

    /// Pooled backbone embeddings `[N, D]` (classification models).
    pub fn embeddings(&mut self, images: &Tensor) -> Result<Tensor, TrainError> {
        let images = self.prepare(images)?;
        match self.net.as_classifier() {
            Some(c) => tch::no_grad(|| c.embed(&images, false)),
            None => Err(TrainError::Config(
                "embeddings need a network with an image-level head (a classification run)".into(),
            )),
        }
    }
}

/// Softmax over dimension 1; a single channel (binary segmentation) becomes
/// `[1 - sigmoid, sigmoid]`.
pub fn probabilities_of(logits: &Tensor) -> Result<Tensor, tch::TchError> {
    if logits.dim() == 4 && logits.size()[1] == 1 {
        let p = logits.f_sigmoid()?;
        let q = p.f_neg()?.f_add_scalar(1.0)?;
        return Tensor::f_cat(&[q, p], 1);
    }
    logits.f_softmax(1, Kind::Float)
}
