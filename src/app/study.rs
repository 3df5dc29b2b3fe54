//! The app's side of the Study tab: a study runs as the Training tab's job (one job at a
//! time; the tab's live curves follow the run in progress, and Stop stops the study),
//! its other progress arrives as app events, and each finished run refreshes the
//! leaderboard, computed on a worker.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use super::training::TRAIN_EVENTS;
use super::{AppEvent, WorkbenchApp};
use crate::runtime::Loading;
use crate::runtime::study::{StudyAppEvent, StudyCommand, StudyRequest, describe};
use crate::runtime::training::{LiveRun, TrainJob, TrainingCommand};
use crate::study::leaderboard::leaderboard_with_progress;
use crate::study::plan::{StudyPlan, make_study};
use crate::study::record::list_studies;
use crate::study::runner::{StudyEvent, StudyOptions, run_study};
use crate::train::{ChannelSink, EventSink, Strategy, spawn_job};

/// A new study, or the id of one to continue.
enum StudyStart {
    New(StudyRequest),
    Resume(String),
}

impl WorkbenchApp {
    /// Runs the Study tab's commands.
    pub(super) fn study_command(&mut self, ctx: &egui::Context, command: StudyCommand) {
        match command {
            StudyCommand::List(dir) => self.spawn(ctx, "list-studies", move || {
                let ids = list_studies(&dir);
                let installed = crate::study::plan::installed_pretrained();
                AppEvent::Study(StudyAppEvent::Listed(dir, ids, installed))
            }),
            StudyCommand::Start(dir, request) => {
                self.start_study(ctx, dir, StudyStart::New(request))
            }
            StudyCommand::Resume(dir, id) => self.start_study(ctx, dir, StudyStart::Resume(id)),
            StudyCommand::Stop => self.training_command(ctx, TrainingCommand::Stop),
            StudyCommand::Show(dir, id) => {
                let keep = match &self.study.board {
                    Some((d, i, Loading::Ready(board))) if *d == dir && *i == id => {
                        Some(board.clone())
                    }
                    _ => None,
                };
                // A refresh keeps showing the board it replaces.
                let state = keep.map_or_else(Loading::started, Loading::Ready);
                self.study.board = Some((dir.clone(), id.clone(), state));
                let (tx, wake) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "study-board", move || {
                    let device = tch::Device::cuda_if_available();
                    let mut progress = |done, total| {
                        let event =
                            StudyAppEvent::BoardProgress(dir.clone(), id.clone(), done, total);
                        let _ = tx.try_send(AppEvent::Study(event));
                        wake.request_repaint();
                    };
                    let stop = AtomicBool::new(false);
                    let result = leaderboard_with_progress(&dir, &id, device, &stop, &mut progress)
                        .map_err(|e| e.to_string())
                        .and_then(|b| b.ok_or_else(|| "stopped".to_owned()))
                        .map(Box::new);
                    AppEvent::Study(StudyAppEvent::Board(dir, id, result))
                });
            }
        }
    }

    fn start_study(&mut self, ctx: &egui::Context, dir: PathBuf, start: StudyStart) {
        if self.refuse_when_busy() {
            return;
        }
        let mut live = LiveRun::new(dir.clone());
        live.log_line("study: scoring the backbones, then training each run…".into());
        self.announced_run = None;
        let (sender, events) = crossbeam_channel::bounded(TRAIN_EVENTS);
        let repaint = ctx.clone();
        let mut sink = ChannelSink::new(sender, move || repaint.request_repaint());
        let tx = self.events_tx.clone();
        let wake = ctx.clone();
        let project = dir.clone();
        let job = move |control: &mut crate::train::Control| {
            let send = |event: StudyAppEvent| {
                let _ = tx.send(AppEvent::Study(event));
                wake.request_repaint();
            };
            let id = match start {
                StudyStart::Resume(id) => id,
                StudyStart::New(request) => match make_study(&project, &plan_of(&request)) {
                    Ok(study) => study.id,
                    Err(e) => {
                        send(StudyAppEvent::Ended(
                            project,
                            String::new(),
                            Err(e.to_string()),
                        ));
                        return;
                    }
                },
            };
            send(StudyAppEvent::Created(project.clone(), id.clone()));
            let options = StudyOptions {
                scores: true,
                cost: true,
                device: tch::Device::cuda_if_available(),
            };
            let mut on_event = |event: StudyEvent| match event {
                StudyEvent::Train { event, .. } => sink.send(event),
                other => send(StudyAppEvent::Progress(
                    project.clone(),
                    id.clone(),
                    Box::new(other),
                )),
            };
            let outcome = run_study(&project, &id, options, &mut on_event, control)
                .map_err(|e| e.to_string());
            send(StudyAppEvent::Ended(project, id, outcome));
        };
        match spawn_job("study", job) {
            Ok(handle) => {
                self.training.job = Some(TrainJob {
                    handle,
                    events,
                    several_runs: true,
                });
                self.training.job_ended = false;
                self.training.history = None;
                self.study.running = Some((dir, None));
                self.study.log.clear();
            }
            Err(e) => self.status = Some(Err(e.to_string())),
        }
        self.training.live = Some(live);
    }

    /// Applies an event of the Study tab's workers.
    pub(super) fn study_event(&mut self, event: StudyAppEvent) {
        match event {
            StudyAppEvent::Listed(dir, ids, installed) => {
                self.study.studies = Some((dir, ids));
                self.study.installed = Some(installed);
            }
            StudyAppEvent::Created(dir, id) => {
                self.study.running = Some((dir.clone(), Some(id.clone())));
                self.study.log_line(format!("{id}: started"));
                self.commands.push(StudyCommand::List(dir.clone()).into());
                self.commands.push(StudyCommand::Show(dir, id).into());
            }
            StudyAppEvent::Progress(dir, id, event) => {
                if let Some(line) = describe(&event) {
                    self.study.log_line(line);
                }
                // Each finished run fills its row.
                if matches!(*event, StudyEvent::EntryEnded { .. }) {
                    self.commands.push(StudyCommand::Show(dir, id).into());
                }
            }
            StudyAppEvent::Ended(dir, id, result) => {
                self.study.running = None;
                match result {
                    Ok(outcome) => {
                        self.study
                            .log_line(format!("{id}: {outcome:?}").to_lowercase());
                        self.commands.push(StudyCommand::List(dir.clone()).into());
                        self.commands.push(StudyCommand::Show(dir, id).into());
                    }
                    Err(message) => {
                        self.study.log_line(format!("the study failed: {message}"));
                        self.status = Some(Err(message));
                    }
                }
            }
            StudyAppEvent::BoardProgress(dir, id, done, total) => {
                if let Some((d, i, state)) = &mut self.study.board
                    && *d == dir
                    && *i == id
                    && state.is_running()
                {
                    state.set_progress(done, total);
                }
            }
            StudyAppEvent::Board(dir, id, result) => {
                let current = self
                    .study
                    .board
                    .as_ref()
                    .is_some_and(|(d, i, _)| *d == dir && *i == id);
                if current {
                    self.study.board = Some((dir, id, Loading::from_result(result)));
                }
            }
        }
    }

    /// The Study tab's runtime state.
    pub fn study(&self) -> &crate::runtime::study::StudyRuntime {
        &self.study
    }

    /// The Study tab's view (for tests: where its plot drew each run).
    pub fn study_view(&self) -> &crate::ui::study::StudyView {
        &self.study_view
    }
}

/// The core's plan of a request: the first backbone is the control when asked for.
fn plan_of(request: &StudyRequest) -> StudyPlan {
    StudyPlan {
        backbones: request.backbones.clone(),
        strategies: request
            .strategies
            .iter()
            .filter_map(|s| Strategy::from_label(s))
            .collect(),
        control: request
            .control
            .then(|| request.backbones.first().cloned())
            .flatten(),
        epochs: Some(request.epochs),
    }
}
