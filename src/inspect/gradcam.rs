//! Grad-CAM (Selvaraju et al., 2017) for classification runs: which parts of an image made
//! the model choose a class.
//!
//! For a feature map `A` `[C, h, w]` of the backbone and the logit `y` of the target class,
//! the weights are the spatially averaged gradients `alpha_k = mean(dy / dA_k)` and the map is
//! `ReLU(sum_k alpha_k A_k)`, upsampled bilinearly to the input size and scaled to `[0, 1]`.
//! By default `A` is the coarsest map (the one the embedding is pooled from in every
//! family); a finer stage can be chosen with [`CamLayer::Index`] for sharper maps on small
//! inputs. For ViT the backbone's single map is the patch tokens entering the last encoder
//! block, reshaped to `[D, H/16, W/16]` (see `crate::model::vit`): Grad-CAM over the last
//! block's tokens, as pytorch-grad-cam does for ViTs.
//!
//! Heatmaps are computed on the evaluation-transformed input (shorter side resized to
//! `size / crop_fraction`, centre crop of `size`); [`to_original`] maps one back onto the original
//! image, where pixels outside the crop get 0.

use std::path::Path;

use image::{Rgb, RgbImage, Rgba, RgbaImage};
use tch::{Kind, Tensor};

use super::InspectError;
use super::overlay::write_png;
use crate::train::TrainedModel;

/// [`CamLayer::Auto`] takes the coarsest map with at least this many cells on a side.
pub const AUTO_MIN_SIDE: i64 = 7;

/// Images per forward/backward pass (bounds memory for long lists).
const CHUNK_IMAGES: i64 = 16;

/// Which class the heatmap explains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CamTarget {
    /// The class with the highest logit, per image.
    #[default]
    Predicted,
    /// This class index for every image.
    Class(usize),
}

/// Which backbone feature map Grad-CAM looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CamLayer {
    /// The last, coarsest map (stride 32 for CNNs, the token map for ViT).
    #[default]
    Coarsest,
    /// `BackboneOutput::features[i]`, fine to coarse (CNNs: strides 2, 4, 8, 16, 32).
    Index(usize),
    /// The coarsest map that is still at least [`AUTO_MIN_SIDE`] cells on a side (the
    /// coarsest at 224 px; a finer stage on small inputs, where the coarsest is 2x2).
    Auto,
}

/// How the feature map `A` and the gradient `G = dy / dA` of the class logit `y` make the
/// heatmap (before the upsampling and the `[0, 1]` scaling).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CamMethod {
    /// Grad-CAM (Selvaraju et al., 2017): `ReLU(sum_k mean(G_k) A_k)`.
    #[default]
    GradCam,
    /// HiResCAM (Draelos & Carin, 2020): `ReLU(sum_k G_k * A_k)`, element-wise, so each
    /// location keeps its own gradient instead of the channel's spatial mean.
    HiResCam,
    /// Grad-CAM++ (Chattopadhay et al., 2018): channel weights
    /// `sum_ij ReLU(G_kij) a_kij` with `a = G^2 / (2 G^2 + sum_ij(A_k) G^3)`, the closed form
    /// of the paper for an exponential output.
    GradCamPlusPlus,
}

/// What a class-activation map explains, where, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CamOptions {
    /// The class explained.
    pub target: CamTarget,
    /// The feature map explained.
    pub layer: CamLayer,
    /// The weighting of the map by the gradient.
    pub method: CamMethod,
}

/// A class-activation heatmap: row-major values in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// Width in pixels.
    pub width_px: u32,
    /// Height in pixels.
    pub height_px: u32,
    /// `width_px * height_px` values, row by row.
    pub values: Vec<f32>,
    /// The explained class index.
    pub class: usize,
    /// The model's probability for that class.
    pub score: f32,
}

impl Heatmap {
    /// The value at `(x, y)`, 0 outside.
    pub fn get(&self, x: u32, y: u32) -> f32 {
        if x >= self.width_px || y >= self.height_px {
            return 0.0;
        }
        self.values[(y * self.width_px + x) as usize]
    }

