//! The app's side of the Training tab: it runs the tab's commands (training, resuming,
//! the learning-rate finder, exports, run lists, histories, settings saves) on worker
//! threads and applies their results into the runtime state ([`crate::runtime::training`]);
//! the training thread's own [`crate::train::TrainEvent`]s arrive on a bounded channel
//! drained under the frame's budget.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{AppEvent, WorkbenchApp};
use crate::export::export_run_with_progress;
use crate::runtime::Loading;
use crate::runtime::training::*;
use crate::train::catalogue::RunCurves;
use crate::train::run::RunDir;
use crate::train::run_trash::trash_run;
use crate::train::{
    BatchSource, ChannelSink, JobSpec, LrFinderOptions, ProjectSource, TrainConfig,
    find_lr_with_progress, spawn_training,
};

/// Training events waiting for the UI at most (step events beyond are dropped).
pub(super) const TRAIN_EVENTS: usize = 256;

/// The project's data for a job, with the config's task set to the project's.
fn project_source(
    dir: &Path,
    config: &mut TrainConfig,
) -> Result<Box<dyn BatchSource>, crate::train::TrainError> {
    Ok(Box::new(ProjectSource::open_for_training(dir, config)?) as Box<dyn BatchSource>)
}

impl WorkbenchApp {
    /// Runs the Training tab's commands.
    pub(super) fn training_command(&mut self, ctx: &egui::Context, command: TrainingCommand) {
        match command {
            TrainingCommand::Start { dir, config } => self.start_training(ctx, dir, *config, None),
            TrainingCommand::ResumeRun { dir, run_id } => {
                self.start_training(ctx, dir, TrainConfig::default(), Some(run_id))
            }
            TrainingCommand::DeleteRun { dir, run_id } => {
                let live_here = self.training.live.as_ref().is_some_and(|l| {
                    l.is_active() && l.dir == dir && l.run_id.as_deref() == Some(&run_id)
                });
                if live_here {
                    self.status = Some(Err(format!("{run_id} is training: stop it first")));
                    return;
                }
                self.spawn(ctx, "delete-run", move || {
                    let moved = trash_run(&dir, &run_id).map_err(|e| e.to_string());
                    AppEvent::Training(TrainingEvent::RunDeleted(dir, run_id, moved))
                });
            }
            TrainingCommand::Pause => self.with_job(|job| job.handle.pause()),
            TrainingCommand::Continue => self.with_job(|job| job.handle.resume()),
            TrainingCommand::Stop => {
                self.with_job(|job| job.handle.stop());
                if let Some(live) = &mut self.training.live
                    && live.is_active()
                {
                    live.status = LiveStatus::Stopping;
                }
            }
            TrainingCommand::FindLr { dir, config } => {
                if self.refuse_when_busy() {
                    return;
                }
                self.training.lr_find = Some((dir.clone(), Loading::started()));
                let (tx, wake) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "lr-finder", move || {
                    let mut config = *config;
                    let mut progress = |done, total| {
                        let _ = tx.send(AppEvent::Training(TrainingEvent::LrProgress(done, total)));
                        wake.request_repaint();
                    };
                    let result = project_source(&dir, &mut config)
                        .and_then(|mut source| {
                            let device = tch::Device::cuda_if_available();
                            let options = LrFinderOptions::default();
                            find_lr_with_progress(
                                &config,
                                source.as_mut(),
                                device,
                                options,
                                &mut progress,
                            )
                        })
                        .map_err(|e| e.to_string());
                    AppEvent::Training(TrainingEvent::LrFound(result))
                });
            }
            TrainingCommand::SaveSettings { dir, settings } => {
                self.save_training_settings(ctx, dir, *settings)
            }
            TrainingCommand::LoadHistory { dir, run_id } => {
                self.training.history = Some((dir.clone(), run_id.clone(), Loading::started()));
                self.spawn(ctx, "read-history", move || {
                    let records = RunDir::open(&dir, &run_id)
                        .and_then(|(run, config)| {
                            let history = run.read_history()?;
                            Ok(RunCurves::from_history(config.task, &history))
                        })
                        .map_err(|e: crate::train::TrainError| e.to_string());
                    AppEvent::Training(TrainingEvent::HistoryLoaded(dir, run_id, records))
                });
            }
            TrainingCommand::PickExportFolder => self.spawn(ctx, super::FOLDER_PICKER, || {
                let folder = rfd::FileDialog::new().pick_folder();
                AppEvent::Training(TrainingEvent::ExportFolderPicked(folder))
            }),
            TrainingCommand::Export {
                dir,
                run_id,
                options,
            } => {
                if self.refuse_when_busy() {
                    return;
                }
                self.training.export.job = Some(Loading::started());
                let (tx, wake) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "export", move || {
                    let mut stage = |n: usize| {
                        let _ = tx.try_send(AppEvent::Training(TrainingEvent::ExportStage(n)));
                        wake.request_repaint();
                    };
                    let report =
                        export_run_with_progress(&dir, &run_id, &options, None, &mut stage)
                            .map(Box::new)
                            .map_err(|e| e.to_string());
                    AppEvent::Training(TrainingEvent::Exported(report))
                });
            }
        }
    }

    fn with_job(&self, f: impl FnOnce(&TrainJob)) {
        if let Some(job) = &self.training.job {
            f(job);
        }
    }

    pub(super) fn refuse_when_busy(&mut self) -> bool {
        let busy = self.training.busy();
        if busy {
            self.status = Some(Err(
                "another job is running: wait for it or stop it first".into()
            ));
        }
        busy
    }

    fn start_training(
        &mut self,
        ctx: &egui::Context,
        dir: PathBuf,
        config: TrainConfig,
        resume: Option<String>,
    ) {
        if self.refuse_when_busy() {
            return;
        }
        let mut live = LiveRun::new(dir.clone());
        // The new job's run is announced to the run lists once its id is known.
        self.announced_run = None;
        let (sender, events) = crossbeam_channel::bounded(TRAIN_EVENTS);
        let repaint = ctx.clone();
        let sink = ChannelSink::new(sender, move || repaint.request_repaint());
        let spec = JobSpec {
            resume: resume.clone(),
            ..JobSpec::new(&dir, config)
        };
        let source_dir = dir.clone();
        let frozen = resume.clone();
        let make_source = move |config: &mut TrainConfig| {
            // A resumed run reads its data as it froze it: its settings, ids and classes.
            if let Some(id) = &frozen {
                let (run, run_config) = RunDir::open(&source_dir, id)?;
                *config = run_config;
                let source = ProjectSource::open_run(&source_dir, &run, config, None)?;
                return Ok(Box::new(source) as Box<dyn BatchSource>);
            }
            project_source(&source_dir, config)
        };
        match spawn_training(spec, make_source, Box::new(sink)) {
            Ok(handle) => {
                live.log_line(match &resume {
                    Some(id) => format!("resuming {id}…"),
                    None => "loading the data and building the model…".into(),
                });
                self.training.job = Some(TrainJob {
                    handle,
                    events,
                    several_runs: false,
                });
                self.training.job_ended = false;
                self.training.history = None;
            }
            Err(e) => live.status = LiveStatus::Failed(e.to_string()),
        }
        self.training.live = Some(live);
    }

    /// Applies pending training events until `deadline`; once the job ended, joins its
    /// thread (it sends its last event just before it ends) and refreshes the run list.
    pub(super) fn drain_training(&mut self, ctx: &egui::Context, deadline: Instant) {
        self.training.drain(deadline);
        // A run that started (or resumed) shows as running in every view.
        if let Some(live) = &self.training.live
            && live.run_id.is_some()
            && live.run_id != self.announced_run
        {
            let (dir, run_id) = (live.dir.clone(), live.run_id.clone());
            self.announced_run = run_id.clone();
            self.run_changed(ctx, &dir, run_id.as_deref());
        }
        if !self.training.job_ended {
            return;
        }
        let mut several_runs = false;
        if let Some(job) = self.training.job.take() {
            several_runs = job.several_runs;
            if !job.handle.is_finished() {
                self.training.job = Some(job);
                ctx.request_repaint_after(std::time::Duration::from_millis(10));
                return;
            }
            job.handle.join();
        }
        self.training.job_ended = false;
        if let Some(live) = &mut self.training.live {
            if live.is_active() && several_runs {
                live.status = LiveStatus::Finished("the study ended".into());
            } else if live.is_active() {
                live.status = LiveStatus::Failed("the training thread ended without a word".into());
            }
            let (dir, run_id) = (live.dir.clone(), live.run_id.clone());
            self.run_changed(ctx, &dir, run_id.as_deref());
        }
    }

    /// Applies an event of the Training tab's workers.
    pub(super) fn training_event(&mut self, ctx: &egui::Context, event: TrainingEvent) {
        match event {
            TrainingEvent::LrProgress(done, total) => {
                if let Some((_, state)) = &mut self.training.lr_find
                    && state.is_running()
                {
                    state.set_progress(done, total);
                }
            }
            TrainingEvent::LrFound(result) => {
                if let Some((_, state)) = &mut self.training.lr_find {
                    *state = Loading::from_result(result);
                }
            }
            TrainingEvent::HistoryLoaded(dir, run_id, result) => {
                let current = self
                    .training
                    .history
                    .as_ref()
                    .is_some_and(|(d, id, _)| *d == dir && *id == run_id);
                if current {
                    let state = match result {
                        Ok(curves) => Loading::Ready(Box::new(PlotCurves::from_curves(&curves))),
                        Err(message) => Loading::Failed(message),
                    };
                    self.training.history = Some((dir, run_id, state));
                }
            }
            TrainingEvent::ExportFolderPicked(folder) => {
                if folder.is_some() {
                    self.training.export.picked_folder = folder;
                }
            }
            TrainingEvent::RunDeleted(dir, run_id, moved) => {
                self.status = Some(match moved {
                    Ok(to) => Ok(format!("Moved {run_id} to {}", to.display())),
                    Err(message) => Err(message),
                });
                if self
                    .training
                    .history
                    .as_ref()
                    .is_some_and(|(d, id, _)| *d == dir && *id == run_id)
                {
                    self.training.history = None;
                }
                self.run_changed(ctx, &dir, Some(&run_id));
            }
            TrainingEvent::ExportStage(n) => {
                if let Some(job) = &mut self.training.export.job
                    && job.is_running()
                {
                    job.set_progress(n, crate::export::EXPORT_STAGES.len());
                }
            }
            TrainingEvent::Exported(result) => {
                self.training.export.job = Some(Loading::from_result(result));
            }
        }
    }

    /// The Training tab's runtime state (curves, runs, jobs).
    pub fn training(&self) -> &TrainingRuntime {
        &self.training
    }

    /// The Training tab's settings of the project in `dir`, once the tab was shown for it.
    pub fn training_draft(&self, dir: &Path) -> Option<&crate::ui::training_settings::Draft> {
        self.training_view.draft(dir)
    }
}
