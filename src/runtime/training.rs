//! Runtime state of the Training tab: its commands and events, the states of the run
//! list, of a stored history, of the learning-rate finder and of the export. The live run
//! is [`super::live_run`], its curves [`super::plot`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crossbeam_channel::{Receiver, TryRecvError};

pub use super::live_run::{LiveRun, LiveStatus};
pub use super::plot::PlotCurves;
use super::{Loading, UiCommand};
use crate::export::{ExportOptions, ExportReport};
use crate::project::TrainingSettings;
use crate::train::catalogue::RunCurves;
pub use crate::train::catalogue::RunSummary;
pub use crate::train::status::RunState;
use crate::train::{LrFinderResult, TrainConfig, TrainEvent, TrainHandle};

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
    /// Move a run to the project's trash.
    DeleteRun {
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
    /// The learning-rate range test did `done` of `total` steps.
    LrProgress(usize, usize),
    /// The learning-rate range test finished.
    LrFound(Result<LrFinderResult, String>),
    /// A run's stored history was read.
    HistoryLoaded(PathBuf, String, Result<RunCurves, String>),
    /// The export folder picker closed (with a folder, or cancelled).
    ExportFolderPicked(Option<PathBuf>),
    /// An export finished.
    Exported(Result<Box<ExportReport>, String>),
    /// The running export began stage N of `crate::export::EXPORT_STAGES`.
    ExportStage(usize),
    /// A run was moved to the project's trash (where it went), or why not.
    RunDeleted(PathBuf, String, Result<PathBuf, String>),
}

/// A stored run's history as curves.
pub type HistoryState = Loading<Box<PlotCurves>>;

/// The learning-rate finder's state.
pub type LrFindState = Loading<LrFinderResult>;

/// The export's state.
#[derive(Clone, Debug, Default)]
pub struct ExportState {
    /// The running or the last export (`None` before the first).
    pub job: Option<Loading<Box<ExportReport>>>,
    /// A folder picked and not yet taken by the dialog.
    pub picked_folder: Option<PathBuf>,
}

impl ExportState {
    /// Whether an export is running.
    pub fn is_running(&self) -> bool {
        self.job.as_ref().is_some_and(Loading::is_running)
    }
}

impl From<TrainingCommand> for UiCommand {
    fn from(command: TrainingCommand) -> Self {
        UiCommand::Training(command)
    }
}

/// The newest settings save asked for, per project folder (saves may overlap; the newest
/// edit of each project is the one left on disk).
#[derive(Debug, Default)]
pub struct SettingsSaves {
    pub(crate) newest: HashMap<PathBuf, Arc<AtomicU64>>,
}

/// The running training job: its handle and its event channel.
pub(crate) struct TrainJob {
    pub(crate) handle: TrainHandle,
    pub(crate) events: Receiver<TrainEvent>,
    /// A job of several runs (a study): it ends when its thread does, not at a run's end.
    pub(crate) several_runs: bool,
}

/// Everything the Training tab shows that is not the project.
#[derive(Default)]
pub struct TrainingRuntime {
    pub(crate) job: Option<TrainJob>,
    /// The running or last job of this session.
    pub live: Option<LiveRun>,
    /// The learning-rate finder, for this project folder.
    pub lr_find: Option<(PathBuf, LrFindState)>,
    /// The stored history shown: project folder, run id, state.
    pub history: Option<(PathBuf, String, HistoryState)>,
    /// The export.
    pub export: ExportState,
    /// The job sent its last event (its thread is about to end).
    pub(crate) job_ended: bool,
    /// Saves of the settings into the project files.
    pub(crate) settings_saves: SettingsSaves,
    /// The backbone picker's weights: present variants, the download, the import.
    pub weights: super::weights::WeightsState,
}

impl TrainingRuntime {
    /// Whether a libtorch job (training, LR finder, export) is running.
    pub fn busy(&self) -> bool {
        self.job.is_some()
            || matches!(self.lr_find, Some((_, Loading::Running { .. })))
            || self.export.is_running()
    }

    /// Applies pending training events until `deadline`, noting when the job ended.
    pub(crate) fn drain(&mut self, deadline: Instant) {
        let Some(job) = &self.job else { return };
        while Instant::now() < deadline {
            match job.events.try_recv() {
                Ok(event) => {
                    let last = matches!(
                        event,
                        TrainEvent::Finished { .. } | TrainEvent::Failed { .. }
                    );
                    self.job_ended |= last && !job.several_runs;
                    if let Some(live) = &mut self.live {
                        // The next run of a study starts with fresh curves.
                        if let TrainEvent::Started { run_id, .. } = &event
                            && live.run_id.as_ref().is_some_and(|id| id != run_id)
                        {
                            *live = LiveRun::new(live.dir.clone());
                        }
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
        self.weights.cancel();
        let job = self.job.take()?;
        job.handle.stop();
        Some((job.handle, job.events))
    }
}

impl TrainingRuntime {
    /// Whether the selected history is read and no job runs (screenshots).
    pub fn settled(&self) -> bool {
        let history = !matches!(self.history, Some((_, _, Loading::Running { .. })));
        history && !self.busy()
    }
}

/// "step 12 of 60, about 20 s left" for a job that did `done` of `total` steps since
/// `started` (no estimate before the first step).
pub fn steps_left(done: usize, total: usize, started: Option<Instant>) -> String {
    format!("step {}", count_left(done, total, started))
}

/// "`done` of `total`, about N s left" (the time left from the pace since `started`, once
/// something is done; minutes past 90 s).
pub fn count_left(done: usize, total: usize, started: Option<Instant>) -> String {
    let left = started
        .filter(|_| done > 0 && total >= done)
        .map(|at| at.elapsed().as_secs_f64() / done as f64 * (total - done) as f64)
        .map(|s| {
            if s > 90.0 {
                format!(", about {:.0} min left", s / 60.0)
            } else {
                format!(", about {s:.0} s left")
            }
        })
        .unwrap_or_default();
    format!("{done} of {total}{left}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_left_estimates_from_the_pace_so_far() {
        assert_eq!(steps_left(3, 60, None), "step 3 of 60");
        let ten_seconds_ago = Instant::now().checked_sub(std::time::Duration::from_secs(10));
        assert_eq!(steps_left(0, 60, ten_seconds_ago), "step 0 of 60");
        assert_eq!(
            steps_left(5, 10, ten_seconds_ago),
            "step 5 of 10, about 10 s left"
        );
    }
}
