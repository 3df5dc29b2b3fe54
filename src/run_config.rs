//! What a training run is asked to do: plain serde data, frozen into each run as RON and
//! kept in the project document for the next run. Imports only the task discriminant and the
//! data layer's augmentation settings, so the project layer can hold it; what needs the
//! training layer (validation, the monitored value) is in `train::config`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::task::TaskKind;

/// Where the backbone's starting weights come from (the serialisable twin of
/// `model::WeightsChoice`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightsSpec {
    /// The shipped pretrained weights.
    #[default]
    Pretrained,
    /// Random initialisation (seeded by the run's seed).
    Random,
    /// A weights file.
    File(PathBuf),
}

/// How much of the network is trained.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Strategy {
    /// Only the head, on embeddings of the frozen backbone computed once and cached.
    LinearProbe,
    /// Backbone and head together at one learning rate.
    FineTune,
    /// The head alone for `warmup_epochs`, then everything with discriminative learning
    /// rates: the backbone's variables in creation (depth) order are cut into `layer_groups`
    /// groups, group `i` (0 = earliest) trained at `lr * lr_decay^(layer_groups - i)`.
    Staged {
        warmup_epochs: usize,
        layer_groups: usize,
        lr_decay: f64,
    },
}

impl Strategy {
    /// The strategy called `name` (its label, or `linear-probe`, `fine-tune`); staged with
    /// one warm-up epoch, four layer groups and a decay of 0.5.
    pub fn from_label(name: &str) -> Option<Self> {
        Some(match name {
            "probe" | "linear-probe" => Strategy::LinearProbe,
            "finetune" | "fine-tune" => Strategy::FineTune,
            "staged" => Strategy::Staged {
                warmup_epochs: 1,
                layer_groups: 4,
                lr_decay: 0.5,
            },
            _ => return None,
        })
    }

    /// A short name for logs and the command line.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::LinearProbe => "probe",
            Strategy::FineTune => "finetune",
            Strategy::Staged { .. } => "staged",
        }
    }
}

/// The head of a detection run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DetectorHead {
    /// "Objects as points": class heatmaps, box size and offset at stride 4 (any backbone).
    #[default]
    CenterNet,
    /// YOLOv3-tiny's two anchor heads at strides 16 and 32, decoded with suppression; with
    /// the `yolov3_tiny` backbone and pretrained weights its neck keeps the COCO weights.
    Yolo,
}

impl DetectorHead {
    /// Every head.
    pub const ALL: [DetectorHead; 2] = [Self::CenterNet, Self::Yolo];

    /// A short name for logs and the command line.
    pub fn label(self) -> &'static str {
        match self {
            Self::CenterNet => "centernet",
            Self::Yolo => "yolo",
        }
    }

    /// The head called `name` (its label).
    pub fn from_label(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.label() == name)
    }
}

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay (betas 0.9, 0.999; eps 1e-8).
    AdamW { weight_decay: f64 },
    /// SGD with (optionally Nesterov) momentum and L2 weight decay.
    Sgd {
        momentum: f64,
        nesterov: bool,
        weight_decay: f64,
    },
}

/// The learning-rate schedule over all steps of the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Linear warm-up over `warmup_fraction` of the steps, then cosine decay to zero.
    CosineWarmup { warmup_fraction: f64 },
    /// One-cycle (Smith): from `lr / 25` up to `lr` over `pct_start` of the steps by
    /// cosine, then down to `lr / 1e4`.
    OneCycle { pct_start: f64 },
}

/// How class imbalance is compensated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Balancing {
    /// Nothing.
    #[default]
    None,
    /// Loss weights proportional to inverse class frequency (mean weight 1).
    ClassWeights,
    /// Batches drawn with replacement so that every class is equally likely.
    BalancedSampler,
}

/// The validation metric that picks the best checkpoint and drives early stopping: a metric
/// key (`val_loss`, `val_dice`, ...) checked against the task's keys
/// (`train::task::TrainTask::monitor_keys`) when the config is validated. Saved configs
/// name it as a string; those written when it was an enum (`ValidationDice`) still load.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Monitor(String);

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new("val_loss")
    }
}

impl Monitor {
    /// The monitor of the metric called `name` in the history (e.g. `val_macro_f1`).
    pub fn new(name: impl Into<String>) -> Self {
        Monitor(name.into())
    }

    /// The metric's name in the history (`val_` and the key in
    /// `train::EpochMetrics::extra` for those beyond loss and accuracy).
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// Reads a metric key, and the names of the enum the monitor was before
/// (`ValidationLoss`, ..., `ValidationDice`).
impl<'de> Deserialize<'de> for Monitor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Name {
            Name(String),
        }
        let Name::Name(name) = Name::deserialize(deserializer)?;
        let key = match name.as_str() {
            "ValidationLoss" => "val_loss",
            "ValidationAccuracy" => "val_accuracy",
            "ValidationBalancedAccuracy" => "val_balanced_accuracy",
            "ValidationMacroF1" => "val_macro_f1",
            "ValidationMacroAuc" => "val_macro_auc",
            "ValidationDice" => "val_dice",
            _ => return Ok(Monitor(name)),
        };
        Ok(Monitor::new(key))
    }
}

/// Stop when the monitored metric has not improved by `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f64,
}

