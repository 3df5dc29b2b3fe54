//! Evaluation: the validation pass after each epoch with the full metric set
//! (the task's [`super::task::Tally`]), and evaluating a saved run.

use std::path::PathBuf;

use serde::Serialize;
use tch::Device;

use super::TrainError;
use super::cache::CachedEmbeddings;
use super::config::{TrainConfig, WeightsSpec};
use super::engine::{Loop, feed};
use super::events::{CheckpointKind, EpochMetrics, EventSink};
use super::run::RunDir;
use super::sampler::fixed_plan;
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
        let mut tally = self.task.tally(source.num_classes(), true);
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
            let task = self.task;
            let (logits, loss) = tch::no_grad(|| -> Result<_, TrainError> {
                let logits = model.logits_of_batch(&inputs, is_embedding, false, false)?;
                // Plain loss: no class weights, no label smoothing.
                let loss = task.loss(&logits, &targets, None, 0.0)?;
                Ok((logits, loss.f_double_value(&[])?))
            })?;
            tally.add(&logits, &targets, loss)?;
        }
        Ok(Some(tally.validation_metrics()?))
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
