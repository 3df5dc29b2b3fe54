//! The training loop: epochs of optimiser steps over a [`BatchSource`] (or, for the linear
//! probe, over cached embeddings), validation after each epoch (see [`super::eval`]), metric
//! history, best and last checkpoints, early stopping, NaN/inf detection, and resume from
//! the last checkpoint. Classification and segmentation share the loop; they differ in the
//! network ([`Net`]), the loss and the validation metrics.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Tensor};

use super::TrainError;
use super::cache::CachedEmbeddings;
use super::classifier::{Classifier, channels_last};
use super::config::{Balancing, Strategy, TrainConfig};
use super::events::{CheckpointKind, EpochMetrics, EventSink, TrainEvent};
use super::frozen_pass::FrozenPass;
use super::net::Net;
use super::optim::Optimizer;
use super::run::{CheckpointState, EpochRecord, RunDir};
use super::sampler::{epoch_seed, inverse_frequency_weights, train_plan};
use super::schedule::lr_factor;
use super::source::{BatchSource, Split};
use super::status::{RunState, RunStatus};
use super::task::{TrainTask, train_task};
use super::worker::{Control, JobSpec};

/// How a run ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainOutcome {
    /// All epochs ran.
    Completed,
    /// Early stopping ended it.
    EarlyStopped,
    /// The user stopped it (resumable from its last checkpoint).
    Stopped,
}

/// The result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    /// The run id.
    pub run_id: String,
    /// The run folder.
    pub run_dir: PathBuf,
    /// How it ended.
    pub outcome: TrainOutcome,
    /// Epochs completed (including those before a resume).
    pub epochs_done: usize,
    /// Best epoch and monitored value.
    pub best: Option<(usize, f64)>,
    /// Forward passes through the backbone during this job.
    pub backbone_passes: usize,
    /// Validation metrics of the last epoch run.
    pub last_validation: Option<EpochMetrics>,
}

/// Trains (or resumes) a run, reporting to `sink`; ends with a `Finished` or `Failed` event.
pub fn train(
    spec: &JobSpec,
    source: &mut dyn BatchSource,
    sink: &mut dyn EventSink,
    control: &mut Control,
) -> Result<TrainSummary, TrainError> {
    let mut run_slot = None;
    match train_inner(spec, source, sink, control, &mut run_slot) {
        Ok(summary) => {
            if let Some((run, config)) = &run_slot {
                let state = match summary.outcome {
                    TrainOutcome::Completed => RunState::Finished,
                    TrainOutcome::EarlyStopped => RunState::EarlyStopped,
                    TrainOutcome::Stopped => RunState::Stopped,
                };
                RunStatus::new(run, config, state, summary.epochs_done, summary.best).save(run)?;
            }
            sink.send(TrainEvent::Finished {
                outcome: serde_json::to_value(summary.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                epochs_done: summary.epochs_done,
                best_epoch: summary.best.map(|b| b.0),
                best_value: summary.best.map(|b| b.1),
            });
            Ok(summary)
        }
        Err(e) => {
            if let Some((run, config)) = &run_slot {
                run.log(&format!("failed: {e}"));
                let (epochs_done, best) = run
                    .load_checkpoint_state(CheckpointKind::Last)
                    .map_or((0, None), |s| (s.epochs_done, s.best));
                let state = RunState::Failed {
                    reason: e.to_string(),
                };
                // Best effort: the job's own error is the one to report.
                let _ = RunStatus::new(run, config, state, epochs_done, best).save(run);
            }
            sink.send(TrainEvent::Failed {
                reason: e.to_string(),
            });
            Err(e)
        }
    }
}

/// Optimiser steps in one epoch of `source`'s training images.
fn steps_per_epoch(source: &dyn BatchSource, batch_size: usize) -> usize {
    train_plan(&source.labels(Split::Train), batch_size, 0, false).len()
}

/// The state of one job's loop.
pub(super) struct Loop<'a> {
    pub(super) config: TrainConfig,
    pub(super) device: Device,
    pub(super) model: Net,
    /// The training side of the config's task.
    pub(super) task: &'static dyn TrainTask,
    optimizer: Optimizer,
    phase: Option<bool>,
    class_weights: Option<Tensor>,
    pub(super) channels_last: bool,
    state: CheckpointState,
    run: &'a RunDir,
    total_steps: usize,
}