    /// The position `(x, y)` of the largest value (the first one on ties).
    pub fn peak(&self) -> (u32, u32) {
        let mut best = (0usize, f32::NEG_INFINITY);
        for (i, &v) in self.values.iter().enumerate() {
            if v > best.1 {
                best = (i, v);
            }
        }
        let width = self.width_px.max(1) as usize;
        ((best.0 % width) as u32, (best.0 / width) as u32)
    }
}

/// Grad-CAM heatmaps at input resolution for normalised images `[N, 3, H, W]` (as the
/// run's evaluation transform makes them), one per image.
pub fn grad_cam(
    model: &mut TrainedModel,
    images: &Tensor,
    target: CamTarget,
    layer: CamLayer,
) -> Result<Vec<Heatmap>, InspectError> {
    let method = CamMethod::GradCam;
    class_activation_maps(
        model,
        images,
        CamOptions {
            target,
            layer,
            method,
        },
    )
}

/// Gradient-based class-activation heatmaps ([`CamMethod`]) at input resolution for
/// normalised images `[N, 3, H, W]`, one per image.
pub fn class_activation_maps(
    model: &mut TrainedModel,
    images: &Tensor,
    options: CamOptions,
) -> Result<Vec<Heatmap>, InspectError> {
    let mut heatmaps = Vec::new();
    for chunk in images.f_split(CHUNK_IMAGES, 0)? {
        heatmaps.extend(cam_batch(model, &chunk, options)?);
    }
    Ok(heatmaps)
}

fn cam_batch(
    model: &mut TrainedModel,
    images: &Tensor,
    options: CamOptions,
) -> Result<Vec<Heatmap>, InspectError> {
    let CamOptions {
        target,
        layer,
        method,
    } = options;
    let (height_px, width_px) = match images.size()[..] {
        [_, 3, h, w] => (h, w),
        ref other => {
            return Err(InspectError::Invalid(format!(
                "Grad-CAM expects images [N, 3, H, W], got {other:?}"
            )));
        }
    };
    // A fresh leaf that needs gradients, so the graph is recorded even for frozen weights.
    let images = model
        .prepare(images)?
        .f_detach()?
        .f_set_requires_grad(true)?;
    let Some(classifier) = model.net.as_classifier() else {
        return Err(InspectError::Invalid(
            "Grad-CAM is available for classification runs".into(),
        ));
    };
    let (features, logits) = classifier.forward_with_features(&images)?;
    let count = features.len();
    let index = match layer {
        CamLayer::Coarsest => count.saturating_sub(1),
        CamLayer::Index(i) => i,
        CamLayer::Auto => features
            .iter()
            .rposition(|f| f.dim() == 4 && f.size()[2].min(f.size()[3]) >= AUTO_MIN_SIDE)
            .unwrap_or(0),
    };
    let map = features.get(index).ok_or_else(|| {
        InspectError::Invalid(format!(
            "the backbone has {count} feature maps, there is no map {index}"
        ))
    })?;
    if map.dim() != 4 {
        return Err(InspectError::Invalid(format!(
            "feature map {index} has shape {:?}, not [N, C, h, w]",
            map.size()
        )));
    }
    let classes = target_classes(&logits, target)?;
    let selected = logits.f_gather(1, &classes.f_unsqueeze(1)?, false)?;
    let grads = Tensor::f_run_backward(&[selected.f_sum(selected.kind())?], &[map], false, false)?;
    let grad = grads
        .first()
        .ok_or_else(|| InspectError::Invalid("no gradient for the feature map".into()))?;
    // Float32, or float64 for a model converted by `TrainedModel::to_double`.
    let kind = if map.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let cam = tch::no_grad(|| -> Result<Tensor, tch::TchError> {
        let activations = map.f_detach()?.f_to_kind(kind)?;
        let cam = weighted_map(&activations, &grad.f_to_kind(kind)?, method)?
            .f_relu()?
            .f_upsample_bilinear2d([height_px, width_px], false, None, None)?;
        normalise_per_image(&cam)
    })?;
    let scores = tch::no_grad(|| {
        logits
            .f_softmax(1, Kind::Float)?
            .f_gather(1, &classes.f_unsqueeze(1)?, false)
    })?;
    to_heatmaps(&cam, &classes, &scores, width_px, height_px)
}

