//! Seeded per-sample augmentation of RGB8 images (and their masks) for training.
//!
//! Geometry: random resized crop (torchvision's `RandomResizedCrop` parameters), small
//! rotations, then horizontal/vertical flips and 90-degree rotations. Tone: brightness,
//! contrast (torchvision's `ColorJitter` definitions) and gamma. A mask receives exactly the
//! same geometric transform with nearest-neighbour sampling and never a tone change.
//!
//! The flips, 90-degree rotations, tone changes and the backbone normalisation are fused into
//! the single pass that writes the output, so the loader never copies an image twice.

use fast_image_resize as fir;
use image::{GrayImage, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::model::Normalization;

/// A resize that could not run (inconsistent buffer sizes; a bug rather than bad data).
#[derive(Debug, thiserror::Error)]
#[error("image resize failed: {0}")]
pub struct ResizeFailed(String);

/// Which augmentations to apply and how strongly; stored in the project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Probability of a horizontal flip.
    pub hflip_prob: f32,
    /// Probability of a vertical flip.
    pub vflip_prob: f32,
    /// Probability of a rotation by 90, 180 or 270 degrees (chosen uniformly).
    pub rot90_prob: f32,
    /// Range of the crop's area as a fraction of the image (torchvision: 0.08..1).
    pub crop_scale: [f32; 2],
    /// Range of the crop's aspect ratio, width / height.
    pub crop_ratio: [f32; 2],
    /// Largest small rotation in degrees (uniform in ±this; 0 disables). Corners are black.
    pub rotation_max_deg: f32,
    /// Brightness factor drawn from `[1 - b, 1 + b]`.
    pub brightness: f32,
    /// Contrast factor drawn from `[1 - c, 1 + c]` (blend with the mean grey level).
    pub contrast: f32,
    /// Gamma drawn from `[1 - g, 1 + g]`.
    pub gamma: f32,
}

impl Default for AugmentConfig {
    /// Moderate defaults for fine-tuning on domain images: a mild crop, horizontal flips,
    /// slight tone changes.
    fn default() -> Self {
        Self {
            hflip_prob: 0.5,
            vflip_prob: 0.0,
            rot90_prob: 0.0,
            crop_scale: [0.5, 1.0],
            crop_ratio: [3.0 / 4.0, 4.0 / 3.0],
            rotation_max_deg: 0.0,
            brightness: 0.1,
            contrast: 0.1,
            gamma: 0.0,
        }
    }
}

/// A crop rectangle in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// One of the eight flips/rotations of a square: output `(y, x)` reads source
/// `(a, b)` = optionally swapped `(x, y)`, then optionally mirrored per axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dihedral {
    pub transpose: bool,
    pub flip_y: bool,
    pub flip_x: bool,
}

impl Dihedral {
    const HFLIP: Dihedral = Dihedral {
        transpose: false,
        flip_y: false,
        flip_x: true,
    };
    const VFLIP: Dihedral = Dihedral {
        transpose: false,
        flip_y: true,
        flip_x: false,
    };
    /// Counter-clockwise quarter turn (numpy's `rot90`).
    const ROT90: Dihedral = Dihedral {
        transpose: true,
        flip_y: false,
        flip_x: true,
    };

    fn map(self, y: i64, x: i64, size: i64) -> (i64, i64) {
        let (a, b) = if self.transpose { (x, y) } else { (y, x) };
        let a = if self.flip_y { size - 1 - a } else { a };
        let b = if self.flip_x { size - 1 - b } else { b };
        (a, b)
    }

    /// The transform equal to applying `self` to the image, then `next`.
    pub fn then(self, next: Dihedral) -> Dihedral {
        let all = (0..8).map(|bits| Dihedral {
            transpose: bits & 4 != 0,
            flip_y: bits & 2 != 0,
            flip_x: bits & 1 != 0,
        });
        let points = [(0, 0), (0, 1), (1, 0), (2, 1), (1, 2)];
        all.into_iter()
            .find(|d| {
                points.iter().all(|&(y, x)| {
                    let (a, b) = next.map(y, x, 3);
                    d.map(y, x, 3) == self.map(a, b, 3)
                })
            })
            .unwrap_or_default()
    }

