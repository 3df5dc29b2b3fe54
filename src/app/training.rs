//! Runtime state behind the Training tab (never serialised): the one libtorch job at a time
//! (a training run, the learning-rate finder or an export), the live curves of the running
//! job, the project's run list and the stored history of the selected run. Every job and
//! file read runs on a worker; results come back as [`TrainingEvent`]s, and the training
//! thread's own [`TrainEvent`]s on a bounded channel drained by the UI under its budget.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbeam_channel::{Receiver, TryRecvError};

pub use super::live_run::{LiveRun, LiveStatus};
pub use super::runs::{RunCurves, RunStatus, RunSummary, list_runs};
use super::{AppEvent, UiCommand, WorkbenchApp};
use crate::export::{ExportOptions, ExportReport, export_run};
use crate::project::TrainingSettings;
use crate::train::run::{EpochRecord, RunDir};
use crate::train::{
    BatchSource, ChannelSink, JobSpec, LrFinderOptions, LrFinderResult, ProjectSource, TrainConfig,
    TrainEvent, TrainHandle, find_lr, spawn_training,
};

/// Training events waiting for the UI at most (step events beyond are dropped).
const TRAIN_EVENTS: usize = 256;

/// What the Training tab asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainingCommand {
    /// Start a new run of `config` on the project in `dir`.
    Start {
        /// The project folder.
        dir: PathBuf,
        /// The run's settings.
        config: Box<TrainConfig>,
    },
    /// Resume a stopped run from its last checkpoint.
    ResumeRun {
        /// The project folder.
        dir: PathBuf,
        /// The run.
        run_id: String,
    },
    /// Hold the running job before its next batch.
    Pause,
    /// Go on after a pause.
    Continue,
    /// Stop the running job (its last checkpoint stays resumable).
    Stop,
    /// Run the learning-rate range test for `config` on the project's data.
    FindLr {
        /// The project folder.
        dir: PathBuf,
        /// The settings to test.
        config: Box<TrainConfig>,
    },
    /// List the project's runs.
    ListRuns(PathBuf),
    /// Save the settings of the project's next run into its project file.
    SaveSettings {
        /// The project folder.
        dir: PathBuf,
        /// The settings.
        settings: Box<TrainingSettings>,
    },
    /// Read a run's stored history.
    LoadHistory {
        /// The project folder.
        dir: PathBuf,
        /// The run.
        run_id: String,
    },
    /// Show the system folder picker for the export folder.
    PickExportFolder,
    /// Export a run to TorchScript.
    Export {
        /// The project folder.
        dir: PathBuf,
        /// The run.
        run_id: String,
        /// What to export and where.
        options: ExportOptions,
    },
}

/// Results of the Training tab's workers.
#[derive(Debug)]
pub enum TrainingEvent {
    /// The learning-rate range test finished.
    LrFound(Result<LrFinderResult, String>),
    /// A project's runs were listed.
    RunsListed(PathBuf, Result<Vec<RunSummary>, String>),
    /// A run's stored history was read.
    HistoryLoaded(PathBuf, String, Result<Vec<EpochRecord>, String>),
    /// The export folder picker closed (with a folder, or cancelled).
    ExportFolderPicked(Option<PathBuf>),
    /// An export finished.
    Exported(Result<Box<ExportReport>, String>),
}

/// The list of a project's runs.
#[derive(Clone, Debug)]
pub enum RunsState {
    /// Being read.
    Loading,
    /// The runs, oldest first.
    Ready(Vec<RunSummary>),
    /// The runs folder could not be read.
    Failed(String),
}

/// A stored run's history as curves.
#[derive(Clone, Debug)]
pub enum HistoryState {
    /// Being read.
    Loading,
    /// Read.
    Ready(Box<RunCurves>),
    /// Could not be read.
    Failed(String),
}

/// The learning-rate finder's state.
#[derive(Clone, Debug)]
pub enum LrFindState {
    /// Running.
    Running,
    /// Finished.
    Done(Result<LrFinderResult, String>),
}

/// The export's state.
#[derive(Clone, Debug, Default)]
pub struct ExportState {
    /// An export is running.
    pub running: bool,
    /// The last export's result.
    pub result: Option<Result<Box<ExportReport>, String>>,
    /// A folder picked and not yet taken by the dialog.
    pub picked_folder: Option<PathBuf>,
}

struct TrainJob {
    handle: TrainHandle,
    events: Receiver<TrainEvent>,
}

/// Everything the Training tab shows that is not the project.
#[derive(Default)]
pub struct TrainingRuntime {
    job: Option<TrainJob>,
    /// The running or last job of this session.
    pub live: Option<LiveRun>,
    /// The learning-rate finder, for this project folder.
    pub lr_find: Option<(PathBuf, LrFindState)>,
    /// Run lists by project folder.
    pub runs: HashMap<PathBuf, RunsState>,
    /// The stored history shown: project folder, run id, state.
    pub history: Option<(PathBuf, String, HistoryState)>,
    /// The export.
    pub export: ExportState,
    /// The job sent its last event (its thread is about to end).
    job_ended: bool,
    /// Saves of the settings into the project files.
    pub(super) settings_saves: super::training_settings::SettingsSaves,
}

impl TrainingRuntime {
    /// Whether a libtorch job (training, LR finder, export) is running.
    pub fn busy(&self) -> bool {
        self.job.is_some()
            || matches!(self.lr_find, Some((_, LrFindState::Running)))
            || self.export.running
    }