/// `sum_k w_k A_k` `[N, 1, h, w]` for activations `A` and gradients `G` `[N, C, h, w]`, with
/// the weights of `method` (before the ReLU).
fn weighted_map(
    activations: &Tensor,
    grad: &Tensor,
    method: CamMethod,
) -> Result<Tensor, tch::TchError> {
    let spatial = [2i64, 3];
    let kind = activations.kind();
    let weighted = match method {
        CamMethod::GradCam => {
            activations.f_mul(&grad.f_mean_dim(spatial.as_slice(), true, kind)?)?
        }
        CamMethod::HiResCam => activations.f_mul(grad)?,
        CamMethod::GradCamPlusPlus => {
            let g2 = grad.f_square()?;
            let g3 = g2.f_mul(grad)?;
            let sum_a = activations.f_sum_dim_intlist(spatial.as_slice(), true, kind)?;
            let denominator = g2.f_mul_scalar(2.0)?.f_add(&g3.f_mul(&sum_a)?)?;
            // Where the gradient is 0 the coefficient is 0 (not 0 / 0).
            let safe = denominator.f_where_scalarother(&denominator.f_ne(0.0)?, 1.0)?;
            let coefficients = g2.f_div(&safe)?;
            let weights = grad.f_relu()?.f_mul(&coefficients)?.f_sum_dim_intlist(
                spatial.as_slice(),
                true,
                kind,
            )?;
            activations.f_mul(&weights)?
        }
    };
    weighted.f_sum_dim_intlist(1, true, kind)
}

/// The class index to explain for each row of `logits` `[N, K]`.
fn target_classes(logits: &Tensor, target: CamTarget) -> Result<Tensor, InspectError> {
    let (n, k) = logits.size2()?;
    match target {
        CamTarget::Predicted => Ok(logits.f_argmax(1, false)?),
        CamTarget::Class(class) if (class as i64) < k => Ok(Tensor::f_full(
            [n],
            class as i64,
            (Kind::Int64, logits.device()),
        )?),
        CamTarget::Class(class) => Err(InspectError::Invalid(format!(
            "class {class} does not exist: the model has {k} classes"
        ))),
    }
}

/// `[N, 1, H, W]` scaled per image to `[0, 1]` (min-max); a constant map becomes zeros.
fn normalise_per_image(cam: &Tensor) -> Result<Tensor, tch::TchError> {
    let flat = cam.f_flatten(1, -1)?;
    let min = flat.f_amin([1i64].as_slice(), true)?;
    let max = flat.f_amax([1i64].as_slice(), true)?;
    let range = max.f_sub(&min)?;
    let usable = range.f_gt(1e-12)?;
    let scaled = flat.f_sub(&min)?.f_div(&range.f_clamp_min(1e-12)?)?;
    scaled.f_mul(&usable.f_to_kind(cam.kind())?)?.f_view_as(cam)
}

fn to_heatmaps(
    cam: &Tensor,
    classes: &Tensor,
    scores: &Tensor,
    width_px: i64,
    height_px: i64,
) -> Result<Vec<Heatmap>, InspectError> {
    let classes = Vec::<i64>::try_from(&classes.f_to_device(tch::Device::Cpu)?)?;
    let scores = Vec::<f32>::try_from(&scores.f_flatten(0, -1)?.f_to_device(tch::Device::Cpu)?)?;
    // Heatmaps hold float32 (a float64 map is rounded once, here).
    let cam = cam.f_to_device(tch::Device::Cpu)?.f_to_kind(Kind::Float)?;
    let mut out = Vec::with_capacity(classes.len());
    for (i, (&class, &score)) in classes.iter().zip(&scores).enumerate() {
        let values = Vec::<f32>::try_from(&cam.f_get(i as i64)?.f_flatten(0, -1)?)?;
        out.push(Heatmap {
            width_px: width_px as u32,
            height_px: height_px as u32,
            values,
            class: class as usize,
            score,
        });
    }
    Ok(out)
}

