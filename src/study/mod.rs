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
pub mod logme;
pub mod mismatch;
pub mod probe_cv;
pub mod scores;

/// Failures of a study's computations.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error("{0}")]
    Invalid(String),
}
