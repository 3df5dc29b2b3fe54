//! Segmentation as a training task: Dice + cross-entropy (mask pixels equal to
//! [`SEG_IGNORE_INDEX`] left out), and pixel accuracy, Dice and IoU from streamed pixel
//! confusion counts.

use tch::{Device, Tensor};

use super::{MetricKey, OutputLayout, Tally, TrainTask, VAL_ACCURACY, VAL_LOSS, batch_len, mean};
use crate::task::TaskKind;
use crate::train::TrainError;
use crate::train::catalogue::PIXEL_ACCURACY;
use crate::train::config::{Balancing, SEG_IGNORE_INDEX, Strategy, TrainConfig};
use crate::train::events::DICE;
use crate::train::events::EpochMetrics;
use crate::train::metrics::SegmentationAccumulator;
use crate::train::net::TaskNet;
use crate::train::seg_source::SyntheticDisks;
use crate::train::segmentation::{SegLossConfig, pixel_confusion, segmentation_loss};
use crate::train::segmenter::Segmenter;
use crate::train::source::BatchSource;

/// One class per pixel (the background is class 0).
pub struct SegmentationTask;

const KEYS: &[MetricKey] = &[
    VAL_LOSS,
    VAL_ACCURACY,
    MetricKey {
        name: "val_dice",
        label: "Dice",
        aliases: &["dice"],
        higher_is_better: true,
    },
];

impl TrainTask for SegmentationTask {
    fn kind(&self) -> TaskKind {
        TaskKind::Segmentation
    }

    fn build_net(
        &self,
        config: &TrainConfig,
        classes: usize,
        device: Device,
    ) -> Result<Box<dyn TaskNet>, TrainError> {
        Ok(Box::new(Segmenter::build(config, classes, device)?))
    }

    fn accuracy_key(&self) -> &'static str {
        PIXEL_ACCURACY
    }

    fn headline(&self) -> (&'static str, &'static str) {
        (DICE, "Dice")
    }

    fn output_layout(&self, classes: usize) -> OutputLayout {
        if classes == 2 {
            OutputLayout {
                channels: 1,
                per_pixel: true,
                probabilities: "sigmoid of the one channel is the foreground probability; \
                                background = 1 - p",
            }
        } else {
            OutputLayout {
                channels: classes,
                per_pixel: true,
                probabilities: "softmax over dim 1",
            }
        }
    }

    fn synthetic_source(&self, size_px: u32, seed: u64) -> Box<dyn BatchSource> {
        Box::new(SyntheticDisks::new(48, 16, size_px, seed))
    }

    fn monitor_keys(&self) -> &'static [MetricKey] {
        KEYS
    }

    fn validate(&self, config: &TrainConfig) -> Result<(), TrainError> {
        let bad = |what: &str| Err(TrainError::Config(what.to_owned()));
        if config.strategy == Strategy::LinearProbe {
            return bad("segmentation trains a decoder: use finetune or staged");
        }
        if config.balancing != Balancing::None || config.label_smoothing != 0.0 {
            return bad("balancing and label smoothing are for classification only");
        }
        Ok(())
    }

    fn loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _class_weights: Option<&Tensor>,
        _label_smoothing: f64,
    ) -> Result<Tensor, TrainError> {
        let config = SegLossConfig {
            ignore_index: Some(SEG_IGNORE_INDEX),
            ..SegLossConfig::default()
        };
        Ok(segmentation_loss(logits, targets, &config)?.total)
    }

    fn tally(&self, classes: usize, _collecting: bool) -> Box<dyn Tally> {
        Box::new(SegmentationTally {
            loss_sum: 0.0,
            samples: 0,
            pixels: SegmentationAccumulator::new(classes),
        })
    }
}

/// Streams pixel confusion counts.
struct SegmentationTally {
    loss_sum: f64,
    samples: usize,
    pixels: SegmentationAccumulator,
}

impl Tally for SegmentationTally {
    fn add(&mut self, logits: &Tensor, targets: &Tensor, mean_loss: f64) -> Result<(), TrainError> {
        let n = batch_len(targets);
        self.loss_sum += mean_loss * n as f64;
        self.samples += n;
        let counts = pixel_confusion(logits, targets, Some(SEG_IGNORE_INDEX))?;
        self.pixels.add_confusion(&counts)?;
        Ok(())
    }

    fn train_metrics(&self) -> EpochMetrics {
        EpochMetrics::from_segmentation(
            mean(self.loss_sum, self.samples),
            self.pixels.metrics(Some(0)),
        )
    }

    fn validation_metrics(&self) -> Result<EpochMetrics, TrainError> {
        Ok(self.train_metrics())
    }
}