/// Where the evaluation transform's centre crop lies in an original image: the image is
/// resized so its shorter side is `round(crop_px / crop_fraction)` (each side rounded; 0.875
/// by default, see `TrainConfig::eval_crop_fraction`), then the
/// centred `crop_px` square is taken, exactly as the data loader does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalCrop {
    /// Original width in pixels.
    pub original_width_px: u32,
    /// Original height in pixels.
    pub original_height_px: u32,
    /// Width after the resize.
    pub resized_width_px: u32,
    /// Height after the resize.
    pub resized_height_px: u32,
    /// Left edge of the crop in the resized image.
    pub left_px: u32,
    /// Top edge of the crop in the resized image.
    pub top_px: u32,
    /// Side of the square crop.
    pub crop_px: u32,
}

impl EvalCrop {
    /// The crop of the classification evaluation transform for an image of the given size.
    pub fn new(
        original_width_px: u32,
        original_height_px: u32,
        crop_px: u32,
        crop_fraction: f32,
    ) -> Self {
        let short = original_width_px.min(original_height_px).max(1);
        let resize_px = f64::from(crate::data::loader::eval_resize_px(crop_px, crop_fraction));
        let scale = resize_px / f64::from(short);
        let side = |px: u32| ((f64::from(px) * scale).round() as u32).max(crop_px);
        let (resized_width_px, resized_height_px) =
            (side(original_width_px), side(original_height_px));
        Self {
            original_width_px,
            original_height_px,
            resized_width_px,
            resized_height_px,
            left_px: (resized_width_px - crop_px) / 2,
            top_px: (resized_height_px - crop_px) / 2,
            crop_px,
        }
    }

    /// Crop coordinates (continuous, pixel centres at `i + 0.5`) of the original pixel
    /// `(x, y)`'s centre, or `None` when it falls outside the crop.
    pub fn to_crop(&self, x: u32, y: u32) -> Option<(f64, f64)> {
        let sx = f64::from(self.resized_width_px) / f64::from(self.original_width_px.max(1));
        let sy = f64::from(self.resized_height_px) / f64::from(self.original_height_px.max(1));
        let cx = (f64::from(x) + 0.5) * sx - f64::from(self.left_px);
        let cy = (f64::from(y) + 0.5) * sy - f64::from(self.top_px);
        let side = f64::from(self.crop_px);
        ((0.0..side).contains(&cx) && (0.0..side).contains(&cy)).then_some((cx, cy))
    }
}

/// Maps a heatmap made on the evaluation crop back onto the original image of
/// `original_width_px` x `original_height_px` (bilinear sampling); pixels outside the crop,
/// which the model never saw, are 0.
pub fn to_original(
    heatmap: &Heatmap,
    original_width_px: u32,
    original_height_px: u32,
    crop_fraction: f32,
) -> Result<Heatmap, InspectError> {
    if heatmap.width_px != heatmap.height_px || heatmap.width_px == 0 {
        return Err(InspectError::Invalid(format!(
            "the heatmap of {}x{} px is not an evaluation crop",
            heatmap.width_px, heatmap.height_px
        )));
    }
    let crop = EvalCrop::new(
        original_width_px,
        original_height_px,
        heatmap.width_px,
        crop_fraction,
    );
    let mut values = Vec::with_capacity((original_width_px * original_height_px) as usize);
    for y in 0..original_height_px {
        for x in 0..original_width_px {
            values.push(match crop.to_crop(x, y) {
                Some((cx, cy)) => sample_bilinear(heatmap, cx - 0.5, cy - 0.5),
                None => 0.0,
            });
        }
    }
    Ok(Heatmap {
        width_px: original_width_px,
        height_px: original_height_px,
        values,
        ..heatmap.clone()
    })
}

