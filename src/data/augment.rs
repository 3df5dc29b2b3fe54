//! Seeded per-sample augmentation of RGB8 images (and their masks) for training.
//!
//! Geometry: random resized crop (torchvision's `RandomResizedCrop` parameters), small
//! rotations, then horizontal/vertical flips and 90-degree rotations. Tone: brightness,
//! contrast (torchvision's `ColorJitter` definitions) and gamma. A mask receives exactly the
//! same geometric transform with nearest-neighbour sampling and never a tone change.
//!
//! The flips, 90-degree rotations, tone changes and the backbone normalisation are fused into
//! the single pass that writes the output, so the loader never copies an image twice.

use image::{GrayImage, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::pixels::{
    CropBox, Dihedral, NormLut, Pixels, ResizeFailed, resize_mask, rotate_mask, write_chw,
    write_mask,
};
use super::preprocess::Normalization;

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

impl AugmentConfig {
    /// No augmentation: the largest centred square of each image.
    pub fn none() -> Self {
        Self {
            hflip_prob: 0.0,
            crop_scale: [1.0, 1.0],
            crop_ratio: [1.0, 1.0],
            brightness: 0.0,
            contrast: 0.0,
            ..Self::default()
        }
    }

    /// Horizontal flips and a gentle crop: for small images or short schedules.
    pub fn light() -> Self {
        Self {
            crop_scale: [0.8, 1.0],
            crop_ratio: [0.9, 1.0 / 0.9],
            brightness: 0.0,
            contrast: 0.0,
            ..Self::default()
        }
    }

    /// Flips both ways, right-angle rotations, small rotations, wider crops and tone
    /// changes: for orientation-free images (microscopy, textures) and longer schedules.
    pub fn strong() -> Self {
        Self {
            vflip_prob: 0.5,
            rot90_prob: 0.5,
            crop_scale: [0.3, 1.0],
            rotation_max_deg: 10.0,
            brightness: 0.2,
            contrast: 0.2,
            gamma: 0.2,
            ..Self::default()
        }
    }

    /// A preset by name: `none`, `light`, `default` or `strong`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::none()),
            "light" => Some(Self::light()),
            "default" => Some(Self::default()),
            "strong" => Some(Self::strong()),
            _ => None,
        }
    }
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
    if width == 0 || height == 0 {
        return CropBox {
            left: 0,
            top: 0,
            width,
            height,
        };
    }
    let (w, h) = (f64::from(width), f64::from(height));
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
    let (cw, ch) = ((cw as u32).clamp(1, width), (ch as u32).clamp(1, height));
    CropBox {
        left: (width - cw) / 2,
        top: (height - ch) / 2,
        width: cw,
        height: ch,
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
fn mean_gray(image: &Pixels, brightness: f32) -> f32 {
    let channels = image.channels();
    let mut histogram = vec![[0u32; 256]; channels];
    for px in image.as_raw().chunks_exact(channels) {
        for (c, &v) in px.iter().enumerate() {
            histogram[c][usize::from(v)] += 1;
        }
    }
    let weights: &[f32] = if channels == 1 {
        &[1.0]
    } else {
        &[0.2989, 0.587, 0.114]
    };
    let count = (image.as_raw().len() / channels).max(1) as f32;
    let mut mean = 0.0;
    for (c, weight) in weights.iter().enumerate() {
        let sum: f32 = (0..256)
            .map(|v| histogram[c][v] as f32 * (v as f32 / 255.0 * brightness).clamp(0.0, 1.0))
            .sum();
        mean += weight * sum / count;
    }
    mean
}

/// The table for a plain (unaugmented) image.
pub fn plain_lut(norm: &Normalization) -> NormLut {
    build_lut(norm, |x| x)
}

fn build_lut(norm: &Normalization, curve: impl Fn(f32) -> f32) -> NormLut {
    let values: [f32; 256] = std::array::from_fn(|v| curve(v as f32 / 255.0));
    std::array::from_fn(|c| values.map(|x| (x - norm.mean[c]) / norm.std[c]))
}

/// The geometric part: crop, resize to `size`², small rotation (image and mask alike).
fn geometry(
    image: &Pixels,
    mask: Option<&GrayImage>,
    size: u32,
    params: &AugmentParams,
) -> Result<(Pixels, Option<GrayImage>), ResizeFailed> {
    let mut image = image.resized(Some(params.crop), size, size)?;
    let mut mask = mask
        .map(|m| resize_mask(m, Some(params.crop), size, size))
        .transpose()?;
    if params.rotation_deg != 0.0 {
        image = image.rotated(params.rotation_deg);
        mask = mask.map(|m| rotate_mask(&m, params.rotation_deg));
    }
    Ok((image, mask))
}

/// Augments one sample straight into the model's input: normalised CHW floats (`3 * size²`)
/// and, for segmentation, the mask (`size²`). `image` and `mask` share their size.
pub fn augment_into(
    image: &Pixels,
    mask: Option<&GrayImage>,
    params: &AugmentParams,
    norm: &Normalization,
    out_chw: &mut [f32],
    out_mask: Option<&mut [u8]>,
) -> Result<(), ResizeFailed> {
    let size = ((out_chw.len() / 3) as f64).sqrt() as u32;
    let (image, mask) = geometry(image, mask, size, params)?;
    let mean = if params.contrast != 1.0 {
        mean_gray(&image, params.brightness)
    } else {
        0.0
    };
    let lut = build_lut(norm, tone(params, mean));
    let view = params.dihedral.view(size, size, 0, 0);
    write_chw(&image, view, size, &lut, out_chw);
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
    // Scale 0..1 back to bytes instead of normalising.
    let bytes = Normalization {
        mean: [0.0; 3],
        std: [1.0 / 255.0; 3],
    };
    let plane = (size * size) as usize;
    let mut chw = vec![0.0f32; 3 * plane];
    let mut out_mask = mask.map(|_| vec![0u8; plane]);
    let source = Pixels::Rgb(image.clone());
    augment_into(
        &source,
        mask,
        &params,
        &bytes,
        &mut chw,
        out_mask.as_deref_mut(),
    )?;
    let mut rgb = RgbImage::new(size, size);
    for (i, px) in rgb.as_mut().chunks_exact_mut(3).enumerate() {
        for (c, value) in px.iter_mut().enumerate() {
            *value = chw[c * plane + i].round().clamp(0.0, 255.0) as u8;
        }
    }
    let out_mask = out_mask.and_then(|m| GrayImage::from_raw(size, size, m));
    Ok((rgb, out_mask))
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
        let flat = Pixels::Rgb(RgbImage::from_pixel(5, 2, image::Rgb([100; 3])));
        assert!((mean_gray(&flat, 1.0) - 100.0 / 255.0).abs() < 1e-3);
        let grey = Pixels::Gray(GrayImage::from_pixel(5, 2, image::Luma([100])));
        assert!((mean_gray(&grey, 2.0) - 200.0 / 255.0).abs() < 1e-4);
    }
}