    /// Applies pending training events until `deadline`, noting when the job ended.
    fn drain(&mut self, deadline: Instant) {
        let Some(job) = &self.job else { return };
        while Instant::now() < deadline {
            match job.events.try_recv() {
                Ok(event) => {
                    let last = matches!(
                        event,
                        TrainEvent::Finished { .. } | TrainEvent::Failed { .. }
                    );
                    self.job_ended |= last;
                    if let Some(live) = &mut self.live {
                        live.apply(event);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.job_ended = true;
                    break;
                }
            }
        }
    }

    /// Asks the job to stop and returns its handle and channel for joining at shutdown.
    pub fn shutdown(&mut self) -> Option<(TrainHandle, Receiver<TrainEvent>)> {
        let job = self.job.take()?;
        job.handle.stop();
        Some((job.handle, job.events))
    }
}

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
                self.training.lr_find = Some((dir.clone(), LrFindState::Running));
                self.spawn(ctx, "lr-finder", move || {
                    let mut config = *config;
                    let result = project_source(&dir, &mut config)
                        .and_then(|mut source| {
                            let device = tch::Device::cuda_if_available();
                            find_lr(&config, source.as_mut(), device, LrFinderOptions::default())
                        })
                        .map_err(|e| e.to_string());
                    AppEvent::Training(TrainingEvent::LrFound(result))
                });
            }
            TrainingCommand::SaveSettings { dir, settings } => {
                self.save_training_settings(ctx, dir, *settings)
            }
            TrainingCommand::ListRuns(dir) => {
                self.training.runs.insert(dir.clone(), RunsState::Loading);
                self.spawn(ctx, "list-runs", move || {
                    let runs = list_runs(&dir);
                    AppEvent::Training(TrainingEvent::RunsListed(dir, runs))
                });
            }
            TrainingCommand::LoadHistory { dir, run_id } => {
                self.training.history = Some((dir.clone(), run_id.clone(), HistoryState::Loading));
                self.spawn(ctx, "read-history", move || {
                    let records = RunDir::open(&dir, &run_id)
                        .and_then(|(run, _)| run.read_history())
                        .map_err(|e| e.to_string());
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
                self.training.export.running = true;
                self.training.export.result = None;
                self.spawn(ctx, "export", move || {
                    let report = export_run(&dir, &run_id, &options, None)
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

    fn refuse_when_busy(&mut self) -> bool {
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
            // A resumed run reads its data with its own frozen settings.
            if let Some(id) = &frozen {
                *config = RunDir::open(&source_dir, id)?.1;
            }
            project_source(&source_dir, config)
        };
        match spawn_training(spec, make_source, Box::new(sink)) {
            Ok(handle) => {
                live.log_line(match &resume {
                    Some(id) => format!("resuming {id}…"),
                    None => "loading the data and building the model…".into(),
                });
                self.training.job = Some(TrainJob { handle, events });
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
        if !self.training.job_ended {
            return;
        }
        if let Some(job) = self.training.job.take() {
            if !job.handle.is_finished() {
                self.training.job = Some(job);
                ctx.request_repaint_after(std::time::Duration::from_millis(10));
                return;
            }
            job.handle.join();
        }
        self.training.job_ended = false;
        if let Some(live) = &mut self.training.live {
            if live.is_active() {
                live.status = LiveStatus::Failed("the training thread ended without a word".into());
            }
            let dir = live.dir.clone();
            self.training_command(ctx, TrainingCommand::ListRuns(dir));
        }
    }

    /// Applies an event of the Training tab's workers.
    pub(super) fn training_event(&mut self, event: TrainingEvent) {
        match event {
            TrainingEvent::LrFound(result) => {
                if let Some((_, state)) = &mut self.training.lr_find {
                    *state = LrFindState::Done(result);
                }
            }
            TrainingEvent::RunsListed(dir, result) => {
                let mut state = match result {
                    Ok(runs) => RunsState::Ready(runs),
                    Err(message) => RunsState::Failed(message),
                };
                if let (RunsState::Ready(runs), Some(live)) = (&mut state, &self.training.live)
                    && live.is_active()
                    && live.dir == dir
                    && let Some(row) = runs
                        .iter_mut()
                        .find(|r| live.run_id.as_ref() == Some(&r.id))
                {
                    row.status = RunStatus::Running;
                    row.resumable = false;
                }
                self.training.runs.insert(dir, state);
            }
            TrainingEvent::HistoryLoaded(dir, run_id, result) => {
                let current = self
                    .training
                    .history
                    .as_ref()
                    .is_some_and(|(d, id, _)| *d == dir && *id == run_id);
                if current {
                    let state = match result {
                        Ok(records) => {
                            HistoryState::Ready(Box::new(RunCurves::from_history(&records)))
                        }
                        Err(message) => HistoryState::Failed(message),
                    };
                    self.training.history = Some((dir, run_id, state));
                }
            }
            TrainingEvent::ExportFolderPicked(folder) => {
                if folder.is_some() {
                    self.training.export.picked_folder = folder;
                }
            }
            TrainingEvent::Exported(result) => {
                self.training.export.running = false;
                self.training.export.result = Some(result);
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

impl From<TrainingCommand> for UiCommand {
    fn from(command: TrainingCommand) -> Self {
        UiCommand::Training(command)
    }
}

impl TrainingRuntime {
    /// Whether the project's run list and the selected history are read (screenshots).
    pub fn settled(&self, dir: &Path) -> bool {
        let listed = matches!(
            self.runs.get(dir),
            Some(RunsState::Ready(_) | RunsState::Failed(_))
        );
        let history = !matches!(self.history, Some((_, _, HistoryState::Loading)));
        listed && history && !self.busy()
    }
}
