//! Intensity windowing for 16-bit images and DICOM: which window to use (stored in the
//! project) and how to apply it. The same setting is used in training, inspection and the
//! export's metadata.

use serde::{Deserialize, Serialize};

/// How a project's 16-bit / DICOM intensities are mapped to the model's input range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum WindowSetting {
    /// The DICOM WindowCenter/WindowWidth tags where present, else percentiles 0.5–99.5.
    #[default]
    Auto,
    /// Per-image percentiles (e.g. 0.5 and 99.5) of the stored values.
    Percentiles { low: f32, high: f32 },
    /// A fixed window in the image's (rescaled) value units.
    Manual { center: f32, width: f32 },
}

/// A concrete window `[center - width/2, center + width/2]` mapped linearly to `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Window centre (level).
    pub center: f32,
    /// Window width (> 0).
    pub width: f32,
}

impl Window {
    /// Maps one value into `[0, 1]`.
    pub fn apply(&self, value: f32) -> f32 {
        let width = self.width.max(f32::EPSILON);
        ((value - (self.center - width / 2.0)) / width).clamp(0.0, 1.0)
    }
}