/// Bilinear sample at continuous pixel-index coordinates, clamped to the edges.
fn sample_bilinear(heatmap: &Heatmap, u: f64, v: f64) -> f32 {
    let max_x = f64::from(heatmap.width_px - 1);
    let max_y = f64::from(heatmap.height_px - 1);
    let (u, v) = (u.clamp(0.0, max_x), v.clamp(0.0, max_y));
    let (x0, y0) = (u.floor(), v.floor());
    let (x1, y1) = ((x0 + 1.0).min(max_x), (y0 + 1.0).min(max_y));
    let (fx, fy) = ((u - x0) as f32, (v - y0) as f32);
    let at = |x: f64, y: f64| heatmap.get(x as u32, y as u32);
    let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
    let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Viridis (matplotlib's perceptually uniform colormap) at ten evenly spaced stops.
const VIRIDIS: [[u8; 3]; 10] = [
    [0x44, 0x01, 0x54],
    [0x48, 0x28, 0x78],
    [0x3e, 0x4a, 0x89],
    [0x31, 0x68, 0x8e],
    [0x26, 0x82, 0x8e],
    [0x1f, 0x9e, 0x89],
    [0x35, 0xb7, 0x79],
    [0x6d, 0xcd, 0x59],
    [0xb4, 0xde, 0x2c],
    [0xfd, 0xe7, 0x25],
];

/// The viridis colour of `value` in `[0, 1]` (clamped; NaN is 0), linearly interpolated.
pub fn colormap(value: f32) -> [u8; 3] {
    let value = if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    };
    let position = value * (VIRIDIS.len() - 1) as f32;
    let low = (position.floor() as usize).min(VIRIDIS.len() - 2);
    let t = position - low as f32;
    let (a, b) = (VIRIDIS[low], VIRIDIS[low + 1]);
    std::array::from_fn(|c| (f32::from(a[c]) * (1.0 - t) + f32::from(b[c]) * t).round() as u8)
}

/// The heatmap coloured with [`colormap`] as an RGBA layer whose alpha is `opacity`
/// (`[0, 1]`) everywhere.
pub fn heatmap_rgba(heatmap: &Heatmap, opacity: f32) -> RgbaImage {
    let alpha = (opacity.clamp(0.0, 1.0) * 255.0).round() as u8;
    RgbaImage::from_fn(heatmap.width_px, heatmap.height_px, |x, y| {
        let [r, g, b] = colormap(heatmap.get(x, y));
        Rgba([r, g, b, alpha])
    })
}

/// The coloured heatmap blended onto `image` (same size) with `opacity` in `[0, 1]`.
pub fn blend_heatmap(
    image: &RgbImage,
    heatmap: &Heatmap,
    opacity: f32,
) -> Result<RgbImage, InspectError> {
    if image.dimensions() != (heatmap.width_px, heatmap.height_px) {
        return Err(InspectError::Invalid(format!(
            "the image is {}x{} px but the heatmap {}x{} px",
            image.width(),
            image.height(),
            heatmap.width_px,
            heatmap.height_px
        )));
    }
    let opacity = opacity.clamp(0.0, 1.0);
    Ok(RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let under = image.get_pixel(x, y).0;
        let over = colormap(heatmap.get(x, y));
        Rgb(std::array::from_fn(|c| {
            (f32::from(under[c]) * (1.0 - opacity) + f32::from(over[c]) * opacity).round() as u8
        }))
    }))
}

