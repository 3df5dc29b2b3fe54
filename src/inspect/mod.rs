//! Inspecting a trained model: Grad-CAM heatmaps and segmentation overlays.
//! (Minimal module file of the `gradcam` branch; the lead merges it with the rest.)

pub mod gradcam;
pub mod overlay;

/// Failures of an inspection; file errors name the file last.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
    #[error("invalid inspection input: {0}")]
    Invalid(String),
    #[error("could not encode the image ({reason}): {}", path.display())]
    Encode {
        reason: String,
        path: std::path::PathBuf,
    },
}
