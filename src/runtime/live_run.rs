//! The training job of this session as the Training tab shows it: status, progress with
//! ETA and throughput, curves and log, updated from the engine's [`TrainEvent`]s.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use super::pace::Pace;
use super::plot::PlotCurves;
use crate::train::TrainEvent;

/// Log lines kept for the log panel.
const LOG_LINES: usize = 500;

/// Where the live job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveStatus {
    /// Loading data and building the model.
    Preparing,
    /// Training.
    Running,
    /// Paused before a batch.
    Paused,
    /// Asked to stop; waiting for the current batch.
    Stopping,
    /// Ended (the outcome as the engine names it).
    Finished(String),
    /// Failed, with the reason.
    Failed(String),
}

/// The job of this session: its progress, curves and log.
#[derive(Debug)]
pub struct LiveRun {
    /// The project folder.
    pub dir: PathBuf,
    /// The run id once known.
    pub run_id: Option<String>,
    /// Where it stands.
    pub status: LiveStatus,
    /// Epochs planned.
    pub epochs: usize,
    /// Optimiser steps per epoch.
    pub steps_per_epoch: usize,
    /// The epoch of the latest step (0-based).
    pub epoch: usize,
    /// Global steps done (including those of earlier sessions of a resumed run).
    pub steps_done: usize,
    /// Throughput of the latest step (the engine times the step itself, never a pause).
    pub images_per_sec: f64,
    /// Running time and steps of this session, paused stretches left out.
    pace: Pace,
    /// The latest estimate of the time left (kept as it was while paused).
    pub eta_secs: Option<f64>,
    /// The curves.
    pub curves: PlotCurves,
    /// The run's task (names its metrics), from the engine's start.
    pub task: crate::task::TaskKind,
    /// Events as lines, oldest first.
    pub log: VecDeque<String>,
}

