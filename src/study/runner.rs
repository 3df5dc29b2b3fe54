//! Running a study: the before-training scores and cost of each backbone (kept in
//! `scores.ron`, so a resumed study does not measure them again), then its runs one after
//! another, each an ordinary run of the project trained by the engine. Every run's state is
//! saved as it goes (its run id as soon as the engine names it), so after a stop or a
//! `kill -9` the study continues: finished runs are kept, an interrupted one resumes from
//! its last checkpoint. Each run is trained under a lock of its own, so several processes
//! (a second `study --resume`, or `train --spec` jobs of a cluster) can fill one study
//! without training a run twice.

use std::path::Path;
use std::time::Instant;

use tch::Device;

use super::StudyError;
use super::cost::measure_cost;
use super::record::{BackboneRecord, EntryRecord, EntryState, Study, StudyDir, StudyEntry};
use super::scores::score_backbone;
use crate::train::events::CheckpointKind;
use crate::train::run::RunDir;
use crate::train::{Control, EventSink, JobSpec, ProjectSource, TrainEvent, TrainOutcome, train};

/// What a study reports while it runs.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "study_event", rename_all = "snake_case")]
pub enum StudyEvent {
    /// A backbone is being scored and measured.
    Scoring { backbone: String },
    /// A backbone's scores and cost are ready (or were read from the study).
    Scored { record: BackboneRecord },
    /// A run of the study is starting (`resumed`: from its last checkpoint).
    EntryStarted { key: String, resumed: bool },
    /// An event of the training job of run `key`.
    Train { key: String, event: TrainEvent },
    /// A run of the study ended (done, failed, or still pending after a stop).
    EntryEnded { key: String, record: EntryRecord },
    /// Another process is training run `key` now; this one leaves it to it.
    EntryBusy { key: String, holder: String },
    /// Something went wrong that the study carries on past.
    Warning { message: String },
}

/// How a study job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum StudyOutcome {
    /// Every run is done or failed (or in another process's hands).
    Completed,
    /// Stopped by the user; `study --resume` goes on.
    Stopped,
}

/// What the study measures before training.
#[derive(Clone, Copy, Debug)]
pub struct StudyOptions {
    /// Score each pretrained backbone (classification projects).
    pub scores: bool,
    /// Measure each backbone's speed.
    pub cost: bool,
    /// Where tensors live.
    pub device: Device,
}

/// Runs (or continues) study `id` of the project at `project_dir`.
pub fn run_study(
    project_dir: &Path,
    id: &str,
    options: StudyOptions,
    on_event: &mut (dyn FnMut(StudyEvent) + Send),
    control: &mut Control,
) -> Result<StudyOutcome, StudyError> {
    let dir = StudyDir::of(project_dir, id);
    let study = dir.load_plan()?;
    measure_backbones(project_dir, &dir, &study, options, on_event, control)?;
    for entry in &study.entries {
        if control
            .stop_token()
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(StudyOutcome::Stopped);
        }
        if run_entry(
            project_dir,
            &dir,
            &study,
            entry,
            options.device,
            on_event,
            control,
        )? == StudyOutcome::Stopped
        {
            return Ok(StudyOutcome::Stopped);
        }
    }
    Ok(StudyOutcome::Completed)
}

/// Scores and measures every backbone of the study that `scores.ron` lacks, saving after
/// each one.
fn measure_backbones(
    project_dir: &Path,
    dir: &StudyDir,
    study: &Study,
    options: StudyOptions,
    on_event: &mut (dyn FnMut(StudyEvent) + Send),
    control: &mut Control,
) -> Result<(), StudyError> {
    let mut saved = dir.load_scores()?;
    let classification = study.recipe.task == crate::task::TaskKind::Classification;
    for backbone in backbones_of(study) {
        if let Some(record) = saved.backbones.iter().find(|r| r.backbone == backbone) {
            on_event(StudyEvent::Scored {
                record: record.clone(),
            });
            continue;
        }
        if control
            .stop_token()
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        on_event(StudyEvent::Scoring {
            backbone: backbone.clone(),
        });
        let pretrained = study
            .entries
            .iter()
            .any(|e| e.backbone == backbone && e.pretrained());
        let scores = if options.scores && classification && pretrained {
            match score_backbone(project_dir, &study.recipe, &backbone, options.device) {
                Ok(scores) => Some(scores),
                Err(e) => {
                    on_event(StudyEvent::Warning {
                        message: format!("{backbone} could not be scored: {e}"),
                    });
                    None
                }
            }
        } else {
            None
        };
        let cost = if options.cost {
            match measure_cost(&backbone, study.recipe.input_size_px, options.device) {
                Ok(cost) => Some(cost),
                Err(e) => {
                    on_event(StudyEvent::Warning {
                        message: format!("{backbone}'s speed could not be measured: {e}"),
                    });
                    None
                }
            }
        } else {
            None
        };
        let record = BackboneRecord {
            backbone,
            scores,
            cost,
        };
        saved.backbones.push(record.clone());
        dir.save_scores(&saved)?;
        on_event(StudyEvent::Scored { record });
    }
    Ok(())
}

/// The study's backbones, each once, in order.
pub fn backbones_of(study: &Study) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for entry in &study.entries {
        if !names.contains(&entry.backbone) {
            names.push(entry.backbone.clone());
        }
    }
    names
}

