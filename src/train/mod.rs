//! The training engine: a headless loop over a [`BatchSource`] that reports typed
//! [`TrainEvent`]s to an [`EventSink`], driven on a worker thread by [`TrainCommand`]s and a
//! stop token; classification and segmentation (U-Net decoder, Dice + cross-entropy) with
//! their full validation metrics; strategies (linear probe over cached embeddings, full
//! fine-tuning, staged unfreezing), optimisers with parameter groups, schedules, a
//! learning-rate finder, and runs under `<project>/runs/<id>/` that survive a `kill -9`.

pub mod cache;
pub mod catalogue;
pub mod classifier;
pub mod coco_eval;
pub mod config;
pub mod cpu_runtime;
pub mod data_defaults;
pub mod det_source;
pub mod detection;
pub mod detector;
pub mod engine;
pub mod eval;
pub mod events;
pub mod frozen_pass;
pub mod lr_finder;
pub mod metrics;
pub mod net;
pub mod optim;
pub mod project_source;
pub mod run;
pub mod run_trash;
pub mod sampler;
pub mod schedule;
pub mod seg_source;
pub mod segmentation;
pub mod segmenter;
pub mod source;
pub mod status;
pub mod task;
pub mod trained;
pub mod worker;
pub mod yolo;

use std::path::PathBuf;

pub use config::{
    Balancing, EarlyStopping, Monitor, OptimizerKind, Schedule, Strategy, TaskKind, TrainConfig,
    WeightsSpec,
};
pub use engine::{TrainOutcome, TrainSummary, train};
pub use eval::{EvalReport, evaluate_run};
pub use events::{ChannelSink, EpochMetrics, EventSink, TrainEvent, VecSink};
pub use lr_finder::{LrFinderOptions, LrFinderResult, find_lr, find_lr_with_progress, suggest_lr};
pub use project_source::{ProjectSource, load_eval_images};
pub use seg_source::SyntheticDisks;
pub use source::{Batch, BatchSource, Split, SyntheticSource};
pub use task::{MetricKey, OutputLayout, TrainTask, find_metric_key, train_task};
pub use trained::{CheckpointChoice, TrainedModel, probabilities_of};
pub use worker::{Control, JobSpec, TrainCommand, TrainHandle, spawn_job, spawn_training};

/// Failures of a training or evaluation job; file errors name the file last.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
    #[error("invalid metric input: {0}")]
    Metrics(#[from] metrics::MetricsError),
    /// A failure of the batch source itself (a message of its own).
    #[error("the data source failed: {0}")]
    Source(String),
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Loader(#[from] crate::data::loader::LoaderError),
    #[error(transparent)]
    Split(#[from] crate::data::split::SplitError),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; the run was stopped and its best checkpoint kept (try a lower learning rate or gradient clipping)"
    )]
    NonFiniteLoss {
        epoch: usize,
        step: usize,
        value: f64,
    },
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("could not {action} ({source}): {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a run file is damaged ({reason}): {}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("the checkpoint does not fit the model ({reason}): {}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    #[error("no run '{id}' in the project: {}", path.display())]
    NoRun { id: String, path: PathBuf },
}

impl TrainError {
    /// An I/O failure on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| TrainError::Io {
            action,
            path,
            source,
        }
    }
}