    /// How a `size`-square output walks a source of row width `width_px` starting at
    /// `(top, left)`.
    pub fn view(self, size: u32, width_px: u32, top: u32, left: u32) -> SourceView {
        let (s, w) = (i64::from(size), i64::from(width_px));
        let origin = i64::from(top) * w
            + i64::from(left)
            + if self.flip_y { (s - 1) * w } else { 0 }
            + if self.flip_x { s - 1 } else { 0 };
        let step_a = if self.flip_y { -w } else { w };
        let step_b = if self.flip_x { -1 } else { 1 };
        let (dy, dx) = if self.transpose {
            (step_b, step_a)
        } else {
            (step_a, step_b)
        };
        SourceView { origin, dy, dx }
    }
}

/// Output pixel `(y, x)` reads source pixel index `origin + y * dy + x * dx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceView {
    pub origin: i64,
    pub dy: i64,
    pub dx: i64,
}

/// The random draw for one sample; plain data, so it can be logged or replayed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AugmentParams {
    pub crop: CropBox,
    pub rotation_deg: f32,
    pub dihedral: Dihedral,
    pub brightness: f32,
    pub contrast: f32,
    pub gamma: f32,
}

/// Draws one sample's parameters for a source of `width` x `height` pixels.
pub fn sample_params(
    config: &AugmentConfig,
    width: u32,
    height: u32,
    rng: &mut impl Rng,
) -> AugmentParams {
    let crop = random_resized_crop(config, width, height, rng);
    let rotation_deg = if config.rotation_max_deg > 0.0 {
        rng.gen_range(-config.rotation_max_deg..=config.rotation_max_deg)
    } else {
        0.0
    };
    let mut dihedral = Dihedral::default();
    if rng.gen_bool(prob(config.hflip_prob)) {
        dihedral = dihedral.then(Dihedral::HFLIP);
    }
    if rng.gen_bool(prob(config.vflip_prob)) {
        dihedral = dihedral.then(Dihedral::VFLIP);
    }
    if rng.gen_bool(prob(config.rot90_prob)) {
        for _ in 0..rng.gen_range(1..=3) {
            dihedral = dihedral.then(Dihedral::ROT90);
        }
    }
    AugmentParams {
        crop,
        rotation_deg,
        dihedral,
        brightness: jitter(config.brightness, rng),
        contrast: jitter(config.contrast, rng),
        gamma: jitter(config.gamma, rng),
    }
}

/// A factor uniform in `[1 - spread, 1 + spread]` (never negative); 1 when `spread` is 0.
fn jitter(spread: f32, rng: &mut impl Rng) -> f32 {
    if spread > 0.0 {
        rng.gen_range((1.0 - spread).max(0.0)..=1.0 + spread)
    } else {
        1.0
    }
}

