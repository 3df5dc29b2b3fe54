//! The evaluation transform used by torchvision's ImageNet recipes: decode, resize the
//! shorter side, centre crop, scale to `[0, 1]`, normalise per channel, lay out as CHW.

use std::path::Path;

use image::{DynamicImage, imageops::FilterType};

use super::DataError;

/// Per-channel normalisation applied to `[0, 1]` RGB input.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Normalization {
    /// Channel means (R, G, B).
    pub mean: [f32; 3],
    /// Channel standard deviations (R, G, B).
    pub std: [f32; 3],
}

impl Normalization {
    /// torchvision's ImageNet statistics.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

/// A decoded, resized and normalised image ready to become one row of a batch tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedImage {
    /// `3 * size_px * size_px` values, channel-major (CHW).
    pub chw: Vec<f32>,
    /// Square side in pixels.
    pub size_px: u32,
}

/// Decodes an image file into RGB.
pub fn decode_rgb(path: &Path) -> Result<DynamicImage, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_owned(),
        source,
    })?;
    let decode_err = |reason: String| DataError::Decode {
        path: path.to_owned(),
        reason,
    };
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_err(e.to_string()))?;
    let image = reader.decode().map_err(|e| decode_err(e.to_string()))?;
    Ok(DynamicImage::ImageRgb8(image.to_rgb8()))
}

/// The ImageNet evaluation transform: resize the shorter side to `crop_px / 0.875`
/// (256 for 224), centre-crop `crop_px`, normalise.
pub fn prepare_center_crop(
    path: &Path,
    crop_px: u32,
    norm: Normalization,
) -> Result<PreparedImage, DataError> {
    let image = decode_rgb(path)?;
    let (width, height) = (image.width(), image.height());
    if width < 2 || height < 2 {
        return Err(DataError::TooSmall {
            path: path.to_owned(),
            width,
            height,
        });
    }
    let resize_px = (f64::from(crop_px) / 0.875).round();
    let scale = resize_px / f64::from(width.min(height));
    let new_w = ((f64::from(width) * scale).round() as u32).max(crop_px);
    let new_h = ((f64::from(height) * scale).round() as u32).max(crop_px);
    let resized = image.resize_exact(new_w, new_h, FilterType::Triangle);
    let left = (new_w - crop_px) / 2;
    let top = (new_h - crop_px) / 2;
    let cropped = resized.crop_imm(left, top, crop_px, crop_px).to_rgb8();
    Ok(PreparedImage {
        chw: normalize_chw(&cropped, norm),
        size_px: crop_px,
    })
}

/// Converts an RGB image into normalised CHW floats.
pub fn normalize_chw(image: &image::RgbImage, norm: Normalization) -> Vec<f32> {
    let plane = (image.width() * image.height()) as usize;
    let mut chw = vec![0.0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            let value = f32::from(pixel.0[c]) / 255.0;
            chw[c * plane + i] = (value - norm.mean[c]) / norm.std[c];
        }
    }
    chw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn center_crop_has_the_right_shape_and_normalisation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("red wide.png");
        image::RgbImage::from_pixel(300, 200, image::Rgb([255, 0, 0]))
            .save(&path)
            .unwrap();
        let norm = Normalization {
            mean: [0.5; 3],
            std: [0.5; 3],
        };
        let prepared = prepare_center_crop(&path, 64, norm).unwrap();
        assert_eq!(prepared.chw.len(), 3 * 64 * 64);
        assert!((prepared.chw[0] - 1.0).abs() < 1e-6);
        assert!((prepared.chw[64 * 64] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn corrupt_and_missing_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.jpg");
        std::fs::write(&path, b"\xff\xd8\xff garbage").unwrap();
        let err = prepare_center_crop(&path, 32, Normalization::IMAGENET).unwrap_err();
        assert!(err.to_string().contains("broken.jpg"), "{err}");
        let missing = decode_rgb(&dir.path().join("gone.png")).unwrap_err();
        assert!(matches!(missing, DataError::Read { .. }));
    }
}
