//! Classification as a training task: cross-entropy (with optional class weights and label
//! smoothing), accuracy while training, and the full [`ClassificationMetrics`] of a
//! validation pass.

use tch::{Device, Kind, Reduction, Tensor};

use super::{MetricKey, OutputLayout, Tally, TrainTask, VAL_ACCURACY, VAL_LOSS, batch_len, mean};
use crate::task::TaskKind;
use crate::train::TrainError;
use crate::train::catalogue::ACCURACY;
use crate::train::classifier::Classifier;
use crate::train::config::TrainConfig;
use crate::train::events::EpochMetrics;
use crate::train::metrics::ClassificationMetrics;
use crate::train::net::TaskNet;
use crate::train::source::{BatchSource, SyntheticSource};

/// One class per image.
pub struct ClassificationTask;

const KEYS: &[MetricKey] = &[
    VAL_LOSS,
    VAL_ACCURACY,
    MetricKey {
        name: "val_balanced_accuracy",
        label: "balanced accuracy",
        aliases: &["balanced-accuracy"],
        higher_is_better: true,
    },
    MetricKey {
        name: "val_macro_f1",
        label: "macro F1",
        aliases: &["f1", "macro-f1"],
        higher_is_better: true,
    },
    MetricKey {
        name: "val_macro_auc",
        label: "macro ROC-AUC",
        aliases: &["auc", "macro-auc"],
        higher_is_better: true,
    },
];

impl TrainTask for ClassificationTask {
    fn crops_follow_the_data(&self) -> bool {
        true
    }

    fn kind(&self) -> TaskKind {
        TaskKind::Classification
    }

    fn build_net(
        &self,
        config: &TrainConfig,
        classes: usize,
        device: Device,
    ) -> Result<Box<dyn TaskNet>, TrainError> {
        Ok(Box::new(Classifier::build(config, classes, device)?))
    }

    fn accuracy_key(&self) -> &'static str {
        ACCURACY
    }

    fn headline(&self) -> (&'static str, &'static str) {
        (ACCURACY, "accuracy")
    }

    fn output_layout(&self, classes: usize) -> OutputLayout {
        OutputLayout {
            channels: classes,
            per_pixel: false,
            probabilities: "softmax over dim 1",
        }
    }

    fn synthetic_source(&self, size_px: u32, seed: u64) -> Box<dyn BatchSource> {
        Box::new(SyntheticSource::two_class(64, 32, size_px, seed))
    }

    fn monitor_keys(&self) -> &'static [MetricKey] {
        KEYS
    }

    fn validate(&self, _config: &TrainConfig) -> Result<(), TrainError> {
        Ok(())
    }

    fn loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        class_weights: Option<&Tensor>,
        label_smoothing: f64,
    ) -> Result<Tensor, TrainError> {
        Ok(logits.f_cross_entropy_loss(
            targets,
            class_weights,
            Reduction::Mean,
            -100,
            label_smoothing,
        )?)
    }

    fn tally(&self, classes: usize, collecting: bool) -> Box<dyn Tally> {
        Box::new(ClassificationTally {
            loss_sum: 0.0,
            samples: 0,
            correct: 0,
            classes,
            probabilities: collecting.then(|| (Vec::new(), Vec::new())),
        })
    }
}

/// Counts correct items and, when collecting (validation), keeps the class probabilities
/// and labels for [`ClassificationMetrics`].
struct ClassificationTally {
    loss_sum: f64,
    samples: usize,
    correct: u64,
    classes: usize,
    probabilities: Option<(Vec<f32>, Vec<i64>)>,
}

impl Tally for ClassificationTally {
    fn add(&mut self, logits: &Tensor, targets: &Tensor, mean_loss: f64) -> Result<(), TrainError> {
        let n = batch_len(targets);
        self.loss_sum += mean_loss * n as f64;
        self.samples += n;
        let correct = logits
            .f_argmax(-1, false)?
            .f_eq_tensor(targets)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
        self.correct += correct.max(0) as u64;
        if let Some((probabilities, labels)) = self.probabilities.as_mut() {
            let p = logits
                .f_softmax(-1, Kind::Float)?
                .f_to_device(Device::Cpu)?
                .f_flatten(0, -1)?;
            probabilities.extend(Vec::<f32>::try_from(&p)?);
            let t = targets.f_to_device(Device::Cpu)?.f_to_kind(Kind::Int64)?;
            labels.extend(Vec::<i64>::try_from(&t)?);
        }
        Ok(())
    }

    fn train_metrics(&self) -> EpochMetrics {
        EpochMetrics {
            loss: mean(self.loss_sum, self.samples),
            accuracy: self.correct as f64 / self.samples.max(1) as f64,
            ..EpochMetrics::default()
        }
    }

    fn validation_metrics(&self) -> Result<EpochMetrics, TrainError> {
        match &self.probabilities {
            Some((probabilities, labels)) => {
                let metrics = ClassificationMetrics::compute(probabilities, labels, self.classes)?;
                Ok(EpochMetrics::from_classification(
                    mean(self.loss_sum, self.samples),
                    metrics,
                ))
            }
            None => Ok(self.train_metrics()),
        }
    }
}
