//! The training side of a task: its loss, the running tally of a pass and the metrics it
//! reports, the metric keys a user may monitor, and the settings it refuses. One file per
//! task implements [`TrainTask`]; [`train_task`] is the registry, the one place in the
//! training layer that matches on the [`TaskKind`].

mod classification;
mod detection;
mod segmentation;

use tch::{Device, Tensor};

use super::TrainError;
use super::config::{Monitor, TrainConfig};
use super::events::EpochMetrics;
use super::net::TaskNet;
use super::source::BatchSource;
use crate::task::TaskKind;

pub use classification::ClassificationTask;
pub use detection::{AP, AP50, AP75, AR100, DetectionTask};
pub use segmentation::SegmentationTask;

/// A validation metric a user may monitor (pick the best checkpoint by, stop early on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricKey {
    /// The metric's name in the history and in a saved config (`val_loss`, `val_dice`, ...).
    pub name: &'static str,
    /// What the interface calls it.
    pub label: &'static str,
    /// The names the command line accepts for it (`--monitor`).
    pub aliases: &'static [&'static str],
    /// Whether a larger value is an improvement.
    pub higher_is_better: bool,
}

/// The validation loss, which every task reports (lower is better).
pub const VAL_LOSS: MetricKey = MetricKey {
    name: "val_loss",
    label: "validation loss",
    aliases: &["loss"],
    higher_is_better: false,
};

/// The validation accuracy, which every task reports (pixel accuracy for segmentation).
pub const VAL_ACCURACY: MetricKey = MetricKey {
    name: "val_accuracy",
    label: "validation accuracy",
    aliases: &["accuracy"],
    higher_is_better: true,
};

/// What the training loop needs of a task.
pub trait TrainTask: Sync {
    /// Which task this is.
    fn kind(&self) -> TaskKind;

    /// The validation metrics a user may monitor, the validation loss first.
    fn monitor_keys(&self) -> &'static [MetricKey];

    /// Refuses settings this task cannot train with, naming the setting.
    fn validate(&self, config: &TrainConfig) -> Result<(), TrainError>;

    /// The training loss of a batch's `logits` against its `targets` (class weights and
    /// label smoothing where the task uses them).
    fn loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        class_weights: Option<&Tensor>,
        label_smoothing: f64,
    ) -> Result<Tensor, TrainError>;

    /// An empty tally of a pass over data with `classes` classes; `collecting` (validation)
    /// keeps what the full metric set needs.
    fn tally(&self, classes: usize, collecting: bool) -> Box<dyn Tally>;

    /// The network of this task: the configured backbone with a fresh head for `classes`
    /// (seeded with the run's seed).
    fn build_net(
        &self,
        config: &TrainConfig,
        classes: usize,
        device: Device,
    ) -> Result<Box<dyn TaskNet>, TrainError>;

    /// The key under which curves show [`EpochMetrics::accuracy`] (`accuracy`,
    /// `pixel_accuracy`).
    fn accuracy_key(&self) -> &'static str;

    /// The headline validation score of a run: its key among the curves and its name for
    /// people (`accuracy`, `Dice`).
    fn headline(&self) -> (&'static str, &'static str);

    /// What the network's logits are, as an exported model describes them.
    fn output_layout(&self, classes: usize) -> OutputLayout;

    /// A small synthetic data set of this task (the command line's `--synthetic`).
    fn synthetic_source(&self, size_px: u32, seed: u64) -> Box<dyn BatchSource>;

    /// The fewest classes the task trains on: two for image and pixel labels (a single
    /// class leaves nothing to tell apart); detectors find one class against background.
    fn min_classes(&self) -> usize {
        2
    }

    /// The fewest optimiser steps a new project's runs take (`TrainConfig::min_steps`):
    /// none for heads that converge in a few epochs.
    fn default_min_steps(&self) -> usize {
        0
    }

    /// Whether a new project's evaluation crop and crop strength follow its images
    /// (`train::data_defaults`); tasks whose targets follow every crop keep the recipe
    /// their heads were measured with.
    fn crops_follow_the_data(&self) -> bool {
        false
    }

    /// The metric a new project of this task monitors (its history name).
    fn default_monitor(&self) -> &'static str {
        VAL_LOSS.name
    }

    /// The monitorable metric `monitor` names, if this task reports it.
    fn monitor_key(&self, monitor: &Monitor) -> Option<MetricKey> {
        self.monitor_keys()
            .iter()
            .find(|key| key.name == monitor.name())
            .copied()
    }
}

/// The shape of a network's logits and how they become probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLayout {
    /// Logit channels per image (or per pixel).
    pub channels: usize,
    /// One set of logits per pixel (`[N, C, H, W]`) instead of per image (`[N, C]`).
    pub per_pixel: bool,
    /// How the logits become probabilities, in words.
    pub probabilities: &'static str,
}

/// The running loss and metrics of one pass over a split.
pub trait Tally {
    /// Adds a batch: logits, targets and the batch's mean loss.
    fn add(&mut self, logits: &Tensor, targets: &Tensor, mean_loss: f64) -> Result<(), TrainError>;

    /// The metrics of a training pass.
    fn train_metrics(&self) -> EpochMetrics;

    /// All metrics of a validation pass.
    fn validation_metrics(&self) -> Result<EpochMetrics, TrainError>;
}

/// The training side of `kind` (the registry).
pub fn train_task(kind: TaskKind) -> &'static dyn TrainTask {
    match kind {
        TaskKind::Classification => &ClassificationTask,
        TaskKind::Segmentation => &SegmentationTask,
        TaskKind::Detection => &DetectionTask,
    }
}

/// The metric key `name_or_alias` names among every task's monitorable metrics (a name such
/// as `val_dice` or a command-line alias such as `dice`).
pub fn find_metric_key(name_or_alias: &str) -> Option<MetricKey> {
    TaskKind::ALL
        .iter()
        .flat_map(|kind| train_task(*kind).monitor_keys())
        .find(|key| key.name == name_or_alias || key.aliases.contains(&name_or_alias))
        .copied()
}

/// Mean loss per sample of a pass.
fn mean(loss_sum: f64, samples: usize) -> f64 {
    loss_sum / samples.max(1) as f64
}

/// The batch size of `targets` (its first dimension).
fn batch_len(targets: &Tensor) -> usize {
    targets.size().first().copied().unwrap_or(0).max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_is_registered_and_lists_its_keys() {
        for kind in TaskKind::ALL {
            let task = train_task(kind);
            assert_eq!(task.kind(), kind);
            assert_eq!(task.monitor_keys()[0], VAL_LOSS);
            assert!(task.monitor_key(&Monitor::default()).is_some());
            let default = Monitor::new(task.default_monitor());
            assert!(task.monitor_key(&default).is_some(), "{kind:?}");
        }
        assert_eq!(find_metric_key("dice").map(|k| k.name), Some("val_dice"));
        assert_eq!(find_metric_key("f1").map(|k| k.name), Some("val_macro_f1"));
        assert_eq!(find_metric_key("ap").map(|k| k.name), Some("val_ap"));
        assert!(find_metric_key("bogus").is_none());
    }
}