fn prob(p: f32) -> f64 {
    f64::from(p).clamp(0.0, 1.0)
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a random area and aspect
/// ratio, then a centre crop clamped to the ratio range.
fn random_resized_crop(
    config: &AugmentConfig,
    width: u32,
    height: u32,
    rng: &mut impl Rng,
) -> CropBox {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let area = w * h;
    let [s0, s1] = config.crop_scale.map(f64::from);
    let [r0, r1] = config.crop_ratio.map(|r| f64::from(r.max(1e-3)).ln());
    let (s0, s1) = (s0.min(s1).clamp(1e-4, 1.0), s1.max(s0).clamp(1e-4, 1.0));
    let (r0, r1) = (r0.min(r1), r1.max(r0));
    for _ in 0..10 {
        let target = area * rng.gen_range(s0..=s1);
        let ratio = rng.gen_range(r0..=r1).exp();
        let cw = (target * ratio).sqrt().round();
        let ch = (target / ratio).sqrt().round();
        if cw >= 1.0 && ch >= 1.0 && cw <= w && ch <= h {
            let (cw, ch) = (cw as u32, ch as u32);
            let top = rng.gen_range(0..=height - ch);
            let left = rng.gen_range(0..=width - cw);
            return CropBox {
                left,
                top,
                width: cw,
                height: ch,
            };
        }
    }
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < r0.exp() {
        (w, (w / r0.exp()).round())
    } else if in_ratio > r1.exp() {
        ((h * r1.exp()).round(), h)
    } else {
        (w, h)
    };
    let (cw, ch) = (
        (cw as u32).clamp(1, width.max(1)),
        (ch as u32).clamp(1, height.max(1)),
    );
    CropBox {
        left: (width.max(1) - cw) / 2,
        top: (height.max(1) - ch) / 2,
        width: cw,
        height: ch,
    }
}

/// Resizes (a crop of) an RGB8 image with antialiased bilinear filtering, like
/// torchvision's `Resize` on PIL images.
pub fn resize_rgb(
    src: &RgbImage,
    crop: Option<CropBox>,
    width: u32,
    height: u32,
) -> Result<RgbImage, ResizeFailed> {
    let buffer = resize_raw(
        src.as_raw(),
        src.width(),
        src.height(),
        fir::PixelType::U8x3,
        crop,
        width,
        height,
    )?;
    RgbImage::from_raw(width, height, buffer).ok_or_else(|| ResizeFailed("buffer size".into()))
}

/// Resizes (a crop of) a mask with nearest-neighbour sampling, so class indices survive.
pub fn resize_mask(
    src: &GrayImage,
    crop: Option<CropBox>,
    width: u32,
    height: u32,
) -> Result<GrayImage, ResizeFailed> {
    let buffer = resize_raw(
        src.as_raw(),
        src.width(),
        src.height(),
        fir::PixelType::U8,
        crop,
        width,
        height,
    )?;
    GrayImage::from_raw(width, height, buffer).ok_or_else(|| ResizeFailed("buffer size".into()))
}

fn resize_raw(
    src: &[u8],
    src_width: u32,
    src_height: u32,
    pixel_type: fir::PixelType,
    crop: Option<CropBox>,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ResizeFailed> {
    let fail = |e: &dyn std::fmt::Display| ResizeFailed(e.to_string());
    let source =
        fir::images::ImageRef::new(src_width, src_height, src, pixel_type).map_err(|e| fail(&e))?;
    let mut dest = fir::images::Image::new(width, height, pixel_type);
    let algorithm = if pixel_type == fir::PixelType::U8 {
        fir::ResizeAlg::Nearest
    } else {
        fir::ResizeAlg::Convolution(fir::FilterType::Bilinear)
    };
    let mut options = fir::ResizeOptions::new().resize_alg(algorithm);
    if let Some(c) = crop {
        options = options.crop(
            f64::from(c.left),
            f64::from(c.top),
            f64::from(c.width),
            f64::from(c.height),
        );
    }
    fir::Resizer::new()
        .resize(&source, &mut dest, &options)
        .map_err(|e| fail(&e))?;
    Ok(dest.into_vec())
}

/// Rotates a square RGB image about its centre (bilinear; outside is black).
pub fn rotate_rgb(src: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = src.dimensions();
    let mut out = RgbImage::new(w, h);
    let map = inverse_rotation(w, h, degrees);
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        let (sx, sy) = map(x, y);
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let fetch = |xx: f32, yy: f32| -> [f32; 3] {
            if xx < 0.0 || yy < 0.0 || xx >= w as f32 || yy >= h as f32 {
                return [0.0; 3];
            }
            src.get_pixel(xx as u32, yy as u32).0.map(f32::from)
        };
        let (p00, p01) = (fetch(x0, y0), fetch(x0 + 1.0, y0));
        let (p10, p11) = (fetch(x0, y0 + 1.0), fetch(x0 + 1.0, y0 + 1.0));
        for c in 0..3 {
            let top = p00[c] + (p01[c] - p00[c]) * fx;
            let bottom = p10[c] + (p11[c] - p10[c]) * fx;
            pixel.0[c] = (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Rotates a mask exactly like [`rotate_rgb`], with nearest-neighbour sampling (outside is 0).
pub fn rotate_mask(src: &GrayImage, degrees: f32) -> GrayImage {
    let (w, h) = src.dimensions();
    let map = inverse_rotation(w, h, degrees);
    GrayImage::from_fn(w, h, |x, y| {
        // Nearest neighbour of the same sampling point the bilinear image blends around.
        let (sx, sy) = map(x, y);
        let (nx, ny) = ((sx + 0.5).floor(), (sy + 0.5).floor());
        if nx < 0.0 || ny < 0.0 || nx >= w as f32 || ny >= h as f32 {
            image::Luma([0])
        } else {
            *src.get_pixel(nx as u32, ny as u32)
        }
    })
}

/// Output pixel → source position (pixel indices, centres at integers) for a rotation.
fn inverse_rotation(w: u32, h: u32, degrees: f32) -> impl Fn(u32, u32) -> (f32, f32) {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    move |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        (cx + cos * dx - sin * dy, cy + sin * dx + cos * dy)
    }
}

/// The tone change as a map on `[0, 1]`: brightness, contrast around `mean_gray`, gamma.
fn tone(params: &AugmentParams, mean_gray: f32) -> impl Fn(f32) -> f32 {
    let (b, c, g) = (params.brightness, params.contrast, params.gamma);
    move |x| {
        let x = (x * b).clamp(0.0, 1.0);
        let x = (c * x + (1.0 - c) * mean_gray).clamp(0.0, 1.0);
        if g == 1.0 { x } else { x.powf(g) }
    }
}

/// Mean grey level (ITU-R 601 weights, as torchvision) after the brightness change.
fn mean_gray(pixels: &[u8], brightness: f32) -> f32 {
    let mut histogram = [[0u32; 256]; 3];
    for px in pixels.chunks_exact(3) {
        for c in 0..3 {
            histogram[c][usize::from(px[c])] += 1;
        }
    }
    let weights = [0.2989f32, 0.587, 0.114];
    let count = (pixels.len() / 3).max(1) as f32;
    let mut mean = 0.0;
    for c in 0..3 {
        let sum: f32 = (0..256)
            .map(|v| histogram[c][v] as f32 * (v as f32 / 255.0 * brightness).clamp(0.0, 1.0))
            .sum();
        mean += weights[c] * sum / count;
    }
    mean
}

/// Per-channel tables from a byte to the normalised value the model sees.
pub type NormLut = [[f32; 256]; 3];

/// The table for a plain (unaugmented) image.
pub fn plain_lut(norm: &Normalization) -> NormLut {
    build_lut(norm, |x| x)
}

fn build_lut(norm: &Normalization, curve: impl Fn(f32) -> f32) -> NormLut {
    let mut lut = [[0.0f32; 256]; 3];
    for v in 0..256 {
        let x = curve(v as f32 / 255.0);
        for c in 0..3 {
            lut[c][v] = (x - norm.mean[c]) / norm.std[c];
        }
    }
    lut
}

/// Writes `size`² pixels of an RGB8 source, walked by `view`, as normalised CHW planes.
pub fn write_chw(src: &[u8], view: SourceView, size: u32, lut: &NormLut, out: &mut [f32]) {
    let plane = (size * size) as usize;
    let (red, rest) = out.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    let s = size as usize;
    for y in 0..s {
        let row_start = view.origin + y as i64 * view.dy;
        let out_row = y * s..(y + 1) * s;
        let rows = red[out_row.clone()]
            .iter_mut()
            .zip(&mut green[out_row.clone()])
            .zip(&mut blue[out_row]);
        for (x, ((r, g), b)) in rows.enumerate() {
            let at = 3 * (row_start + x as i64 * view.dx) as usize;
            *r = lut[0][usize::from(src[at])];
            *g = lut[1][usize::from(src[at + 1])];
            *b = lut[2][usize::from(src[at + 2])];
        }
    }
}

/// Writes `size`² mask values walked by `view`.
pub fn write_mask(src: &[u8], view: SourceView, size: u32, out: &mut [u8]) {
    let s = size as usize;
    for (y, row) in out.chunks_exact_mut(s).enumerate() {
        let row_start = view.origin + y as i64 * view.dy;
        for (x, value) in row.iter_mut().enumerate() {
            *value = src[(row_start + x as i64 * view.dx) as usize];
        }
    }
}

/// The geometric part: crop, resize to `size`², small rotation (image and mask alike).
fn geometry(
    image: &RgbImage,
    mask: Option<&GrayImage>,
    size: u32,
    params: &AugmentParams,
) -> Result<(RgbImage, Option<GrayImage>), ResizeFailed> {
    let mut image = resize_rgb(image, Some(params.crop), size, size)?;
    let mut mask = mask
        .map(|m| resize_mask(m, Some(params.crop), size, size))
        .transpose()?;
    if params.rotation_deg != 0.0 {
        image = rotate_rgb(&image, params.rotation_deg);
        mask = mask.map(|m| rotate_mask(&m, params.rotation_deg));
    }
    Ok((image, mask))
}

/// Augments one sample straight into the model's input: normalised CHW floats (`3 * size²`)
/// and, for segmentation, the mask (`size²`). `image` and `mask` share their size.
pub fn augment_into(
    image: &RgbImage,
    mask: Option<&GrayImage>,
    params: &AugmentParams,
    norm: &Normalization,
    out_chw: &mut [f32],
    out_mask: Option<&mut [u8]>,
) -> Result<(), ResizeFailed> {
    let size = ((out_chw.len() / 3) as f64).sqrt() as u32;
    let (image, mask) = geometry(image, mask, size, params)?;
    let mean = if params.contrast != 1.0 {
        mean_gray(image.as_raw(), params.brightness)
    } else {
        0.0
    };
    let lut = build_lut(norm, tone(params, mean));
    let view = params.dihedral.view(size, size, 0, 0);
    write_chw(image.as_raw(), view, size, &lut, out_chw);
    if let (Some(mask), Some(out)) = (mask, out_mask) {
        write_mask(mask.as_raw(), view, size, out);
    }
    Ok(())
}

/// Augments one sample to an RGB8 image (and mask) of `size`², e.g. to preview augmentations.
pub fn augment_pair(
    image: &RgbImage,
    mask: Option<&GrayImage>,
    size: u32,
    config: &AugmentConfig,
    rng: &mut impl Rng,
) -> Result<(RgbImage, Option<GrayImage>), ResizeFailed> {
    let params = sample_params(config, image.width(), image.height(), rng);
    let (geo_image, geo_mask) = geometry(image, mask, size, &params)?;
    let mean = if params.contrast != 1.0 {
        mean_gray(geo_image.as_raw(), params.brightness)
    } else {
        0.0
    };
    let curve = tone(&params, mean);
    let table: Vec<u8> = (0..256)
        .map(|v| (curve(v as f32 / 255.0) * 255.0).round() as u8)
        .collect();
    let view = params.dihedral.view(size, size, 0, 0);
    let src = geo_image.as_raw();
    let out = RgbImage::from_fn(size, size, |x, y| {
        let at = 3 * (view.origin + i64::from(y) * view.dy + i64::from(x) * view.dx) as usize;
        image::Rgb([
            table[usize::from(src[at])],
            table[usize::from(src[at + 1])],
            table[usize::from(src[at + 2])],
        ])
    });
    let out_mask = geo_mask.map(|m| {
        let mut values = vec![0u8; (size * size) as usize];
        write_mask(m.as_raw(), view, size, &mut values);
        GrayImage::from_raw(size, size, values).unwrap_or_default()
    });
    Ok((out, out_mask))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A black image with an asymmetric white "L" and disc; the mask marks the white pixels.
    fn shapes(width: u32, height: u32) -> (RgbImage, GrayImage) {
        let inside = |x: u32, y: u32| {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let l_shape = (0.15..0.3).contains(&fx) && (0.1..0.7).contains(&fy)
                || (0.15..0.6).contains(&fx) && (0.55..0.7).contains(&fy);
            let disc = (fx - 0.7).powi(2) + (fy - 0.3).powi(2) < 0.02;
            l_shape || disc
        };
        let image = RgbImage::from_fn(width, height, |x, y| {
            if inside(x, y) {
                image::Rgb([250, 240, 230])
            } else {
                image::Rgb([5, 10, 15])
            }
        });
        let mask = GrayImage::from_fn(width, height, |x, y| image::Luma([u8::from(inside(x, y))]));
        (image, mask)
    }

    #[test]
    fn image_and_mask_stay_aligned_under_every_geometric_transform() {
        let (image, mask) = shapes(300, 220);
        let config = AugmentConfig {
            hflip_prob: 0.5,
            vflip_prob: 0.5,
            rot90_prob: 0.75,
            crop_scale: [0.3, 1.0],
            rotation_max_deg: 20.0,
            brightness: 0.0,
            contrast: 0.0,
            ..AugmentConfig::default()
        };
        let mut seen = std::collections::HashSet::new();
        for seed in 0..24 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (out, out_mask) = augment_pair(&image, Some(&mask), 64, &config, &mut rng).unwrap();
            let out_mask = out_mask.unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            seen.insert(format!(
                "{:?}",
                sample_params(&config, 300, 220, &mut rng).dihedral
            ));
            let (mut checked, mut bad) = (0, 0);
            for y in 2..62u32 {
                for x in 2..62u32 {
                    let label = out_mask.get_pixel(x, y).0[0];
                    let uniform = (y - 2..=y + 2).all(|yy| {
                        (x - 2..=x + 2).all(|xx| out_mask.get_pixel(xx, yy).0[0] == label)
                    });
                    if !uniform {
                        continue;
                    }
                    checked += 1;
                    let bright = out.get_pixel(x, y).0[0] > 127;
                    // Black corners from the rotation carry mask 0 too.
                    if bright != (label == 1) {
                        bad += 1;
                    }
                }
            }
            assert!(
                checked > 1000,
                "seed {seed}: only {checked} interior pixels"
            );
            assert_eq!(bad, 0, "seed {seed}: {bad} of {checked} pixels disagree");
        }
        assert!(
            seen.len() >= 5,
            "too few distinct flips/rotations: {seen:?}"
        );
    }

    #[test]
    fn dihedral_composition_matches_applying_in_turn() {
        let size = 4u32;
        let source: Vec<u8> = (0..size * size).map(|v| v as u8).collect();
        let apply = |d: Dihedral, src: &[u8]| {
            let mut out = vec![0u8; src.len()];
            write_mask(src, d.view(size, size, 0, 0), size, &mut out);
            out
        };
        let ops = [Dihedral::HFLIP, Dihedral::VFLIP, Dihedral::ROT90];
        for first in ops {
            for second in ops {
                let stepwise = apply(second, &apply(first, &source));
                assert_eq!(apply(first.then(second), &source), stepwise);
            }
        }
        // numpy.rot90 of [[0, 1], [2, 3]] is [[1, 3], [0, 2]].
        let mut out = vec![0u8; 4];
        write_mask(&[0, 1, 2, 3], Dihedral::ROT90.view(2, 2, 0, 0), 2, &mut out);
        assert_eq!(out, [1, 3, 0, 2]);
    }

    #[test]
    fn crops_follow_the_scale_and_ratio_ranges() {
        let config = AugmentConfig {
            crop_scale: [0.2, 0.6],
            ..AugmentConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let c = random_resized_crop(&config, 400, 300, &mut rng);
            assert!(c.left + c.width <= 400 && c.top + c.height <= 300);
            let area = f64::from(c.width * c.height) / 120_000.0;
            assert!((0.19..0.61).contains(&area), "{c:?}");
            let ratio = f64::from(c.width) / f64::from(c.height);
            assert!((0.74..1.35).contains(&ratio), "{c:?}");
        }
    }

    #[test]
    fn tone_and_normalisation_are_fused_into_one_table() {
        let norm = Normalization {
            mean: [0.5; 3],
            std: [0.25; 3],
        };
        let lut = plain_lut(&norm);
        assert!((lut[0][255] - 2.0).abs() < 1e-6 && (lut[2][0] + 2.0).abs() < 1e-6);
        let params = AugmentParams {
            crop: CropBox {
                left: 0,
                top: 0,
                width: 1,
                height: 1,
            },
            rotation_deg: 0.0,
            dihedral: Dihedral::default(),
            brightness: 2.0,
            contrast: 1.0,
            gamma: 1.0,
        };
        let curve = tone(&params, 0.0);
        assert!((curve(0.25) - 0.5).abs() < 1e-6 && curve(0.9) == 1.0);
        let flat = [100u8; 30];
        assert!((mean_gray(&flat, 1.0) - 100.0 / 255.0).abs() < 1e-3);
    }
}
