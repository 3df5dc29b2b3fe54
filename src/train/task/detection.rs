//! Object detection as a training task: the "objects as points" loss, and COCO's box
//! metrics (AP@[.5:.95], AP@.5, AP@.75, ...) from the decoded detections of every image of a
//! pass against its boxes, computed as pycocotools' `COCOeval` computes them.

use tch::{Device, Tensor};

use super::{MetricKey, OutputLayout, Tally, TrainTask, VAL_LOSS, batch_len, mean};
use crate::task::TaskKind;
use crate::train::TrainError;
use crate::train::coco_eval::{self, Detection, GroundTruth};
use crate::train::config::{Balancing, TrainConfig};
use crate::train::det_source::SyntheticShapes;
use crate::train::detection::{TOP_K, decode, detections, total_loss, truth_boxes};
use crate::train::detector::Detector;
use crate::train::events::EpochMetrics;

/// The fewest optimiser steps of a new detection project's runs.
pub const DEFAULT_MIN_STEPS: usize = 200;
use crate::train::net::TaskNet;
use crate::train::source::BatchSource;

pub use crate::train::events::{AP, AP50, AP75, AR100};

/// Boxes around objects, each with a class.
pub struct DetectionTask;

const KEYS: &[MetricKey] = &[
    VAL_LOSS,
    MetricKey {
        name: "val_ap",
        label: "AP@[.5:.95]",
        aliases: &["ap", "map"],
        higher_is_better: true,
    },
    MetricKey {
        name: "val_ap50",
        label: "AP@.5",
        aliases: &["ap50"],
        higher_is_better: true,
    },
];

impl TrainTask for DetectionTask {
    fn kind(&self) -> TaskKind {
        TaskKind::Detection
    }

    fn build_net(
        &self,
        config: &TrainConfig,
        classes: usize,
        device: Device,
    ) -> Result<Box<dyn TaskNet>, TrainError> {
        Ok(Box::new(Detector::build(config, classes, device)?))
    }

    fn accuracy_key(&self) -> &'static str {
        AP50
    }

    fn headline(&self) -> (&'static str, &'static str) {
        (AP, "AP@[.5:.95]")
    }

    fn output_layout(&self, classes: usize) -> OutputLayout {
        OutputLayout {
            channels: classes + 4,
            per_pixel: true,
            probabilities: "channels 0..C are class heatmap logits (sigmoid) at stride 4, then \
                            box width, height and centre offset x, y in stride-4 cells",
        }
    }

    fn synthetic_source(&self, size_px: u32, seed: u64) -> Box<dyn BatchSource> {
        Box::new(SyntheticShapes::new(96, 32, size_px, seed))
    }

    fn monitor_keys(&self) -> &'static [MetricKey] {
        KEYS
    }

    /// One class is enough: its heatmap separates objects from background.
    fn min_classes(&self) -> usize {
        1
    }

    /// A detection head's heatmaps and box sizes start from zero: measured on the nuclei and
    /// tree-crown demos, 10 to 20 steps leave AP@.5 at 0, 100 to 200 reach most of it
    /// (`docs/detection_reference.md`).
    fn default_min_steps(&self) -> usize {
        DEFAULT_MIN_STEPS
    }

    /// AP@[.5:.95], as COCO ranks detectors.
    fn default_monitor(&self) -> &'static str {
        "val_ap"
    }

    fn validate(&self, config: &TrainConfig) -> Result<(), TrainError> {
        let bad = |what: &str| Err(TrainError::Config(what.to_owned()));
        if config.balancing != Balancing::None || config.label_smoothing != 0.0 {
            return bad("balancing and label smoothing are for classification only");
        }
        if !config.input_size_px.is_multiple_of(32) {
            return bad("detection needs an input size that is a multiple of 32 px");
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
        total_loss(logits, targets)
    }

    fn tally(&self, classes: usize, _collecting: bool) -> Box<dyn Tally> {
        Box::new(DetectionTally {
            loss_sum: 0.0,
            samples: 0,
            classes,
            truths: Vec::new(),
            found: Vec::new(),
        })
    }
}

/// Collects every image's boxes and detections of a pass for COCO's metrics.
struct DetectionTally {
    loss_sum: f64,
    samples: usize,
    classes: usize,
    truths: Vec<GroundTruth>,
    found: Vec<Detection>,
}

fn xywh(b: crate::data::boxes::PixelBox) -> [f64; 4] {
    b.to_xywh().map(f64::from)
}

impl Tally for DetectionTally {
    fn add(&mut self, logits: &Tensor, targets: &Tensor, mean_loss: f64) -> Result<(), TrainError> {
        let n = batch_len(targets);
        let first = self.samples as u64;
        self.loss_sum += mean_loss * n as f64;
        self.samples += n;
        let truths = truth_boxes(targets)?;
        let decoded = tch::no_grad(|| decode(&logits.detach(), TOP_K))?;
        let found = detections(&decoded, 0.0)?;
        for (i, (truths, found)) in truths.iter().zip(&found).enumerate() {
            let image = first + i as u64;
            self.truths.extend(truths.iter().map(|t| GroundTruth {
                image,
                class: t.class,
                bbox_xywh: xywh(t.bbox),
                area: f64::from(t.bbox.area()),
                crowd: t.crowd,
            }));
            self.found.extend(found.iter().map(|d| Detection {
                image,
                class: d.class,
                bbox_xywh: xywh(d.bbox),
                score: f64::from(d.score),
            }));
        }
        Ok(())
    }

    /// The loss and COCO's metrics (the loss alone if the boxes cannot be evaluated, which
    /// a training pass reports without failing).
    fn train_metrics(&self) -> EpochMetrics {
        self.validation_metrics().unwrap_or_else(|_| EpochMetrics {
            loss: mean(self.loss_sum, self.samples),
            ..EpochMetrics::default()
        })
    }

    fn validation_metrics(&self) -> Result<EpochMetrics, TrainError> {
        let images: Vec<u64> = (0..self.samples as u64).collect();
        let result = coco_eval::evaluate(&images, self.classes, &self.truths, &self.found)
            .map_err(|e| TrainError::Source(e.to_string()))?;
        Ok(EpochMetrics::from_detection(
            mean(self.loss_sum, self.samples),
            &result.stats,
        ))
    }
}