fn train_inner(
    spec: &JobSpec,
    source: &mut dyn BatchSource,
    sink: &mut dyn EventSink,
    control: &mut Control,
    run_slot: &mut Option<(RunDir, TrainConfig)>,
) -> Result<TrainSummary, TrainError> {
    let (run, config) = match &spec.resume {
        Some(id) => RunDir::open(&spec.project_dir, id)?,
        None => {
            spec.config.validate()?;
            // The run records the epochs it trains, `min_steps` resolved on this data.
            let mut config = spec.config.clone();
            config.epochs = config.epochs_for(steps_per_epoch(source, config.batch_size));
            let run = RunDir::create(&spec.project_dir, &config, &source.split_manifest())?;
            (run, config)
        }
    };
    // Held for the whole job; taken before `run_slot` is set, so that a refused job leaves
    // the status of the job that holds it alone.
    let _lock = run.lock("training")?;
    let (run, _) = &*run_slot.insert((run, config.clone()));
    config.validate()?;
    super::cpu_runtime::prepare_cpu(config.threads());
    let mut lp = Loop::new(config, spec.device, source, run)?;
    if spec.resume.is_some() {
        lp.restore()?;
    }
    let first_epoch = lp.state.epochs_done;
    lp.save_status()?;
    run.log(&format!(
        "start at epoch {first_epoch} of {}: {:?}",
        lp.config.epochs, lp.config.strategy
    ));
    // The probe's first epoch includes computing (or reading) the embeddings.
    let setup_started = Instant::now();
    let features = match lp.config.strategy {
        Strategy::LinearProbe => match probe_features(&mut lp, spec, source, sink, control)? {
            Some(f) => Some(f),
            None => return Ok(lp.summary(TrainOutcome::Stopped, None)),
        },
        _ => None,
    };
    let steps_per_epoch = lp.steps_per_epoch(source);
    sink.send(TrainEvent::Started {
        run_id: run.id.clone(),
        run_dir: run.dir.clone(),
        task: lp.config.task,
        first_epoch,
        epochs: lp.config.epochs,
        steps_per_epoch,
    });
    let mut last_validation = None;
    for epoch in first_epoch..lp.config.epochs {
        let started = if epoch == first_epoch && features.is_some() {
            setup_started
        } else {
            Instant::now()
        };
        let Some(train) = lp.train_epoch(epoch, source, features.as_ref(), sink, control)? else {
            return Ok(lp.summary(TrainOutcome::Stopped, last_validation));
        };
        let Some(validation) = lp.evaluate(
            source,
            features.as_ref().map(|f| &f.1),
            Some((sink, control)),
        )?
        else {
            return Ok(lp.summary(TrainOutcome::Stopped, last_validation));
        };
        let early_stop = lp.finish_epoch(epoch, train, validation.clone(), started, sink)?;
        last_validation = Some(validation);
        if early_stop {
            run.log(&format!("early stop after epoch {epoch}"));
            return Ok(lp.summary(TrainOutcome::EarlyStopped, last_validation));
        }
    }
    run.log("finished");
    Ok(lp.summary(TrainOutcome::Completed, last_validation))
}