/// Writes the heatmap blended onto `image` as a PNG at `path` (atomically).
pub fn write_blended_png(
    path: &Path,
    image: &RgbImage,
    heatmap: &Heatmap,
    opacity: f32,
) -> Result<(), InspectError> {
    let blended = blend_heatmap(image, heatmap, opacity)?;
    write_png(path, &blended.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(width_px: u32, height_px: u32, values: Vec<f32>) -> Heatmap {
        Heatmap {
            width_px,
            height_px,
            values,
            class: 0,
            score: 1.0,
        }
    }

    #[test]
    fn peak_is_the_first_largest_value() {
        let h = map(3, 2, vec![0.1, 0.2, 0.9, 0.3, 0.9, 0.0]);
        assert_eq!(h.peak(), (2, 0));
    }

    #[test]
    fn eval_crop_matches_the_loader_geometry() {
        // 400x300 at 224: shorter side 256, width round(400 * 256 / 300) = 341.
        let crop = EvalCrop::new(400, 300, 224, 0.875);
        assert_eq!((crop.resized_width_px, crop.resized_height_px), (341, 256));
        assert_eq!((crop.left_px, crop.top_px), (58, 16));
        // The image centre lands on the crop centre; the corners are cut off.
        let (cx, cy) = crop.to_crop(200, 150).unwrap();
        assert!(
            (cx - 112.0).abs() < 1.0 && (cy - 112.0).abs() < 1.0,
            "{cx} {cy}"
        );
        assert_eq!(crop.to_crop(0, 0), None);
        assert_eq!(crop.to_crop(399, 299), None);
    }

    #[test]
    fn to_original_keeps_the_peak_and_zeroes_outside_the_crop() {
        // A 16 px crop heatmap with a single hot pixel right of centre.
        let mut values = vec![0.0; 256];
        values[8 * 16 + 12] = 1.0;
        let h = map(16, 16, values);
        // 40x20 original: shorter side -> round(16 / 0.875) = 18, width 36, crop at x 10..26
        // and y 1..17 of the resized image (scale 0.9).
        let orig = to_original(&h, 40, 20, 0.875).unwrap();
        assert_eq!((orig.width_px, orig.height_px), (40, 20));
        let (px, py) = orig.peak();
        // Crop centre (12.5, 8.5) is resized (22.5, 9.5), original (25.0, 10.6).
        assert!((24..=25).contains(&px) && py == 10, "{px} {py}");
        assert_eq!(orig.get(0, 10), 0.0);
        assert_eq!(orig.get(39, 10), 0.0);
        assert!(orig.values.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn colormap_runs_from_dark_violet_to_yellow_with_rising_lightness() {
        assert_eq!(colormap(0.0), VIRIDIS[0]);
        assert_eq!(colormap(1.0), VIRIDIS[9]);
        assert_eq!(colormap(f32::NAN), VIRIDIS[0]);
        let luma =
            |c: [u8; 3]| 0.3 * f32::from(c[0]) + 0.59 * f32::from(c[1]) + 0.11 * f32::from(c[2]);
        let lumas: Vec<f32> = (0..=20).map(|i| luma(colormap(i as f32 / 20.0))).collect();
        assert!(lumas.windows(2).all(|w| w[1] > w[0]), "{lumas:?}");
    }

    #[test]
    fn blending_mixes_image_and_colour_by_opacity() {
        let image = RgbImage::from_pixel(2, 1, Rgb([200, 0, 100]));
        let h = map(2, 1, vec![0.0, 1.0]);
        let none = blend_heatmap(&image, &h, 0.0).unwrap();
        assert_eq!(none, image);
        let full = blend_heatmap(&image, &h, 1.0).unwrap();
        assert_eq!(full.get_pixel(1, 0).0, VIRIDIS[9]);
        let half = blend_heatmap(&image, &h, 0.5).unwrap();
        let expected = [
            ((200.0 + f32::from(VIRIDIS[0][0])) / 2.0).round() as u8,
            (f32::from(VIRIDIS[0][1]) / 2.0).round() as u8,
            ((100.0 + f32::from(VIRIDIS[0][2])) / 2.0).round() as u8,
        ];
        assert_eq!(half.get_pixel(0, 0).0, expected);
        assert!(blend_heatmap(&RgbImage::new(3, 1), &h, 0.5).is_err());
        let layer = heatmap_rgba(&h, 0.25);
        assert_eq!(layer.get_pixel(1, 0).0[3], 64);
    }
}
