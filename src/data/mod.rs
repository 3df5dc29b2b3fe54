//! Reading images and preparing them for a backbone. Pure Rust until the last step that
//! makes a tensor.
//!
//! Ingest: [`decode`] (every file format, DICOM in [`dicom`]), [`window`] (16-bit and DICOM
//! intensities to 8 bits), [`mask`] (mask encodings), [`source`] + [`scan`] (finding the
//! images of a data set and checking each one), [`detection`] (COCO, YOLO and Pascal VOC
//! box annotations into [`boxes`]), [`report`] (the validation report) and [`overrides`]
//! (the user's relabels and exclusions, read over a scan without touching the files).
//!
//! Feeding: [`split`] (grouped, stratified, seeded splits frozen in the project),
//! [`augment`] (seeded augmentation, masks following the geometry), [`cache`] (decoded
//! images bounded in bytes) and [`loader`] (parallel decode, prefetching batches).

pub mod augment;
pub mod box_geometry;
pub mod boxes;
pub mod cache;
pub mod decode;
pub mod detection;
pub mod dicom;
pub mod dicom_lengths;
pub mod letterbox;
pub mod loader;
pub mod manifest;
pub mod mask;
pub mod overrides;
pub mod pixels;
pub mod preprocess;
pub mod preview;
pub mod report;
pub mod scan;
pub mod source;
pub mod split;
pub mod targets;
pub mod thumbnail;
pub mod window;

use std::path::PathBuf;

/// Failures reading or decoding an image or a data set's listing; each names the file last.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("could not read the image ({source}): {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the file is empty (0 bytes): {}", path.display())]
    Empty { path: PathBuf },
    #[error("the file is not an image in a supported format ({reason}): {}", path.display())]
    NotAnImage { path: PathBuf, reason: String },
    #[error("could not decode the image ({reason}): {}", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error("the image file is truncated ({reason}): {}", path.display())]
    Truncated { path: PathBuf, reason: String },
    #[error("unsupported DICOM file ({reason}): {}", path.display())]
    UnsupportedDicom { path: PathBuf, reason: String },
    #[error("the image is too small to use ({width}x{height} px): {}", path.display())]
    TooSmall {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("the mask cannot be used ({reason}): {}", path.display())]
    Mask { path: PathBuf, reason: String },
    #[error("could not read the data set ({reason}): {}", path.display())]
    Source { path: PathBuf, reason: String },
    #[error("the scan was cancelled: {}", path.display())]
    Cancelled { path: PathBuf },
}

impl DataError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            DataError::Read { path, .. }
            | DataError::Empty { path }
            | DataError::NotAnImage { path, .. }
            | DataError::Decode { path, .. }
            | DataError::Truncated { path, .. }
            | DataError::UnsupportedDicom { path, .. }
            | DataError::TooSmall { path, .. }
            | DataError::Mask { path, .. }
            | DataError::Source { path, .. }
            | DataError::Cancelled { path } => path,
        }
    }
}
