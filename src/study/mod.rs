//! Backbone studies: which encoder suits the user's images. Before training, from frozen
//! embeddings of the training split: transferability scores ([`logme`], [`knn`],
//! [`probe_cv`]); the distance of the user's images from the pretraining data
//! ([`mismatch`]); after training, every run's metric with a bootstrap interval and paired
//! differences ([`bootstrap`]), and how well the early ranking foretold the final one
//! ([`kendall`]).

pub mod bootstrap;
pub mod cost;
pub mod kendall;
pub mod knn;
pub mod leaderboard;
pub mod logme;
pub mod mismatch;
pub mod plan;
pub mod plots;
pub mod probe_cv;
pub mod record;
pub mod report;
pub mod runner;
pub mod scores;
pub mod spec;

/// Failures of a study's computations.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    Inspect(#[from] crate::inspect::InspectError),
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    #[error("{0}")]
    Invalid(String),
    /// A study file that could not be used.
    #[error("{reason}: {}", path.display())]
    File {
        path: std::path::PathBuf,
        reason: String,
    },
    /// A file operation that failed.
    #[error("could not {verb} ({source}): {}", path.display())]
    Io {
        verb: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl StudyError {
    /// Maps an `io::Error` of `verb` on `path` (for `map_err`).
    pub fn io(verb: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io { verb, path, source }
    }
}
