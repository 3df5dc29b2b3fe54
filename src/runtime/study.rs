//! Runtime state of the Study tab: the project's studies, the one shown with its
//! leaderboard, and the running study's progress. The study's training runs go through the
//! Training tab's job (one job at a time; its live curves show the run in progress).

use std::path::PathBuf;

use super::{Loading, UiCommand};
use crate::study::leaderboard::Leaderboard;
use crate::study::runner::{StudyEvent, StudyOutcome};

/// A new study as the Study tab asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyRequest {
    /// The backbones to compare.
    pub backbones: Vec<String>,
    /// The strategies, by label (probe, finetune, staged).
    pub strategies: Vec<String>,
    /// Whether the first backbone also trains from random weights (the control).
    pub control: bool,
    /// Epochs of every run.
    pub epochs: usize,
}

/// What the Study tab asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum StudyCommand {
    /// List the project's studies.
    List(PathBuf),
    /// Make a study and run it.
    Start(PathBuf, StudyRequest),
    /// Continue a study (its unfinished runs).
    Resume(PathBuf, String),
    /// Stop the running study after the current batch (it can be resumed).
    Stop,
    /// Compute the leaderboard of a study.
    Show(PathBuf, String),
}

impl From<StudyCommand> for UiCommand {
    fn from(command: StudyCommand) -> Self {
        UiCommand::Study(command)
    }
}

/// Results of the Study tab's workers.
#[derive(Debug)]
pub enum StudyAppEvent {
    /// The project's studies, oldest first, and the backbones with installed pretrained
    /// weights (read from the asset cache on the worker).
    Listed(PathBuf, Vec<String>, Vec<String>),
    /// A study was made (its id) and starts.
    Created(PathBuf, String),
    /// Progress of the running study.
    Progress(PathBuf, String, Box<StudyEvent>),
    /// The running study ended.
    Ended(PathBuf, String, Result<StudyOutcome, String>),
    /// A leaderboard was computed.
    Board(PathBuf, String, Result<Box<Leaderboard>, String>),
    /// The board of (project, study) being scored: entries done, entries in all.
    BoardProgress(PathBuf, String, usize, usize),
}

/// Everything the Study tab shows that is not the project.
#[derive(Default)]
pub struct StudyRuntime {
    /// The studies of a project folder.
    pub studies: Option<(PathBuf, Vec<String>)>,
    /// The backbones a study can start from pretrained weights (once listed).
    pub installed: Option<Vec<String>>,
    /// The study shown: project, id, its leaderboard.
    pub board: Option<(PathBuf, String, Loading<Box<Leaderboard>>)>,
    /// The running study: project and id (the id once made).
    pub running: Option<(PathBuf, Option<String>)>,
    /// The running study's steps as lines, newest last.
    pub log: Vec<String>,
}

/// Lines of the study log kept at most.
const LOG_LINES: usize = 200;

impl StudyRuntime {
    /// Whether a study job runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Adds a line to the log.
    pub fn log_line(&mut self, line: String) {
        self.log.push(line);
        if self.log.len() > LOG_LINES {
            self.log.remove(0);
        }
    }

    /// Whether the leaderboard shown is computed (screenshots, tests).
    pub fn settled(&self) -> bool {
        self.installed.is_some()
            && !self.is_running()
            && !matches!(self.board, Some((_, _, Loading::Running { .. })))
    }
}

/// A line for the log of the study's progress, if the event is worth one.
pub fn describe(event: &StudyEvent) -> Option<String> {
    use crate::study::record::EntryState;
    Some(match event {
        StudyEvent::Scoring { backbone } => format!("{backbone}: scoring and measuring"),
        StudyEvent::EntryStarted { key, resumed: true } => format!("{key}: resuming"),
        StudyEvent::EntryStarted { key, .. } => format!("{key}: training"),
        StudyEvent::EntryEnded { key, record } => match &record.state {
            EntryState::Done => format!(
                "{key}: done ({}, {:.0} s)",
                record.run_id.as_deref().unwrap_or("-"),
                record.train_secs
            ),
            EntryState::Failed(why) => format!("{key}: failed: {why}"),
            EntryState::Pending => format!("{key}: stopped"),
        },
        StudyEvent::EntryBusy { key, .. } => format!("{key}: trained by another process"),
        StudyEvent::Warning { message } => format!("warning: {message}"),
        StudyEvent::Scored { .. } | StudyEvent::Train { .. } => return None,
    })
}
