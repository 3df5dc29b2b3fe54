//! Reading images and preparing them for a backbone. Pure Rust until the last step that
//! makes a tensor.

pub mod augment;
pub mod cache;
pub mod decode;
pub mod loader;
pub mod pixels;
pub mod preprocess;
pub mod split;
pub mod window;

use std::path::PathBuf;

/// Failures reading or decoding an image; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("could not read the image ({source}): {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not decode the image ({reason}): {}", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error("the image is too small to use ({width}x{height} px): {}", path.display())]
    TooSmall {
        path: PathBuf,
        width: u32,
        height: u32,
    },
}
