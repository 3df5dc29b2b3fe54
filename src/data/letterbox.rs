//! Darknet's letterbox: an image scaled to fit a square without changing its aspect ratio,
//! centred on a grey (0.5) canvas, and the way back from the square's pixels to the image's.

use std::path::Path;

use image::imageops::FilterType;

use super::DataError;
use super::preprocess::{Normalization, PreparedImage, decode_rgb, normalize_chw};

/// Where an image sits inside its letterboxed square.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// The image's own width and height in pixels.
    pub width: u32,
    pub height: u32,
    /// Square pixels per image pixel.
    pub scale: f32,
    /// The scaled image's offset inside the square.
    pub left: u32,
    pub top: u32,
}

impl Letterbox {
    /// The placement of a `width` x `height` image in a `side` square, as darknet's
    /// `letterbox_image` computes it.
    pub fn fit(width: u32, height: u32, side: u32) -> Self {
        let scale = (side as f32 / width as f32).min(side as f32 / height as f32);
        let (new_w, new_h) = scaled(width, height, scale, side);
        Self {
            width,
            height,
            scale,
            left: (side - new_w) / 2,
            top: (side - new_h) / 2,
        }
    }

    /// A box `[x0, y0, x1, y1]` in square pixels, in the image's own pixels (clipped to it).
    pub fn to_image(&self, b: [f32; 4]) -> [f32; 4] {
        let x = |v: f32| ((v - self.left as f32) / self.scale).clamp(0.0, self.width as f32);
        let y = |v: f32| ((v - self.top as f32) / self.scale).clamp(0.0, self.height as f32);
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }
}

fn scaled(width: u32, height: u32, scale: f32, side: u32) -> (u32, u32) {
    let w = ((width as f32 * scale).round() as u32).clamp(1, side);
    let h = ((height as f32 * scale).round() as u32).clamp(1, side);
    (w, h)
}

/// Grey of the canvas, on the [0, 1] scale.
const CANVAS: f32 = 0.5;

/// Decodes the image at `path` and letterboxes it into a `side` square, normalised.
pub fn prepare_letterbox(
    path: &Path,
    side: u32,
    norm: Normalization,
) -> Result<(PreparedImage, Letterbox), DataError> {
    let image = decode_rgb(path)?;
    let (width, height) = (image.width(), image.height());
    if width < 2 || height < 2 {
        return Err(DataError::TooSmall {
            path: path.to_owned(),
            width,
            height,
        });
    }
    let placed = Letterbox::fit(width, height, side);
    let (new_w, new_h) = scaled(width, height, placed.scale, side);
    let resized = image
        .resize_exact(new_w, new_h, FilterType::Triangle)
        .to_rgb8();
    let plane = (side * side) as usize;
    let mut chw = vec![0.0f32; 3 * plane];
    for c in 0..3 {
        let value = (CANVAS - norm.mean[c]) / norm.std[c];
        chw[c * plane..(c + 1) * plane].fill(value);
    }
    // The scaled image, normalised, row by row into the canvas.
    let inner = normalize_chw(&resized, norm);
    let (width, inner_plane) = (new_w as usize, (new_w * new_h) as usize);
    for c in 0..3 {
        for y in 0..new_h as usize {
            let from = c * inner_plane + y * width;
            let to = c * plane + (y + placed.top as usize) * side as usize + placed.left as usize;
            chw[to..to + width].copy_from_slice(&inner[from..from + width]);
        }
    }
    Ok((PreparedImage { chw, size_px: side }, placed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_image_is_centred_vertically_and_boxes_map_back() {
        let placed = Letterbox::fit(768, 576, 416);
        assert_eq!((placed.left, placed.top), (0, 52));
        assert!((placed.scale - 416.0 / 768.0).abs() < 1e-6);
        let back = placed.to_image([0.0, 52.0, 416.0, 364.0]);
        for (got, want) in back.iter().zip([0.0, 0.0, 768.0, 576.0]) {
            assert!((got - want).abs() < 0.5, "{back:?}");
        }
    }

    #[test]
    fn the_canvas_is_grey_around_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tall.png");
        image::RgbImage::from_pixel(20, 40, image::Rgb([255, 0, 0]))
            .save(&path)
            .unwrap();
        let norm = Normalization {
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let (prepared, placed) = prepare_letterbox(&path, 32, norm).unwrap();
        assert_eq!((placed.left, placed.top), (8, 0));
        let red = &prepared.chw[..32 * 32];
        assert_eq!(red[0], 0.5); // left margin
        assert_eq!(red[16], 1.0); // inside the image
        assert_eq!(prepared.chw[32 * 32 + 16], 0.0); // green inside the image
    }
}