/// Everything a training run needs besides its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Backbone name (see `transfer-workbench backbones`).
    pub backbone: String,
    /// Starting weights of the backbone.
    pub weights: WeightsSpec,
    /// Square input size in pixels.
    pub input_size_px: u32,
    /// Which parts are trained, and when.
    pub strategy: Strategy,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Peak (base) learning rate.
    pub lr: f64,
    /// Number of epochs (the fewest, when `min_steps` asks for more).
    pub epochs: usize,
    /// Train at least this many optimiser steps: on a small data set the run's epochs grow
    /// until they reach it (0: exactly `epochs`). A new run records the epochs it chose.
    pub min_steps: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Label smoothing of the cross-entropy loss (0 = none).
    pub label_smoothing: f64,
    /// Class-imbalance compensation.
    pub balancing: Balancing,
    /// The metric that picks the best checkpoint.
    pub monitor: Monitor,
    /// Early stopping on the monitored metric.
    pub early_stopping: Option<EarlyStopping>,
    /// Clip the global gradient norm to this value.
    pub grad_clip_norm: Option<f64>,
    /// Dropout before the head's linear layer.
    pub head_dropout: f64,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Intra-op CPU threads for libtorch (`None`: the number of physical cores, see
    /// [`default_threads`]). On a busy machine fewer threads can be much faster.
    pub threads: Option<usize>,
    /// Classification or segmentation.
    pub task: TaskKind,
    /// Keep conv weights and images in channels-last (NHWC) memory format (`None`: where it
    /// was measured to help, see [`TrainConfig::use_channels_last`]). Checkpoints are the
    /// same either way.
    pub channels_last: Option<bool>,
    /// Classification evaluation: the centre crop's share of the resized image (0.875 as
    /// torchvision's ImageNet transform; 1.0 for images whose borders matter, e.g. small
    /// centred objects that fill the frame).
    pub eval_crop_fraction: f32,
    /// Compute frozen-backbone passes (the linear probe's embeddings) in bfloat16 (`None`:
    /// on a CPU with native bf16 instructions unless `TRANSFER_WORKBENCH_BF16` says
    /// otherwise, see `model::cpu_bf16`).
    pub bf16_frozen: Option<bool>,
    /// The training augmentation (project data; the synthetic sources ignore it).
    pub augment: crate::data::augment::AugmentConfig,
    /// The head of a detection run (other tasks ignore it).
    pub detector: DetectorHead,
    /// The project's relabels and exclusions the run reads its data through (set from the
    /// project when a run starts, frozen with it).
    pub overrides: crate::data::overrides::Overrides,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            backbone: "mobilenet_v2".to_owned(),
            weights: WeightsSpec::Pretrained,
            input_size_px: 224,
            strategy: Strategy::FineTune,
            optimizer: OptimizerKind::AdamW { weight_decay: 1e-4 },
            schedule: Schedule::CosineWarmup {
                warmup_fraction: 0.05,
            },
            lr: 1e-3,
            epochs: 10,
            min_steps: 0,
            batch_size: 32,
            label_smoothing: 0.0,
            balancing: Balancing::None,
            monitor: Monitor::default(),
            early_stopping: None,
            grad_clip_norm: None,
            head_dropout: 0.0,
            seed: 0,
            threads: None,
            task: TaskKind::Classification,
            channels_last: None,
            bf16_frozen: None,
            eval_crop_fraction: 0.875,
            augment: crate::data::augment::AugmentConfig::default(),
            detector: DetectorHead::CenterNet,
            overrides: crate::data::overrides::Overrides::default(),
        }
    }
}

impl TrainConfig {
    /// The intra-op thread count to use.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(default_threads)
    }

    /// Whether to use channels-last memory format (`on_cpu`: the job runs on the CPU): the
    /// explicit setting, else on the CPU, where it was measured to cut MobileNetV2 training
    /// time per step by about a quarter at 64 px and nearly half at 224 px (batch 32;
    /// `tests/train_channels_last.rs`).
    /// Off by default on CUDA, where it was not measured.
    pub fn use_channels_last(&self, on_cpu: bool) -> bool {
        self.channels_last.unwrap_or(on_cpu)
    }

    /// The epochs a run of `steps_per_epoch` optimiser steps per epoch trains: `epochs`, or
    /// more to reach `min_steps`, at most [`MAX_AUTO_EPOCHS`].
    pub fn epochs_for(&self, steps_per_epoch: usize) -> usize {
        let needed = self.min_steps.div_ceil(steps_per_epoch.max(1));
        self.epochs.max(needed.min(MAX_AUTO_EPOCHS))
    }
}

/// The most epochs that `min_steps` adds by itself (a data set of a few images).
pub const MAX_AUTO_EPOCHS: usize = 500;

/// The number of physical CPU cores (logical cores sharing a core counted once; Linux reads
/// `/proc/cpuinfo`), else the available parallelism.
pub fn default_threads() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, usize::from);
    let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::BTreeSet::new();
    let mut physical = "";
    for line in text.lines() {
        let mut parts = line.splitn(2, ':').map(str::trim);
        match (parts.next(), parts.next()) {
            (Some("physical id"), Some(id)) => physical = id,
            (Some("core id"), Some(id)) => {
                cores.insert((physical.to_owned(), id.to_owned()));
            }
            _ => {}
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}