/// Trains run `entry` of `study` to its end, unless it is done, failed, or trained by
/// another process now. A failed run is recorded and the study goes on; a stop leaves it
/// pending (resumable).
pub fn run_entry(
    project_dir: &Path,
    dir: &StudyDir,
    study: &Study,
    entry: &StudyEntry,
    device: Device,
    on_event: &mut (dyn FnMut(StudyEvent) + Send),
    control: &mut Control,
) -> Result<StudyOutcome, StudyError> {
    let lock_path = dir.entry_path(&entry.key).with_extension("lock");
    if let Some(parent) = lock_path.parent() {
        std::fs::create_dir_all(parent).map_err(StudyError::io("create", parent))?;
    }
    let _lock = match crate::file_lock::try_lock(&lock_path, &format!("training {}", entry.key)) {
        Ok(lock) => lock,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            on_event(StudyEvent::EntryBusy {
                key: entry.key.clone(),
                holder: e.to_string(),
            });
            return Ok(StudyOutcome::Completed);
        }
        Err(e) => return Err(StudyError::io("lock", &lock_path)(e)),
    };
    // Read under the lock: another process may have finished it meanwhile.
    let mut record = dir.load_entry(&entry.key)?;
    if record.state != EntryState::Pending {
        on_event(StudyEvent::EntryEnded {
            key: entry.key.clone(),
            record,
        });
        return Ok(StudyOutcome::Completed);
    }
    let resume = record
        .run_id
        .clone()
        .filter(|id| resumable(project_dir, id));
    on_event(StudyEvent::EntryStarted {
        key: entry.key.clone(),
        resumed: resume.is_some(),
    });
    let (started, before) = (Instant::now(), record.train_secs);
    let result = train_entry(
        project_dir,
        dir,
        study,
        entry,
        resume,
        &mut record,
        device,
        on_event,
        control,
    );
    record.train_secs = before + started.elapsed().as_secs_f64();
    let outcome = match result {
        Ok(TrainOutcome::Completed | TrainOutcome::EarlyStopped) => {
            record.state = EntryState::Done;
            record.export_bytes = record
                .run_id
                .as_deref()
                .and_then(|run| export_size(project_dir, run, on_event));
            StudyOutcome::Completed
        }
        Ok(TrainOutcome::Stopped) => StudyOutcome::Stopped,
        Err(e) => {
            record.state = EntryState::Failed(e.to_string());
            StudyOutcome::Completed
        }
    };
    dir.save_entry(&entry.key, &record)?;
    on_event(StudyEvent::EntryEnded {
        key: entry.key.clone(),
        record,
    });
    Ok(outcome)
}

/// Whether run `id` exists and has a last checkpoint to resume from.
fn resumable(project_dir: &Path, id: &str) -> bool {
    RunDir::open(project_dir, id)
        .is_ok_and(|(run, _)| run.checkpoint_path(CheckpointKind::Last).is_file())
}

#[allow(clippy::too_many_arguments)]
fn train_entry(
    project_dir: &Path,
    dir: &StudyDir,
    study: &Study,
    entry: &StudyEntry,
    resume: Option<String>,
    record: &mut EntryRecord,
    device: Device,
    on_event: &mut (dyn FnMut(StudyEvent) + Send),
    control: &mut Control,
) -> Result<TrainOutcome, StudyError> {
    let mut config = entry.config(&study.recipe);
    let mut source = match &resume {
        Some(id) => {
            let (run, frozen) = RunDir::open(project_dir, id)?;
            ProjectSource::open_run(project_dir, &run, &frozen, None)?
        }
        None => ProjectSource::open_for_training(project_dir, &mut config)?,
    };
    let spec = JobSpec {
        resume,
        device,
        ..JobSpec::new(project_dir, config)
    };
    let mut sink = EntrySink {
        key: &entry.key,
        dir,
        started: (Instant::now(), record.train_secs),
        record,
        on_event,
    };
    let summary = train(&spec, &mut source, &mut sink, control)?;
    Ok(summary.outcome)
}

/// Passes the job's events on and saves the run id in the entry as soon as it is known,
/// and the training time after every epoch (a `kill -9` loses at most one epoch's time).
struct EntrySink<'a> {
    key: &'a str,
    dir: &'a StudyDir,
    /// When this job started, and the entry's training seconds before it.
    started: (Instant, f64),
    record: &'a mut EntryRecord,
    on_event: &'a mut (dyn FnMut(StudyEvent) + Send),
}

impl EventSink for EntrySink<'_> {
    fn send(&mut self, event: TrainEvent) {
        if let TrainEvent::Started { run_id, .. } = &event
            && self.record.run_id.as_deref() != Some(run_id)
        {
            self.record.run_id = Some(run_id.clone());
            if let Err(e) = self.dir.save_entry(self.key, self.record) {
                (self.on_event)(StudyEvent::Warning {
                    message: format!(
                        "the study could not record that {} trains {run_id} (after a crash it \
                         would train it again): {e}",
                        self.key
                    ),
                });
            }
        }
        if matches!(event, TrainEvent::Epoch { .. }) {
            self.record.train_secs = self.started.1 + self.started.0.elapsed().as_secs_f64();
            // Only time is at stake: a failed save leaves the previous figure.
            let _ = self.dir.save_entry(self.key, self.record);
        }
        (self.on_event)(StudyEvent::Train {
            key: self.key.to_owned(),
            event,
        });
    }
}

/// Exports the run's model to its export folder and returns the file's size; a failure is a
/// warning (the leaderboard shows no size).
fn export_size(
    project_dir: &Path,
    run: &str,
    on_event: &mut (dyn FnMut(StudyEvent) + Send),
) -> Option<u64> {
    let options = crate::export::ExportOptions::default();
    match crate::export::export_run(project_dir, run, &options, None) {
        Ok(report) => std::fs::metadata(&report.model_path).ok().map(|m| m.len()),
        Err(e) => {
            on_event(StudyEvent::Warning {
                message: format!("{run} could not be exported to measure its size: {e}"),
            });
            None
        }
    }
}