/// Embeddings of both splits from the cache, computed on a miss (`None`: stopped).
fn probe_features(
    lp: &mut Loop<'_>,
    spec: &JobSpec,
    source: &mut dyn BatchSource,
    sink: &mut dyn EventSink,
    control: &mut Control,
) -> Result<Option<(CachedEmbeddings, CachedEmbeddings)>, TrainError> {
    let dir = spec
        .cache_dir
        .clone()
        .unwrap_or_else(|| spec.project_dir.join("cache").join("embeddings"));
    let mut out = Vec::with_capacity(2);
    let mut pass = FrozenPass::new(&lp.config, lp.device, lp.channels_last, &mut lp.model);
    let precision = pass.precision();
    lp.run.log(&format!(
        "frozen-backbone passes in {precision} ({})",
        match lp.config.bf16_frozen {
            Some(_) => "set in the run's config".to_owned(),
            None if lp.device == Device::Cpu => crate::model::cpu_bf16::frozen_precision_reason(),
            None => format!("{:?}", lp.device),
        }
    ));
    for split in [Split::Train, Split::Validation] {
        let cached = pass.split(&dir, source, split, &mut || control.should_stop(sink))?;
        let Some(cached) = cached else {
            return Ok(None);
        };
        if let Some(why) = &cached.not_stored {
            lp.run.log(why);
        }
        sink.send(TrainEvent::EmbeddingsReady {
            split: split.name().to_owned(),
            samples: cached.labels.size().first().copied().unwrap_or(0) as usize,
            cached: cached.reused,
            path: cached.path.clone(),
            precision: precision.to_owned(),
            not_stored: cached.not_stored.clone(),
        });
        out.push(cached);
    }
    let validation = out.pop();
    let train = out.pop();
    Ok(train.zip(validation))
}

impl<'a> Loop<'a> {
    pub(super) fn new(
        config: TrainConfig,
        device: Device,
        source: &dyn BatchSource,
        run: &'a RunDir,
    ) -> Result<Self, TrainError> {
        let classes = source.num_classes();
        let min_classes = train_task(config.task).min_classes();
        if classes < min_classes {
            return Err(TrainError::Config(format!(
                "need at least {min_classes} classes, the data has {classes}"
            )));
        }
        let channels_last = config.use_channels_last(device == Device::Cpu);
        let model = Net::build(&config, classes, device, channels_last)?;
        let class_weights = match config.balancing {
            Balancing::ClassWeights => {
                let w = inverse_frequency_weights(&source.labels(Split::Train), classes);
                Some(Tensor::f_from_slice(&w)?.f_to_device(device)?)
            }
            _ => None,
        };
        let optimizer = Optimizer::new(config.optimizer, model.param_groups(config.strategy, 0));
        let steps = train_plan(&source.labels(Split::Train), config.batch_size, 0, false).len();
        Ok(Self {
            total_steps: steps * config.epochs,
            optimizer,
            phase: None,
            class_weights,
            channels_last,
            state: CheckpointState::default(),
            task: train_task(config.task),
            device,
            model,
            config,
            run,
        })
    }

    fn steps_per_epoch(&self, source: &dyn BatchSource) -> usize {
        steps_per_epoch(source, self.config.batch_size)
    }

    /// Writes the run's status as `Running` with the loop's progress.
    fn save_status(&self) -> Result<(), TrainError> {
        let state = &self.state;
        RunStatus::new(
            self.run,
            &self.config,
            RunState::Running,
            state.epochs_done,
            state.best,
        )
        .save(self.run)
    }

    /// Loads the last checkpoint: model, optimiser state and loop state. A run stopped or
    /// killed before its first checkpoint starts again from epoch 0 (its frozen config and
    /// split are what the job was opened with).
    fn restore(&mut self) -> Result<(), TrainError> {
        let path = self.run.checkpoint_path(CheckpointKind::Last);
        if !path.is_file() {
            self.run.truncate_history(0)?;
            self.run.log(&format!(
                "no checkpoint was saved before the run ended ({}): starting again from epoch 0",
                path.display()
            ));
            return Ok(());
        }
        let (tensors, state) = self.run.load_checkpoint(CheckpointKind::Last)?;
        self.model.load_model_tensors(&tensors, &path)?;
        self.set_phase(state.epochs_done);
        self.optimizer.load_state(&tensors)?;
        self.run.truncate_history(state.epochs_done)?;
        self.run.log(&format!(
            "resumed from {} after epoch {}",
            path.display(),
            state.epochs_done
        ));
        self.state = state;
        Ok(())
    }

