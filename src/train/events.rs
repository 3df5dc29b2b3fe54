//! Typed events from the training loop and the sinks that receive them: a `Vec` (tests), a
//! bounded channel with a repaint callback (the GUI); the CLI's progress bar lives in
//! `cli::train`. Events are plain data (no tensors) so they cross threads and serialise as
//! one JSON object per line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Sender, TrySendError};
use serde::{Deserialize, Serialize};

use super::metrics::{ClassificationMetrics, SegmentationMetrics};

/// Key in [`EpochMetrics::extra`]: balanced accuracy (classification).
pub const BALANCED_ACCURACY: &str = "balanced_accuracy";
/// Key in [`EpochMetrics::extra`]: macro F1 (classification).
pub const MACRO_F1: &str = "macro_f1";
/// Key in [`EpochMetrics::extra`]: macro one-vs-rest ROC-AUC (classification, when defined).
pub const MACRO_AUC: &str = "macro_auc";
/// Key in [`EpochMetrics::extra`]: foreground Dice (binary) or mean Dice (segmentation).
pub const DICE: &str = "dice";
/// Key in [`EpochMetrics::extra`]: foreground IoU (binary) or mean IoU (segmentation).
pub const IOU: &str = "iou";

/// Key in [`EpochMetrics::extra`]: COCO AP@[.5:.95] (detection).
pub const AP: &str = "ap";
/// Key in [`EpochMetrics::extra`]: COCO AP@.5 (detection; also the pass's `accuracy`).
pub const AP50: &str = "ap50";
/// Key in [`EpochMetrics::extra`]: COCO AP@.75 (detection).
pub const AP75: &str = "ap75";
/// Key in [`EpochMetrics::extra`]: COCO AR@100 (detection).
pub const AR100: &str = "ar100";

/// Loss, accuracy and further named metrics of one pass over a split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Mean loss per sample.
    pub loss: f64,
    /// Fraction of correctly classified samples (pixels, for segmentation).
    pub accuracy: f64,
    /// Further scalar metrics by name (see the key constants of this module), for plots and
    /// the monitor.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
    /// The full classification metrics of a validation pass (without the per-cell item
    /// lists; in the history also without ROC curves, see [`EpochMetrics::for_history`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Box<ClassificationMetrics>>,
    /// The segmentation metrics of a validation pass (Dice and IoU per class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Box<SegmentationMetrics>>,
}

impl EpochMetrics {
    /// Loss and accuracy with the scalar summary and the full classification metrics.
    pub fn from_classification(loss: f64, mut metrics: ClassificationMetrics) -> Self {
        metrics.strip_items();
        let mut extra = BTreeMap::new();
        extra.insert(BALANCED_ACCURACY.to_owned(), metrics.balanced_accuracy);
        extra.insert(MACRO_F1.to_owned(), metrics.macro_f1);
        if let Some(auc) = metrics.macro_roc_auc {
            extra.insert(MACRO_AUC.to_owned(), auc);
        }
        Self {
            loss,
            accuracy: metrics.accuracy,
            extra,
            classification: Some(Box::new(metrics)),
            segmentation: None,
        }
    }

    /// Loss and pixel accuracy with Dice and IoU (foreground for binary tasks, else the mean
    /// over the non-background classes).
    pub fn from_segmentation(loss: f64, metrics: SegmentationMetrics) -> Self {
        let mut extra = BTreeMap::new();
        let dice = metrics.foreground_dice.or(metrics.mean_dice);
        let iou = metrics.foreground_iou.or(metrics.mean_iou);
        for (key, value) in [(DICE, dice), (IOU, iou)] {
            if let Some(value) = value {
                extra.insert(key.to_owned(), value);
            }
        }
        Self {
            loss,
            accuracy: metrics.pixel_accuracy,
            extra,
            classification: None,
            segmentation: Some(Box::new(metrics)),
        }
    }

    /// Loss and COCO's box metrics from the 12 `stats` of `COCOeval.summarize()` (AP@.5 as
    /// the accuracy; pycocotools' -1 for "no ground truth" becomes 0).
    pub fn from_detection(loss: f64, stats: &[f64; 12]) -> Self {
        let value = |i: usize| stats[i].max(0.0);
        let mut extra = BTreeMap::new();
        for (key, i) in [(AP, 0), (AP50, 1), (AP75, 2), (AR100, 8)] {
            extra.insert(key.to_owned(), value(i));
        }
        Self {
            loss,
            accuracy: value(1),
            extra,
            classification: None,
            segmentation: None,
        }
    }

