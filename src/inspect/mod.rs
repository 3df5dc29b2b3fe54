//! The inspection engine: what a trained run gets right and wrong on a split, as plain data
//! for the GUI and the CLI.
//!
//! - [`predictions`]: per-image probabilities and losses, top losses, the confusion matrix
//!   with the samples in each cell, per-class ROC curves;
//! - [`embeddings`]: one forward pass over a split giving embeddings and logits, cached
//!   under `runs/<id>/inspect/` by split fingerprint and checkpoint;
//! - [`projection`]: 2-D maps of the embeddings (PCA, Barnes-Hut t-SNE);
//! - [`neighbours`]: cosine nearest neighbours of a sample or of any embedded image;
//! - [`gradcam`]: class activation maps (Grad-CAM, HiResCAM, Grad-CAM++) at image resolution;
//! - [`overlay`]: segmentation overlays (prediction, ground truth, difference) and Dice per
//!   image;
//! - [`run_inspection`]: the jobs on a classification run (its validation split inspected,
//!   a heatmap over an image's preview, a t-SNE map), run by the GUI on a worker;
//! - [`segmentation`]: the jobs on a segmentation run (every validation image predicted and
//!   scored; class masks of image files, shared with `predict`);
//! - [`detection`]: the jobs on a detection run (boxes and COCO's metrics); [`det_compare`]:
//!   the images where detection runs disagree, ranked.
//!
//! Long functions take a progress callback `(done, total)` and a stop flag, return
//! `Ok(None)` when stopped, and never touch the UI: the GUI runs them on a worker.

pub mod coco_detect;
pub mod det_compare;
pub mod detection;
pub mod embeddings;
pub mod gradcam;
pub mod neighbours;
pub mod overlay;
pub mod predictions;
pub mod projection;
pub mod run_inspection;
pub mod segmentation;
pub mod task;
pub mod try_images;

use std::path::PathBuf;

pub use embeddings::{SplitOutputs, embed_images, inspect_split, split_outputs};
pub use neighbours::{Neighbour, NeighbourIndex};
pub use predictions::Predictions;
pub use projection::{Projection, TsneOptions, pca, tsne};

/// A progress report: `(done, total)` in the unit of the task (images, iterations).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Failures of inspection; file errors name the file last.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Project(#[from] crate::project::ProjectError),
    #[error("invalid metric input: {0}")]
    Metrics(#[from] crate::train::metrics::MetricsError),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("could not encode the image ({reason}): {}", path.display())]
    Encode { reason: String, path: PathBuf },
    #[error("could not {action} ({source}): {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl InspectError {
    /// An I/O failure on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| InspectError::Io {
            action,
            path,
            source,
        }
    }
}