    /// Rebuilds the optimiser's groups when the strategy's phase changes (state carried).
    pub(super) fn set_phase(&mut self, epoch: usize) {
        let phase = Classifier::backbone_trainable(self.config.strategy, epoch);
        if self.phase == Some(phase) {
            return;
        }
        let carried = self
            .optimizer
            .state_tensors()
            .map(|t| t.into_iter().collect());
        let groups = self.model.param_groups(self.config.strategy, epoch);
        self.optimizer = Optimizer::new(self.config.optimizer, groups);
        if let Ok(carried) = carried {
            let _ = self.optimizer.load_state(&carried);
        }
        if self.phase.is_some() {
            self.run
                .log(&format!("epoch {epoch}: backbone trainable = {phase}"));
        }
        self.phase = Some(phase);
    }

    /// Images on the device, in channels-last layout when configured (embeddings as they are).
    pub(super) fn prepare(&self, inputs: &Tensor) -> Result<Tensor, TrainError> {
        let inputs = inputs.f_to_device(self.device)?;
        Ok(if self.channels_last && inputs.dim() == 4 {
            channels_last(&inputs)?
        } else {
            inputs
        })
    }

    /// One epoch of optimiser steps; `None` when stopped.
    fn train_epoch(
        &mut self,
        epoch: usize,
        source: &mut dyn BatchSource,
        features: Option<&(CachedEmbeddings, CachedEmbeddings)>,
        sink: &mut dyn EventSink,
        control: &mut Control,
    ) -> Result<Option<EpochMetrics>, TrainError> {
        self.set_phase(epoch);
        let seed = epoch_seed(self.config.seed, epoch);
        tch::manual_seed(seed as i64);
        let balanced = self.config.balancing == Balancing::BalancedSampler;
        let labels = source.labels(Split::Train);
        let plan = train_plan(&labels, self.config.batch_size, seed, balanced);
        let trainable = Classifier::backbone_trainable(self.config.strategy, epoch);
        let mut tally = self.task.tally(source.num_classes(), false);
        let batches = feed(
            source,
            features.map(|f| &f.0),
            Split::Train,
            plan,
            true,
            seed,
        );
        for (step, batch) in batches.enumerate() {
            if control.should_stop(sink) {
                return Ok(None);
            }
            let started = Instant::now();
            let (inputs, targets, is_embedding, skipped) = batch?;
            for reason in skipped {
                sink.send(TrainEvent::ImageSkipped { epoch, reason });
            }
            let inputs = self.prepare(&inputs)?;
            let targets = targets.f_to_device(self.device)?;
            let logits = self
                .model
                .logits_of_batch(&inputs, is_embedding, trainable, true)?;
            let loss = self.task.loss(
                &logits,
                &targets,
                self.class_weights.as_ref(),
                self.config.label_smoothing,
            )?;
            let value = loss.f_double_value(&[])?;
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss { epoch, step, value });
            }
            let lr = self.config.lr
                * lr_factor(
                    self.config.schedule,
                    self.state.global_step,
                    self.total_steps,
                );
            self.optimizer.zero_grad()?;
            loss.f_backward()?;
            if let Some(max_norm) = self.config.grad_clip_norm {
                self.optimizer.clip_grad_norm(max_norm)?;
            }
            self.optimizer.step(lr)?;
            self.state.global_step += 1;
            let n = targets.size().first().copied().unwrap_or(0) as usize;
            tally.add(&logits, &targets, value)?;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            sink.send(TrainEvent::Step {
                epoch,
                step,
                loss: value,
                lr,
                images_per_sec: n as f64 / secs,
            });
        }
        Ok(Some(tally.train_metrics()))
    }

    /// History, checkpoints and events after an epoch; returns whether to stop early.
    fn finish_epoch(
        &mut self,
        epoch: usize,
        train: EpochMetrics,
        validation: EpochMetrics,
        started: Instant,
        sink: &mut dyn EventSink,
    ) -> Result<bool, TrainError> {
        let monitor = &self.config.monitor;
        let value = monitor.value(&validation);
        let higher_is_better = monitor.higher_is_better(self.config.task);
        let min_delta = self.config.early_stopping.map_or(0.0, |e| e.min_delta);
        let improved = value.is_finite()
            && self.state.best.is_none_or(|(_, best)| {
                if higher_is_better {
                    value > best + min_delta
                } else {
                    value < best - min_delta
                }
            });
        if improved {
            self.state.best = Some((epoch, value));
            self.state.stale_epochs = 0;
        } else {
            self.state.stale_epochs += 1;
        }
        self.state.epochs_done = epoch + 1;
        let lr = self.config.lr
            * lr_factor(
                self.config.schedule,
                self.state.global_step.saturating_sub(1),
                self.total_steps,
            );
        self.run.append_history(&EpochRecord {
            epoch,
            global_step: self.state.global_step,
            lr,
            train: train.for_history(),
            validation: validation.for_history(),
            duration_secs: started.elapsed().as_secs_f64(),
        })?;
        self.run.log(&format!(
            "epoch {epoch}: train loss {:.4} acc {:.3}, validation loss {:.4} acc {:.3}",
            train.loss, train.accuracy, validation.loss, validation.accuracy
        ));
        sink.send(TrainEvent::Epoch {
            epoch,
            train,
            validation,
            improved,
        });
        let model = self.model.model_tensors();
        if improved {
            let path = self
                .run
                .save_checkpoint(CheckpointKind::Best, &model, &self.state)?;
            sink.send(TrainEvent::CheckpointSaved {
                epoch,
                kind: CheckpointKind::Best,
                path,
            });
        }
        let mut last = model;
        last.extend(self.optimizer.state_tensors()?);
        let path = self
            .run
            .save_checkpoint(CheckpointKind::Last, &last, &self.state)?;
        sink.send(TrainEvent::CheckpointSaved {
            epoch,
            kind: CheckpointKind::Last,
            path,
        });
        self.save_status()?;
        Ok(self
            .config
            .early_stopping
            .is_some_and(|e| self.state.stale_epochs >= e.patience.max(1)))
    }

    pub(super) fn summary(
        &self,
        outcome: TrainOutcome,
        last_validation: Option<EpochMetrics>,
    ) -> TrainSummary {
        TrainSummary {
            run_id: self.run.id.clone(),
            run_dir: self.run.dir.clone(),
            outcome,
            epochs_done: self.state.epochs_done,
            best: self.state.best,
            backbone_passes: self.model.backbone_passes(),
            last_validation,
        }
    }
}

/// A batch of inputs (images, or embeddings when the flag is set), targets, and the reasons
/// of images left out of it.
pub(super) type Fed = Result<(Tensor, Tensor, bool, Vec<String>), TrainError>;

/// The batches of `plan`: rows of cached embeddings when given, else images from `source`.
pub(super) fn feed<'s>(
    source: &'s mut dyn BatchSource,
    cached: Option<&'s CachedEmbeddings>,
    split: Split,
    plan: Vec<Vec<usize>>,
    augment: bool,
    seed: u64,
) -> Box<dyn Iterator<Item = Fed> + 's> {
    match cached {
        Some(cached) => Box::new(plan.into_iter().map(move |indices| {
            let index: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
            let index = Tensor::f_from_slice(&index)?;
            Ok((
                cached.embeddings.f_index_select(0, &index)?,
                cached.labels.f_index_select(0, &index)?,
                true,
                Vec::new(),
            ))
        })),
        None => Box::new(
            source
                .batches(split, plan, augment, seed)
                .map(|b| b.map(|b| (b.images, b.targets, false, b.skipped))),
        ),
    }
}
