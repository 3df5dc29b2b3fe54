//! Small renderings of data set images for browsing: an image decoded, windowed (16-bit and
//! DICOM) and shrunk to fit a square, and a segmentation mask turned into a coloured
//! overlay (fill and outline) of the same size. Runs on worker threads; plain `image` data.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};

use super::DataError;
use super::decode::{self, Decoded, FileFormat};
use super::mask::MaskEncoding;
use super::window::{self, WindowSetting};

/// An image rendered for display.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The pixels, at most `max_side_px` on the longer side (never enlarged).
    pub image: RgbImage,
    /// The file's own width and height.
    pub size_px: (u32, u32),
    /// Smallest and largest stored value (for the window sliders).
    pub value_range: Option<(f32, f32)>,
    /// Whether the window setting changes this image (16-bit, float or DICOM data).
    pub windowed: bool,
}

/// A mask as two overlays of the rendered image's size: filled regions and their outlines,
/// coloured by class (background transparent).
#[derive(Clone, Debug)]
pub struct MaskOverlay {
    /// Opaque class colours where the mask is not background.
    pub fill: RgbaImage,
    /// Opaque class colours on the class borders.
    pub outline: RgbaImage,
}

/// Decodes `path`, applies `window` to data that is not plain 8-bit, and shrinks the result
/// to at most `max_side_px` on its longer side.
pub fn render(
    path: &Path,
    window: &WindowSetting,
    max_side_px: u32,
) -> Result<Rendered, DataError> {
    let bytes = decode::read_bytes(path)?;
    let decoded = decode::decode_bytes(&bytes, path)?;
    let size_px = decoded.dimensions();
    let (rgb, value_range, windowed) = match decoded {
        Decoded::Image(image) if is_8bit(&image) => {
            let rgb = shrink(image.into_rgb8(), max_side_px);
            (rgb, Some((0.0, 255.0)), false)
        }
        Decoded::Image(image) => {
            let format = FileFormat::sniff(&bytes).unwrap_or(FileFormat::Png);
            let raw = decode::raw_from_dynamic(image, format);
            let rgb = shrink(window::render_rgb8(&raw, window), max_side_px);
            (rgb, raw.data_range(), !raw.passes_through())
        }
        Decoded::Dicom(raw) => {
            let rgb = shrink(window::render_rgb8(&raw, window), max_side_px);
            (rgb, raw.data_range(), !raw.passes_through())
        }
    };
    Ok(Rendered {
        image: rgb,
        size_px,
        value_range,
        windowed,
    })
}

fn is_8bit(image: &DynamicImage) -> bool {
    matches!(
        image,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
    )
}

/// `image` shrunk (never enlarged) to fit `max_side_px`, keeping its aspect ratio.
pub fn shrink(image: RgbImage, max_side_px: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    let (w, h) = shrunk_size(width, height, max_side_px);
    if (w, h) == (width, height) {
        return image;
    }
    imageops::thumbnail(&image, w, h)
}

/// The size [`shrink`] gives a `width` x `height` image.
pub fn shrunk_size(width: u32, height: u32, max_side_px: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_side_px || max_side_px == 0 {
        return (width, height);
    }
    let scale = max_side_px as f32 / longest as f32;
    let w = ((width as f32 * scale).round() as u32).max(1);
    let h = ((height as f32 * scale).round() as u32).max(1);
    (w, h)
}

/// The overlay of the mask at `path`, read with `encoding` (guessed when `None`), scaled
/// (nearest neighbour) to `width` x `height`.
pub fn mask_overlay(
    path: &Path,
    encoding: Option<MaskEncoding>,
    width: u32,
    height: u32,
) -> Result<MaskOverlay, DataError> {
    let classes = match encoding {
        Some(encoding) => decode::load_mask_with(path, encoding)?,
        None => decode::load_mask(path)?,
    };
    let classes = if classes.dimensions() == (width, height) {
        classes
    } else {
        imageops::resize(&classes, width.max(1), height.max(1), FilterType::Nearest)
    };
    Ok(overlay_of(&classes))
}

/// Fill and outline overlays of a class-index image.
pub fn overlay_of(classes: &GrayImage) -> MaskOverlay {
    let (width, height) = classes.dimensions();
    let mut fill = RgbaImage::new(width, height);
    let mut outline = RgbaImage::new(width, height);
    let at = |x: i64, y: i64| -> u8 {
        if x < 0 || y < 0 || x >= i64::from(width) || y >= i64::from(height) {
            0
        } else {
            classes.get_pixel(x as u32, y as u32).0[0]
        }
    };
    for (x, y, pixel) in classes.enumerate_pixels() {
        let class = pixel.0[0];
        if class == 0 {
            continue;
        }
        let [r, g, b] = class_colour(class);
        fill.put_pixel(x, y, image::Rgba([r, g, b, 255]));
        let (xi, yi) = (i64::from(x), i64::from(y));
        let border = [(-1, 0), (1, 0), (0, -1), (0, 1)]
            .iter()
            .any(|(dx, dy)| at(xi + dx, yi + dy) != class);
        if border {
            outline.put_pixel(x, y, image::Rgba([r, g, b, 255]));
        }
    }
    MaskOverlay { fill, outline }
}

/// A distinct colour per class index (class 1 is red).
pub fn class_colour(class: u8) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 8] = [
        [255, 64, 64],
        [64, 160, 255],
        [80, 220, 80],
        [255, 200, 40],
        [200, 90, 255],
        [40, 220, 220],
        [255, 130, 40],
        [255, 110, 200],
    ];
    PALETTE[usize::from(class.saturating_sub(1)) % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_keeps_aspect_and_never_enlarges() {
        let small = RgbImage::new(28, 28);
        assert_eq!(shrink(small, 96).dimensions(), (28, 28));
        let wide = RgbImage::new(400, 100);
        assert_eq!(shrink(wide, 96).dimensions(), (96, 24));
    }

    #[test]
    fn sixteen_bit_png_is_windowed_and_reports_its_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.png");
        let ramp = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(200, 50, |x, _| {
            image::Luma([1000 + x as u16 * 10])
        });
        ramp.save(&path).unwrap();
        let rendered = render(&path, &WindowSetting::Auto, 96).unwrap();
        assert!(rendered.windowed);
        assert_eq!(rendered.size_px, (200, 50));
        assert_eq!(rendered.image.dimensions(), (96, 24));
        assert_eq!(rendered.value_range, Some((1000.0, 2990.0)));
        let manual = WindowSetting::Manual {
            center: 0.0,
            width: 10.0,
        };
        let white = render(&path, &manual, 96).unwrap();
        assert_eq!(white.image.get_pixel(0, 0).0, [255; 3]);
    }

    #[test]
    fn overlay_outlines_the_border_of_a_region() {
        let mut classes = GrayImage::new(5, 5);
        for y in 1..4 {
            for x in 1..4 {
                classes.put_pixel(x, y, image::Luma([1]));
            }
        }
        let overlay = overlay_of(&classes);
        assert_eq!(overlay.fill.get_pixel(2, 2).0[3], 255);
        assert_eq!(overlay.outline.get_pixel(2, 2).0[3], 0);
        assert_eq!(overlay.outline.get_pixel(1, 2).0[3], 255);
        assert_eq!(overlay.fill.get_pixel(0, 0).0[3], 0);
    }
}