    /// A copy for the append-only history: ROC curves (one point per distinct score, so as
    /// long as the validation set) are left out; their AUCs stay.
    pub fn for_history(&self) -> Self {
        let mut out = self.clone();
        if let Some(c) = out.classification.as_mut() {
            c.strip_items();
            c.roc.clear();
        }
        out
    }
}

/// Which checkpoint was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// The end of the latest epoch (model, optimiser and loop state; used to resume).
    Last,
    /// The best epoch so far by the monitored metric.
    Best,
}

/// What the training loop reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// The run is set up; `first_epoch` > 0 when it resumes.
    Started {
        run_id: String,
        run_dir: PathBuf,
        /// The run's task (what its metrics are).
        task: crate::task::TaskKind,
        first_epoch: usize,
        epochs: usize,
        steps_per_epoch: usize,
    },
    /// Embeddings of the frozen backbone were computed (`cached`: read from the cache).
    EmbeddingsReady {
        split: String,
        samples: usize,
        cached: bool,
        path: PathBuf,
        /// "bfloat16" or "float32" (see [`crate::model::cpu_bf16`]).
        #[serde(default)]
        precision: String,
        /// Why the computed embeddings could not be stored in the cache (naming the file).
        #[serde(default)]
        not_stored: Option<String>,
    },
    /// One optimiser step.
    Step {
        epoch: usize,
        step: usize,
        loss: f64,
        lr: f64,
        images_per_sec: f64,
    },
    /// One finished epoch (0-based) with its train and validation metrics.
    Epoch {
        epoch: usize,
        train: EpochMetrics,
        validation: EpochMetrics,
        improved: bool,
    },
    /// A checkpoint was written.
    CheckpointSaved {
        epoch: usize,
        kind: CheckpointKind,
        path: PathBuf,
    },
    /// A training image could not be loaded (it broke after the data set was scanned); the
    /// step went on without it. `reason` names the file.
    ImageSkipped { epoch: usize, reason: String },
    /// The loop is paused (waits for resume or stop).
    Paused,
    /// The loop goes on after a pause.
    Resumed,
    /// The run ended: all epochs done, stopped early, or stopped by the user.
    Finished {
        outcome: String,
        epochs_done: usize,
        best_epoch: Option<usize>,
        best_value: Option<f64>,
    },
    /// The run failed; the reason is meant for the user.
    Failed { reason: String },
}

/// Receives the loop's events. `send` must not block for long: a sink may drop
/// [`TrainEvent::Step`] events when its consumer lags, but never the others.
pub trait EventSink: Send {
    /// Delivers one event.
    fn send(&mut self, event: TrainEvent);
}

/// Collects events in memory (tests); clones share the same list.
#[derive(Clone, Debug, Default)]
pub struct VecSink {
    events: Arc<Mutex<Vec<TrainEvent>>>,
}

impl VecSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events received so far.
    pub fn events(&self) -> Vec<TrainEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for VecSink {
    fn send(&mut self, event: TrainEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

/// Sends events on a bounded channel and calls `repaint` after each (the GUI passes
/// `ctx.request_repaint`). Step events are dropped when the channel is full; the others wait.
pub struct ChannelSink {
    sender: Sender<TrainEvent>,
    repaint: Box<dyn Fn() + Send>,
}

impl ChannelSink {
    /// A sink over `sender`, calling `repaint` after each delivered event.
    pub fn new(sender: Sender<TrainEvent>, repaint: impl Fn() + Send + 'static) -> Self {
        Self {
            sender,
            repaint: Box::new(repaint),
        }
    }
}

impl EventSink for ChannelSink {
    fn send(&mut self, event: TrainEvent) {
        let delivered = if matches!(event, TrainEvent::Step { .. }) {
            match self.sender.try_send(event) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            }
        } else {
            self.sender.send(event).is_ok()
        };
        if delivered {
            (self.repaint)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_sink_drops_steps_when_full_but_keeps_the_rest() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let repaints = Arc::new(Mutex::new(0));
        let counter = repaints.clone();
        let mut sink = ChannelSink::new(tx, move || *counter.lock().unwrap() += 1);
        let step = TrainEvent::Step {
            epoch: 0,
            step: 0,
            loss: 1.0,
            lr: 0.1,
            images_per_sec: 10.0,
        };
        sink.send(step.clone());
        sink.send(step.clone()); // dropped: channel full
        assert_eq!(rx.try_recv().unwrap(), step);
        sink.send(TrainEvent::Paused);
        assert_eq!(rx.try_recv().unwrap(), TrainEvent::Paused);
        assert_eq!(*repaints.lock().unwrap(), 2);
        let json = serde_json::to_string(&TrainEvent::Paused).unwrap();
        assert_eq!(json, r#"{"event":"paused"}"#);
    }
}
