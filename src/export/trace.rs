//! Tracing a trained network into a TorchScript module with `CModule::create_by_tracing`:
//! on the CPU, contiguous (not channels-last) weights, evaluation mode, no gradients, every
//! variable frozen so it is baked into the graph as a constant; optionally with the
//! preprocessing (uint8 NHWC or float NCHW in `[0, 1]` to normalised NCHW) in front. Also the
//! conversions of a normalised verification batch into what the exported module takes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{CModule, Kind, Tensor};

use super::ExportError;
use crate::model::Normalization;
use crate::train::TrainedModel;
use crate::train::net::Net;

/// What the exported module takes as input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// Float32 `[N, 3, S, S]`, already normalised with the backbone's mean and std.
    #[default]
    Normalized,
    /// Uint8 `[N, S, S, 3]` RGB pixels (0..255); scaling and normalisation are baked in.
    Uint8Nhwc,
    /// Float32 `[N, 3, S, S]` RGB in `[0, 1]`; normalisation is baked in.
    Float01Nchw,
}

impl InputFormat {
    /// Whether the module normalises by itself.
    pub fn has_preprocessing(self) -> bool {
        self != InputFormat::Normalized
    }
}

/// What the exported module returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Logits: `[N, classes]`, or `[N, C, S, S]` per pixel for segmentation.
    #[default]
    Logits,
    /// The pooled backbone embedding `[N, D]` (classification runs).
    Embedding,
    /// Decoded detections `[N, K, 6]` (detection runs): per row `x0, y0, x1, y1` in input
    /// pixels, score, class index; best first.
    Detections,
}

impl OutputKind {
    /// The file name stem of the export.
    pub fn file_stem(self) -> &'static str {
        match self {
            OutputKind::Logits | OutputKind::Detections => "model",
            OutputKind::Embedding => "embedding",
        }
    }
}

/// The input normalisation of the run's backbone (as the app's data loader applies it).
pub fn normalization_of(model: &TrainedModel) -> Normalization {
    crate::train::project_source::normalization_of(&model.config.backbone)
}

/// Checks that `images` is `[N, 3, S, S]` with `N >= 1` and returns at most
/// [`super::MAX_VERIFICATION_IMAGES`] of them as contiguous float32.
pub fn check_batch(images: &Tensor, size_px: i64) -> Result<Tensor, ExportError> {
    match images.size()[..] {
        [n, 3, h, w] if n >= 1 && h == size_px && w == size_px => {
            let n = n.min(super::MAX_VERIFICATION_IMAGES as i64);
            Ok(images
                .f_narrow(0, 0, n)?
                .f_to_kind(Kind::Float)?
                .f_contiguous()?)
        }
        ref other => Err(ExportError::Config(format!(
            "the verification batch must be [N, 3, {size_px}, {size_px}], got {other:?}"
        ))),
    }
}

/// `n` images of seeded random pixels, normalised: `[n, 3, size, size]`.
pub fn random_batch(
    n: usize,
    size_px: i64,
    seed: u64,
    normalization: Normalization,
) -> Result<Tensor, ExportError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let count = n * 3 * (size_px * size_px) as usize;
    let pixels: Vec<u8> = (0..count).map(|_| rng.r#gen::<u8>()).collect();
    let nhwc = Tensor::f_from_slice(&pixels)?
        .f_view([n as i64, size_px, size_px, 3])?
        .f_permute([0, 3, 1, 2])?;
    normalize(
        &nhwc.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?,
        normalization,
    )
}

/// `[1, 3, 1, 1]` tensors of the mean and std.
fn stats(normalization: Normalization) -> Result<(Tensor, Tensor), ExportError> {
    let mean = Tensor::f_from_slice(&normalization.mean)?.f_view([1, 3, 1, 1])?;
    let std = Tensor::f_from_slice(&normalization.std)?.f_view([1, 3, 1, 1])?;
    Ok((mean, std))
}

/// `(x - mean) / std` per channel of `[N, 3, H, W]` values in `[0, 1]` (the data loader's
/// arithmetic, in float32).
pub fn normalize(unit: &Tensor, normalization: Normalization) -> Result<Tensor, ExportError> {
    let (mean, std) = stats(normalization)?;
    Ok(unit.f_sub(&mean)?.f_div(&std)?.f_contiguous()?)
}

/// The verification input in the module's `format`, from normalised images: unchanged, or
/// quantised to uint8 pixels (NHWC, or NCHW divided by 255).
pub fn raw_inputs(
    images: &Tensor,
    format: InputFormat,
    normalization: Normalization,
) -> Result<Tensor, ExportError> {
    if format == InputFormat::Normalized {
        return Ok(images.shallow_clone());
    }
    let (mean, std) = stats(normalization)?;
    let pixels = images
        .f_mul(&std)?
        .f_add(&mean)?
        .f_mul_scalar(255.0)?
        .f_round()?
        .f_clamp(0.0, 255.0)?
        .f_to_kind(Kind::Uint8)?;
    Ok(match format {
        InputFormat::Uint8Nhwc => pixels.f_permute([0, 2, 3, 1])?.f_contiguous()?,
        _ => pixels.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?,
    })
}

