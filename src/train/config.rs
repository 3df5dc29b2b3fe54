//! What a training run is asked to do: plain serde data, frozen into each run as RON.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::WeightsChoice;

/// Where the backbone's starting weights come from (the serialisable twin of
/// [`WeightsChoice`]).
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

impl WeightsSpec {
    /// The model layer's choice.
    pub fn choice(&self) -> WeightsChoice {
        match self {
            WeightsSpec::Pretrained => WeightsChoice::Pretrained,
            WeightsSpec::Random => WeightsChoice::Random,
            WeightsSpec::File(path) => WeightsChoice::File(path.clone()),
        }
    }
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
    /// A short name for logs and the command line.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::LinearProbe => "probe",
            Strategy::FineTune => "finetune",
            Strategy::Staged { .. } => "staged",
        }
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

/// The validation metric that picks the best checkpoint and drives early stopping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Monitor {
    /// Lower is better.
    #[default]
    ValidationLoss,
    /// Higher is better.
    ValidationAccuracy,
    // TODO(metrics): balanced accuracy, macro F1, ROC-AUC once `train::metrics` lands.
}

impl Monitor {
    /// Whether a larger value is an improvement.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Monitor::ValidationAccuracy)
    }

    /// The metric's name in the history.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValidationLoss => "val_loss",
            Monitor::ValidationAccuracy => "val_accuracy",
        }
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
    /// Number of epochs.
    pub epochs: usize,
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
    /// Intra-op CPU threads for libtorch (`None`: libtorch's default).
    pub threads: Option<usize>,
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
            batch_size: 32,
            label_smoothing: 0.0,
            balancing: Balancing::None,
            monitor: Monitor::ValidationLoss,
            early_stopping: None,
            grad_clip_norm: None,
            head_dropout: 0.0,
            seed: 0,
            threads: None,
        }
    }
}

impl TrainConfig {
    /// Refuses settings the loop cannot run, naming the setting.
    pub fn validate(&self) -> Result<(), super::TrainError> {
        let bad = |what: &str| Err(super::TrainError::Config(what.to_owned()));
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("the learning rate must be a positive number");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label smoothing must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.head_dropout) {
            return bad("head dropout must be in [0, 1)");
        }
        if self.input_size_px < 8 {
            return bad("the input size must be at least 8 px");
        }
        if let Strategy::Staged {
            layer_groups,
            lr_decay,
            ..
        } = self.strategy
            && (layer_groups == 0 || !(lr_decay > 0.0 && lr_decay <= 1.0))
        {
            return bad("staged: layer groups must be >= 1 and the decay in (0, 1]");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_ron_and_validates() {
        let config = TrainConfig {
            strategy: Strategy::Staged {
                warmup_epochs: 2,
                layer_groups: 3,
                lr_decay: 0.5,
            },
            early_stopping: Some(EarlyStopping {
                patience: 3,
                min_delta: 0.0,
            }),
            ..TrainConfig::default()
        };
        let text = ron::ser::to_string_pretty(&config, Default::default()).unwrap();
        let back: TrainConfig = ron::from_str(&text).unwrap();
        assert_eq!(back, config);
        assert!(back.validate().is_ok());
        let bad = TrainConfig {
            lr: f64::NAN,
            ..TrainConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
