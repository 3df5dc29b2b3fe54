//! Running a training job on its own thread: commands in (pause, resume, stop; "start" is
//! [`spawn_training`]), events out through the job's [`EventSink`], and a stop token that
//! the loop checks every batch. Failures arrive as a `Failed` event, never as a panic.
//!
//! libtorch's random generator is process-global: a seeded run repeats exactly only while no
//! other training job runs in the same process (the app runs one job at a time).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tch::Device;

use super::config::TrainConfig;
use super::events::{EventSink, TrainEvent};
use super::source::BatchSource;
use super::{TrainError, engine};

/// What the owner of a job can ask of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainCommand {
    /// Hold before the next batch until resumed or stopped.
    Pause,
    /// Go on after a pause.
    Resume,
    /// End the run after the current batch (its last checkpoint stays resumable).
    Stop,
}

/// The loop's side of the commands and the stop token.
#[derive(Debug)]
pub struct Control {
    stop: Arc<AtomicBool>,
    commands: Option<Receiver<TrainCommand>>,
    paused: bool,
}

impl Control {
    /// A control driven by `stop` and, optionally, a command channel.
    pub fn new(stop: Arc<AtomicBool>, commands: Option<Receiver<TrainCommand>>) -> Self {
        Self {
            stop,
            commands,
            paused: false,
        }
    }

    /// A control that only stops when its token is set.
    pub fn detached() -> Self {
        Self::new(Arc::new(AtomicBool::new(false)), None)
    }

    /// The stop token (set it from any thread, or from a Ctrl-C handler).
    pub fn stop_token(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Called before every batch: applies pending commands, waits while paused, and says
    /// whether the job must stop.
    pub fn should_stop(&mut self, sink: &mut dyn EventSink) -> bool {
        loop {
            while let Some(command) = self.commands.as_ref().and_then(|c| c.try_recv().ok()) {
                self.apply(command, sink);
            }
            if self.stop.load(Ordering::Relaxed) {
                return true;
            }
            if !self.paused {
                return false;
            }
            let Some(commands) = self.commands.as_ref() else {
                return false;
            };
            match commands.recv_timeout(Duration::from_millis(50)) {
                Ok(command) => self.apply(command, sink),
                Err(RecvTimeoutError::Timeout) => {}
                // Nobody is left to resume the job.
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
    }

    fn apply(&mut self, command: TrainCommand, sink: &mut dyn EventSink) {
        match command {
            TrainCommand::Pause if !self.paused => {
                self.paused = true;
                sink.send(TrainEvent::Paused);
            }
            TrainCommand::Resume if self.paused => {
                self.paused = false;
                sink.send(TrainEvent::Resumed);
            }
            TrainCommand::Stop => self.stop.store(true, Ordering::Relaxed),
            TrainCommand::Pause | TrainCommand::Resume => {}
        }
    }
}

/// Everything a job needs besides its data and its sink.
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// The project folder (runs go to `runs/`).
    pub project_dir: PathBuf,
    /// The configuration of a new run (ignored when resuming: the run's frozen one is used).
    pub config: TrainConfig,
    /// Resume this run from its last checkpoint.
    pub resume: Option<String>,
    /// Where tensors live; chosen once by the caller.
    pub device: Device,
    /// The embedding cache folder (default `<project>/cache/embeddings`).
    pub cache_dir: Option<PathBuf>,
}

impl JobSpec {
    /// A new run of `config` in `project_dir` on CUDA when present, else the CPU.
    pub fn new(project_dir: impl Into<PathBuf>, config: TrainConfig) -> Self {
        Self {
            project_dir: project_dir.into(),
            config,
            resume: None,
            device: Device::cuda_if_available(),
            cache_dir: None,
        }
    }
}

/// The owner's side of a running job.
#[derive(Debug)]
pub struct TrainHandle {
    commands: Sender<TrainCommand>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TrainHandle {
    /// Pauses before the next batch.
    pub fn pause(&self) {
        let _ = self.commands.send(TrainCommand::Pause);
    }

    /// Resumes a paused job.
    pub fn resume(&self) {
        let _ = self.commands.send(TrainCommand::Resume);
    }

    /// Asks the job to stop (also works while paused).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.commands.send(TrainCommand::Stop);
    }

    /// Whether the worker thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the worker thread (call on shutdown after [`TrainHandle::stop`]).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a job on a new thread. `make_source` runs on that thread (loading data, like
/// building the model, stays off the caller's thread) and may adjust the job's config to
/// the data (e.g. the number of segmentation classes).
pub fn spawn_training(
    mut spec: JobSpec,
    make_source: impl FnOnce(&mut TrainConfig) -> Result<Box<dyn BatchSource>, TrainError>
    + Send
    + 'static,
    mut sink: Box<dyn EventSink>,
) -> Result<TrainHandle, TrainError> {
    spawn_job("train", move |control| {
        match make_source(&mut spec.config) {
            Ok(mut source) => {
                // The error was reported as a Failed event by `train`.
                let _ = engine::train(&spec, source.as_mut(), sink.as_mut(), control);
            }
            Err(e) => sink.send(TrainEvent::Failed {
                reason: e.to_string(),
            }),
        }
    })
}

/// Starts `job` on a new thread called `name` with a [`Control`] that the returned handle
/// drives: a job of several trainings (a study) pauses and stops like one.
pub fn spawn_job(
    name: &str,
    job: impl FnOnce(&mut Control) + Send + 'static,
) -> Result<TrainHandle, TrainError> {
    let (commands, receiver) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let mut control = Control::new(stop.clone(), Some(receiver));
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || job(&mut control))
        .map_err(TrainError::io(
            "start the training thread",
            std::path::Path::new(name),
        ))?;
    Ok(TrainHandle {
        commands,
        stop,
        thread: Some(thread),
    })
}