impl LiveRun {
    /// A job about to start on the project in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            run_id: None,
            status: LiveStatus::Preparing,
            epochs: 0,
            steps_per_epoch: 0,
            epoch: 0,
            steps_done: 0,
            images_per_sec: 0.0,
            pace: Pace::default(),
            eta_secs: None,
            curves: PlotCurves::default(),
            task: crate::task::TaskKind::default(),
            log: VecDeque::new(),
        }
    }

    /// Whether the job is still running (or paused).
    pub fn is_active(&self) -> bool {
        !matches!(self.status, LiveStatus::Finished(_) | LiveStatus::Failed(_))
    }

    /// Fraction of all steps done.
    pub fn fraction(&self) -> f32 {
        let total = self.epochs * self.steps_per_epoch;
        if total == 0 {
            return 0.0;
        }
        (self.steps_done as f32 / total as f32).clamp(0.0, 1.0)
    }

    /// Adds a line to the log, dropping the oldest beyond the limit.
    pub fn log_line(&mut self, line: String) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// Applies one event of the training thread, arrived now.
    pub fn apply(&mut self, event: TrainEvent) {
        self.apply_at(event, Instant::now());
    }

    /// Applies one event of the training thread that arrived at `now`.
    pub fn apply_at(&mut self, event: TrainEvent, now: Instant) {
        match event {
            TrainEvent::Started {
                run_id,
                task,
                first_epoch,
                epochs,
                steps_per_epoch,
                ..
            } => {
                self.log_line(format!(
                    "{run_id}: started at epoch {} of {epochs}, {steps_per_epoch} steps per epoch",
                    first_epoch + 1
                ));
                self.run_id = Some(run_id);
                self.task = task;
                (self.epochs, self.steps_per_epoch) = (epochs, steps_per_epoch);
                self.epoch = first_epoch;
                self.steps_done = first_epoch * steps_per_epoch;
                self.status = LiveStatus::Running;
            }
            TrainEvent::EmbeddingsReady {
                split,
                samples,
                cached,
                precision,
                not_stored,
                ..
            } => {
                self.log_line(format!(
                    "embeddings of {samples} {split} images {} ({precision})",
                    if cached {
                        "read from the cache"
                    } else {
                        "computed"
                    }
                ));
                if let Some(why) = not_stored {
                    self.log_line(why);
                }
            }
            TrainEvent::Step {
                epoch,
                step,
                loss,
                lr,
                images_per_sec,
            } => self.apply_step(now, (epoch, step), loss, lr, images_per_sec),
            TrainEvent::Epoch {
                epoch,
                train,
                validation,
                improved,
            } => {
                self.curves.add_epoch(self.task, epoch, &train, &validation);
                let accuracy = crate::train::train_task(self.task)
                    .accuracy_key()
                    .replace('_', " ");
                self.log_line(format!(
                    "epoch {}: train loss {:.4}, validation loss {:.4}, {accuracy} {:.3}{}",
                    epoch + 1,
                    train.loss,
                    validation.loss,
                    validation.accuracy,
                    if improved { " (best so far)" } else { "" }
                ));
            }
            TrainEvent::CheckpointSaved { epoch, kind, .. } => self.log_line(format!(
                "epoch {}: saved the {kind:?} checkpoint",
                epoch + 1
            )),
            TrainEvent::ImageSkipped { reason, .. } => {
                self.log_line(format!("skipped from training: {reason}"));
            }
            TrainEvent::Paused => {
                self.status = LiveStatus::Paused;
                self.pace.pause(now);
                self.log_line("paused".into());
            }
            TrainEvent::Resumed => {
                self.status = LiveStatus::Running;
                self.pace.resume(now);
                self.log_line("resumed".into());
            }
            TrainEvent::Finished {
                outcome,
                epochs_done,
                best_epoch,
                best_value,
            } => {
                let best = match (best_epoch, best_value) {
                    (Some(e), Some(v)) => format!(", best {v:.4} at epoch {}", e + 1),
                    _ => String::new(),
                };
                self.log_line(format!("{outcome} after {epochs_done} epoch(s){best}"));
                self.eta_secs = None;
                self.status = LiveStatus::Finished(outcome);
            }
            TrainEvent::Failed { reason } => {
                self.log_line(format!("failed: {reason}"));
                self.eta_secs = None;
                self.status = LiveStatus::Failed(reason);
            }
        }
    }

    fn apply_step(
        &mut self,
        now: Instant,
        (epoch, step): (usize, usize),
        loss: f64,
        lr: f64,
        ips: f64,
    ) {
        let global = epoch * self.steps_per_epoch + step + 1;
        self.curves.step_loss.push(global as f64, loss);
        self.curves.step_lr.push(global as f64, lr);
        (self.epoch, self.steps_done, self.images_per_sec) = (epoch, global, ips);
        let total = self.epochs * self.steps_per_epoch;
        if let Some(eta) = self.pace.step(now, global, total) {
            self.eta_secs = Some(eta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochMetrics;

    #[test]
    fn events_fill_progress_curves_and_log() {
        let mut live = LiveRun::new(PathBuf::from("p"));
        live.apply(TrainEvent::Started {
            run_id: "run-003".into(),
            run_dir: PathBuf::from("p/runs/run-003"),
            task: crate::task::TaskKind::Classification,
            first_epoch: 1,
            epochs: 3,
            steps_per_epoch: 4,
        });
        assert_eq!(live.status, LiveStatus::Running);
        assert!(
            (live.fraction() - 4.0 / 12.0).abs() < 1e-6,
            "resumed at epoch 2"
        );
        for step in 0..4 {
            live.apply(TrainEvent::Step {
                epoch: 1,
                step,
                loss: 1.0 / (step + 1) as f64,
                lr: 0.01,
                images_per_sec: 100.0,
            });
        }
        assert_eq!(live.curves.step_loss.last(), Some([8.0, 0.25]));
        assert_eq!(live.steps_done, 8);
        assert!(live.eta_secs.is_some());
        live.apply(TrainEvent::Epoch {
            epoch: 1,
            train: EpochMetrics::default(),
            validation: EpochMetrics {
                loss: 0.5,
                accuracy: 0.75,
                ..EpochMetrics::default()
            },
            improved: true,
        });
        assert_eq!(live.curves.val_loss.last(), Some([2.0, 0.5]));
        assert_eq!(live.curves.metrics["accuracy"].last(), Some([2.0, 0.75]));
        live.apply(TrainEvent::Failed {
            reason: "disk full".into(),
        });
        assert_eq!(live.status, LiveStatus::Failed("disk full".into()));
        assert!(!live.is_active());
        assert!(live.log.back().is_some_and(|l| l.contains("disk full")));
    }

    #[test]
    fn the_eta_and_throughput_stand_still_while_paused() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + std::time::Duration::from_secs(secs);
        let mut live = LiveRun::new(PathBuf::from("p"));
        let started = TrainEvent::Started {
            run_id: "run-001".into(),
            run_dir: PathBuf::from("p/runs/run-001"),
            task: crate::task::TaskKind::Classification,
            first_epoch: 0,
            epochs: 1,
            steps_per_epoch: 10,
        };
        live.apply_at(started, at(0));
        let step = |step: usize| TrainEvent::Step {
            epoch: 0,
            step,
            loss: 1.0,
            lr: 0.01,
            images_per_sec: 16.0,
        };
        // Steps 1 to 3, one every 2 s: 7 steps left at 2 s each.
        for (n, secs) in [(0, 0), (1, 2), (2, 4)] {
            live.apply_at(step(n), at(secs));
        }
        assert_eq!(live.eta_secs, Some(14.0));
        live.apply_at(TrainEvent::Paused, at(5));
        assert_eq!(live.status, LiveStatus::Paused);
        // Ten minutes paused: nothing moves.
        assert_eq!(live.eta_secs, Some(14.0));
        assert_eq!(live.images_per_sec, 16.0);
        live.apply_at(TrainEvent::Resumed, at(605));
        // The next step ends 1 s after the resume: 6 s of running for 3 steps, still 2 s
        // per step for the 6 left; the paused ten minutes do not count.
        live.apply_at(step(3), at(606));
        assert_eq!(live.eta_secs, Some(12.0));
        assert_eq!(live.images_per_sec, 16.0);
    }
}