/// Normalised NCHW float images from the module's input `raw` (the baked-in preprocessing).
pub fn preprocess(
    raw: &Tensor,
    format: InputFormat,
    normalization: Normalization,
) -> Result<Tensor, ExportError> {
    preprocess_with(raw, format, &stats(normalization)?)
}

/// [`preprocess`] with the `[1, 3, 1, 1]` mean and std made beforehand: while tracing, a
/// tensor made from a slice would be recorded as an uninitialised `aten::empty`, whereas one
/// made before is baked in as a constant.
fn preprocess_with(
    raw: &Tensor,
    format: InputFormat,
    (mean, std): &(Tensor, Tensor),
) -> Result<Tensor, ExportError> {
    let unit = match format {
        InputFormat::Normalized => return Ok(raw.shallow_clone()),
        InputFormat::Float01Nchw => raw.shallow_clone(),
        InputFormat::Uint8Nhwc => raw
            .f_to_kind(Kind::Float)?
            .f_div_scalar(255.0)?
            .f_permute([0, 3, 1, 2])?,
    };
    Ok(unit.f_sub(mean)?.f_div(std)?.f_contiguous()?)
}

/// The network's output for normalised, contiguous `images` (no gradients, eval mode).
pub fn forward(net: &mut Net, images: &Tensor, output: OutputKind) -> Result<Tensor, ExportError> {
    let out = match output {
        OutputKind::Logits => tch::no_grad(|| net.logits(images, false, false))?,
        OutputKind::Detections => {
            let logits = tch::no_grad(|| net.logits(images, false, false))?;
            packed_detections(&logits)?
        }
        OutputKind::Embedding => match net.as_classifier() {
            Some(c) => tch::no_grad(|| c.embed(images, false))?,
            None => {
                return Err(ExportError::Config(
                    "an embedding-only model can be exported from classification runs".into(),
                ));
            }
        },
    };
    Ok(out)
}

/// The detector's `logits` decoded into the exported `[N, K, 6]` rows.
pub fn packed_detections(logits: &Tensor) -> Result<Tensor, ExportError> {
    use crate::train::detection::{TOP_K, decode, pack};
    Ok(tch::no_grad(|| {
        decode(logits, TOP_K).and_then(|d| pack(&d))
    })?)
}

/// Turns the model's variables contiguous (undoing channels-last) and frozen, so tracing
/// bakes them into the graph as constants. The model is meant for tracing afterwards.
fn freeze_contiguous(model: &mut TrainedModel) -> Result<(), ExportError> {
    tch::no_grad(|| {
        for (_, mut var) in model.net.vs().variables() {
            if !var.is_contiguous() {
                let plain = var.f_contiguous()?;
                var.f_set_data(&plain)?;
            }
            let _ = var.f_set_requires_grad(false)?;
        }
        Ok(())
    })
}

/// Traces `model` (made contiguous and frozen) into a module taking `options.input` at
/// `size_px` and returning `options.output`. The traced batch size is 2; the graph keeps
/// the batch dimension free for backbones whose forward pass does not read it.
pub fn trace(
    model: &mut TrainedModel,
    options: &super::ExportOptions,
    normalization: Normalization,
    size_px: i64,
) -> Result<CModule, ExportError> {
    freeze_contiguous(model)?;
    let example = match options.input {
        InputFormat::Uint8Nhwc => {
            Tensor::f_zeros([2, size_px, size_px, 3], (Kind::Uint8, tch::Device::Cpu))?
        }
        _ => Tensor::f_zeros([2, 3, size_px, size_px], (Kind::Float, tch::Device::Cpu))?,
    };
    let stats = stats(normalization)?;
    let mut failure: Option<ExportError> = None;
    let net = &mut model.net;
    let module = tch::no_grad(|| {
        CModule::create_by_tracing(
            "TransferWorkbenchExport",
            "forward",
            &[example],
            &mut |inputs| {
                let out = inputs
                    .first()
                    .ok_or_else(|| ExportError::Config("tracing received no input".into()))
                    .and_then(|raw| preprocess_with(raw, options.input, &stats))
                    .and_then(|images| forward(net, &images, options.output));
                match out {
                    Ok(out) => vec![out],
                    Err(e) => {
                        failure = Some(e);
                        Vec::new()
                    }
                }
            },
        )
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let mut module = module?;
    module.set_eval();
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint8_inputs_round_trip_and_preprocess_to_the_normalised_batch() {
        let norm = Normalization::IMAGENET;
        let images = random_batch(3, 8, 5, norm).unwrap();
        assert_eq!(images.size(), vec![3, 3, 8, 8]);
        for format in [InputFormat::Uint8Nhwc, InputFormat::Float01Nchw] {
            let raw = raw_inputs(&images, format, norm).unwrap();
            let back = preprocess(&raw, format, norm).unwrap();
            let diff = (&back - &images).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{format:?}: {diff}");
        }
        let nhwc = raw_inputs(&images, InputFormat::Uint8Nhwc, norm).unwrap();
        assert_eq!((nhwc.size(), nhwc.kind()), (vec![3, 8, 8, 3], Kind::Uint8));
        assert!(check_batch(&images, 16).is_err());
    }
}
