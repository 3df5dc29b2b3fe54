//! Evaluation: the validation pass after each epoch with the full metric set
//! ([`ClassificationMetrics`] or, for segmentation, Dice and IoU from a
//! [`SegmentationAccumulator`]), the running tallies of a pass, and evaluating a saved run.

use std::path::PathBuf;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::TrainError;
use super::cache::CachedEmbeddings;
use super::config::{SEG_IGNORE_INDEX, TaskKind, TrainConfig, WeightsSpec};
use super::engine::{Loop, feed};
use super::events::{CheckpointKind, EpochMetrics, EventSink};
use super::metrics::{ClassificationMetrics, SegmentationAccumulator};
use super::net::Net;
use super::run::RunDir;
use super::sampler::fixed_plan;
use super::segmentation::pixel_confusion;
use super::source::{BatchSource, Split};
use super::worker::Control;

impl Loop<'_> {
    /// The validation pass with all metrics of the task; `None` when stopped.
    pub(super) fn evaluate(
        &mut self,
        source: &mut dyn BatchSource,
        features: Option<&CachedEmbeddings>,
        mut control: Option<(&mut dyn EventSink, &mut Control)>,
    ) -> Result<Option<EpochMetrics>, TrainError> {
        let plan = fixed_plan(
            source.labels(Split::Validation).len(),
            self.config.batch_size,
        );
        let mut tally = Tally::new(self.config.task, source.num_classes()).collecting();
        for batch in feed(source, features, Split::Validation, plan, false, 0) {
            if let Some((sink, control)) = control.as_mut()
                && control.should_stop(*sink)
            {
                return Ok(None);
            }
            let (inputs, targets, is_embedding, _) = batch?;
            let inputs = self.prepare(&inputs)?;
            let targets = targets.f_to_device(self.device)?;
            let model = &mut self.model;
            let (logits, loss) = tch::no_grad(|| -> Result<_, TrainError> {
                let logits = match &mut *model {
                    Net::Classifier(c) if is_embedding => c.head_logits(&inputs, false)?,
                    model => model.logits(&inputs, false, false)?,
                };
                // Plain loss: no class weights, no label smoothing.
                let loss = model.loss(&logits, &targets, None, 0.0)?;
                Ok((logits, loss.f_double_value(&[])?))
            })?;
            tally.add(&logits, &targets, loss)?;
        }
        Ok(Some(tally.validation_metrics()?))
    }
}

/// Running loss and metrics of a pass. Classification counts correct items and, when
/// collecting (validation), keeps the class probabilities for [`ClassificationMetrics`];
/// segmentation streams pixel confusion counts.
pub(super) struct Tally {
    loss_sum: f64,
    samples: usize,
    correct: u64,
    classes: usize,
    probabilities: Option<(Vec<f32>, Vec<i64>)>,
    pixels: Option<SegmentationAccumulator>,
}

impl Tally {
    /// An empty tally for `task` with `classes` classes.
    pub(super) fn new(task: TaskKind, classes: usize) -> Self {
        Self {
            loss_sum: 0.0,
            samples: 0,
            correct: 0,
            classes,
            probabilities: None,
            pixels: (task == TaskKind::Segmentation).then(|| SegmentationAccumulator::new(classes)),
        }
    }

    /// Also keeps class probabilities and labels (classification validation).
    pub(super) fn collecting(mut self) -> Self {
        if self.pixels.is_none() {
            self.probabilities = Some((Vec::new(), Vec::new()));
        }
        self
    }

    /// Adds a batch: logits, targets and the batch's mean loss.
    pub(super) fn add(
        &mut self,
        logits: &Tensor,
        targets: &Tensor,
        mean_loss: f64,
    ) -> Result<(), TrainError> {
        let n = targets.size().first().copied().unwrap_or(0) as usize;
        self.loss_sum += mean_loss * n as f64;
        self.samples += n;
        if let Some(pixels) = self.pixels.as_mut() {
            let counts = pixel_confusion(logits, targets, Some(SEG_IGNORE_INDEX))?;
            pixels.add_confusion(&counts)?;
            return Ok(());
        }
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

    fn mean_loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }

    /// Loss and accuracy (for segmentation also Dice and IoU) of a training pass.
    pub(super) fn train_metrics(&self) -> EpochMetrics {
        match &self.pixels {
            Some(pixels) => {
                EpochMetrics::from_segmentation(self.mean_loss(), pixels.metrics(Some(0)))
            }
            None => EpochMetrics {
                loss: self.mean_loss(),
                accuracy: self.correct as f64 / self.samples.max(1) as f64,
                ..EpochMetrics::default()
            },
        }
    }

    /// All metrics of a validation pass.
    pub(super) fn validation_metrics(&self) -> Result<EpochMetrics, TrainError> {
        match &self.probabilities {
            Some((probabilities, labels)) => {
                let metrics = ClassificationMetrics::compute(probabilities, labels, self.classes)?;
                Ok(EpochMetrics::from_classification(self.mean_loss(), metrics))
            }
            None => Ok(self.train_metrics()),
        }
    }
}

/// The result of evaluating a run's checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// The run id.
    pub run_id: String,
    /// The checkpoint used (`best`, else `last`).
    pub checkpoint: PathBuf,
    /// The epoch it was saved after.
    pub epochs_done: usize,
    /// Validation metrics (with the confusion matrix and ROC curves for classification).
    pub validation: EpochMetrics,
}

/// Evaluates run `run_id`'s best checkpoint (or its last) on the validation split.
pub fn evaluate_run(
    project_dir: &std::path::Path,
    run_id: &str,
    source: &mut dyn BatchSource,
    device: Device,
) -> Result<EvalReport, TrainError> {
    let (run, config) = RunDir::open(project_dir, run_id)?;
    let (kind, (tensors, state)) = match run.load_checkpoint(CheckpointKind::Best) {
        Ok(found) => (CheckpointKind::Best, found),
        Err(_) => (
            CheckpointKind::Last,
            run.load_checkpoint(CheckpointKind::Last)?,
        ),
    };
    let checkpoint = run.checkpoint_path(kind);
    super::cpu_runtime::prepare_cpu(config.threads());
    let mut lp = Loop::new(
        TrainConfig {
            weights: WeightsSpec::Random,
            ..config
        },
        device,
        source,
        &run,
    )?;
    lp.model.load_model_tensors(&tensors, &checkpoint)?;
    let validation = lp
        .evaluate(source, None, None)?
        .ok_or_else(|| TrainError::Config("evaluation was stopped".into()))?;
    Ok(EvalReport {
        run_id: run.id.clone(),
        checkpoint,
        epochs_done: state.epochs_done,
        validation,
    })
}
