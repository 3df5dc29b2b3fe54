//! Verification of an export: the saved file is reloaded with libtorch and run on the
//! verification batch and on a batch of another size; its outputs must match the in-app
//! model (as the app runs it: channels-last on the CPU, the data loader's normalisation) to
//! within [`super::TOLERANCE`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{CModule, Device, Kind, Tensor};

use super::trace::{InputFormat, OutputKind};
use super::{
    BatchOrigin, DETECTION_ROW_SCORE, DETECTION_TOLERANCE, ExportError, ExportOptions, TOLERANCE,
};
use crate::data::augment::plain_lut;
use crate::model::Normalization;
use crate::train::TrainedModel;

/// One input of the exported module and the in-app model's output for it.
pub struct Probe {
    /// In the exported module's input format.
    pub input: Tensor,
    /// The in-app model's output.
    pub expected: Tensor,
}

/// The outcome of a verification, as recorded in the metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Whether every output matched within the tolerance.
    pub passed: bool,
    /// What was checked or what failed.
    pub message: String,
    /// Where the inputs came from: `validation images`, `caller batch (...)` or
    /// `seeded random pixels (seed N)`.
    pub inputs: String,
    /// The batch sizes run.
    pub batch_sizes: Vec<i64>,
    /// Largest difference over all outputs, absolute for outputs within ±1, else relative to
    /// their largest magnitude; for detections absolute (`None` when the file did not run).
    pub max_abs_diff: Option<f64>,
    /// The tolerance.
    pub tolerance: f64,
}

/// Normalised images from uint8 pixels `[N, 3, H, W]` through the data loader's lookup table
/// (the arithmetic the app applies to every image it reads).
fn app_normalize(pixels: &Tensor, normalization: Normalization) -> Result<Tensor, ExportError> {
    let lut = plain_lut(&normalization);
    let index = pixels.f_to_kind(Kind::Int64)?;
    let planes = (0..3)
        .map(|c| {
            let table = Tensor::f_from_slice(&lut[c])?;
            Ok(table.f_take(&index.f_select(1, c as i64)?)?)
        })
        .collect::<Result<Vec<Tensor>, ExportError>>()?;
    Ok(Tensor::f_stack(&planes, 1)?.f_contiguous()?)
}

/// What the in-app model gets for the module's input `raw` (the data loader's normalisation).
pub fn app_images(
    raw: &Tensor,
    format: InputFormat,
    normalization: Normalization,
) -> Result<Tensor, ExportError> {
    match format {
        InputFormat::Normalized => Ok(raw.shallow_clone()),
        InputFormat::Uint8Nhwc => app_normalize(&raw.f_permute([0, 3, 1, 2])?, normalization),
        InputFormat::Float01Nchw => {
            let pixels = raw.f_mul_scalar(255.0)?.f_round()?;
            app_normalize(&pixels, normalization)
        }
    }
}

/// The probes: the whole batch `inputs` and a batch of another size (its first image, or
/// the image twice when there is only one), with the in-app model's outputs. Call before
/// tracing (tracing changes the model's layout).
pub fn reference_outputs(
    model: &mut TrainedModel,
    inputs: &Tensor,
    options: &ExportOptions,
    normalization: Normalization,
) -> Result<Vec<Probe>, ExportError> {
    let n = inputs.size().first().copied().unwrap_or(0);
    let other = if n > 1 {
        inputs.f_narrow(0, 0, 1)?
    } else {
        Tensor::f_cat(&[inputs, inputs], 0)?
    };
    [inputs.shallow_clone(), other.f_contiguous()?]
        .into_iter()
        .map(|input| {
            let images = app_images(&input, options.input, normalization)?;
            let expected = match options.output {
                OutputKind::Logits => model.logits(&images)?,
                OutputKind::Embedding => model.embeddings(&images)?,
                OutputKind::Detections => super::trace::packed_detections(&model.logits(&images)?)?,
            };
            Ok(Probe { input, expected })
        })
        .collect()
}

fn describe(origin: &BatchOrigin, n: i64) -> String {
    match origin {
        BatchOrigin::Validation => format!("{n} validation images"),
        BatchOrigin::Caller(what) => format!("{n} images: {what}"),
        BatchOrigin::Random { seed, reason } => {
            format!("{n} images of seeded random pixels (seed {seed}; {reason})")
        }
    }
}

/// Reloads the module at `path` and compares its outputs on every probe.
pub fn verify_file(
    path: &Path,
    probes: &[Probe],
    origin: &BatchOrigin,
    output: OutputKind,
) -> Verification {
    let tolerance = match output {
        OutputKind::Detections => DETECTION_TOLERANCE,
        _ => TOLERANCE,
    };
    let batch_sizes: Vec<i64> = probes
        .iter()
        .map(|p| p.input.size().first().copied().unwrap_or(0))
        .collect();
    let inputs = describe(origin, batch_sizes.first().copied().unwrap_or(0));
    let outcome = compare(path, probes, output);
    let what = match output {
        OutputKind::Detections => format!(
            " (scores and box coordinates in pixels of the rows scored {DETECTION_ROW_SCORE} or \
             more)"
        ),
        _ => String::new(),
    };
    let scale = match output {
        OutputKind::Detections => "",
        _ => " relative to the largest output magnitude when over 1",
    };
    let (passed, message, max_abs_diff) = match outcome {
        Ok(diff) if diff <= tolerance => (
            true,
            format!(
                "the reloaded file matches the app within {tolerance:e}{what} (max diff \
                 {diff:.3e}{scale})"
            ),
            Some(diff),
        ),
        Ok(diff) => (
            false,
            format!(
                "the reloaded file differs from the app by up to {diff:.3e}{scale}, more than \
                 {tolerance:e}{what}"
            ),
            Some(diff),
        ),
        Err(reason) => (false, reason, None),
    };
    Verification {
        passed,
        message,
        inputs,
        batch_sizes,
        max_abs_diff,
        tolerance,
    }
}

/// The largest absolute difference of `out` from `expected`, divided by the largest
/// magnitude of `expected` when that is over 1 (logits, embeddings). Decoded detections are
/// compared as sets, per image: each row `expected` scores at least [`DETECTION_ROW_SCORE`]
/// against the nearest row of `out` with the same class (rows of equal score may come in
/// either order, as top-k leaves ties); the rest are padding.
fn difference(out: &Tensor, expected: &Tensor, output: OutputKind) -> Result<f64, tch::TchError> {
    if output != OutputKind::Detections {
        if out.numel() == 0 {
            return Ok(0.0);
        }
        // Relative to the outputs' scale: logits of tens differ by float rounding (the app
        // runs channels-last, the module contiguous) more than 1e-5 in absolute terms.
        let scale = expected.f_abs()?.f_max()?.f_double_value(&[])?.max(1.0);
        return Ok(out.f_sub(expected)?.f_abs()?.f_max()?.f_double_value(&[])? / scale);
    }
    // [N, K, 1, 6] against [N, 1, K, 6]: every expected row with every output row.
    let pairs = expected
        .f_unsqueeze(2)?
        .f_sub(&out.f_unsqueeze(1)?)?
        .f_abs()?;
    let other_class = pairs.f_select(3, 5)?.f_gt(0.5)?.f_to_kind(Kind::Float)?;
    let (worst_field, _) = pairs.f_narrow(3, 0, 5)?.f_max_dim(3, false)?;
    let cost = worst_field.f_add(&other_class.f_mul_scalar(1e9)?)?;
    let (nearest, _) = cost.f_min_dim(2, false)?;
    let kept = expected
        .f_select(2, 4)?
        .f_ge(DETECTION_ROW_SCORE)?
        .f_to_kind(Kind::Float)?;
    let diff = nearest.f_mul(&kept)?;
    if diff.numel() == 0 {
        return Ok(0.0);
    }
    diff.f_max()?.f_double_value(&[])
}

/// The largest absolute difference over all probes, or why the file could not be run.
fn compare(path: &Path, probes: &[Probe], output: OutputKind) -> Result<f64, String> {
    let mut module = CModule::load_on_device(path, Device::Cpu)
        .map_err(|e| format!("libtorch cannot reload the file: {e}"))?;
    module.set_eval();
    let mut worst = 0.0f64;
    for probe in probes {
        let n = probe.input.size().first().copied().unwrap_or(0);
        let out = tch::no_grad(|| module.forward_ts(&[&probe.input]))
            .map_err(|e| format!("the reloaded file fails on a batch of {n}: {e}"))?;
        if out.size() != probe.expected.size() {
            return Err(format!(
                "the reloaded file returns {:?} for a batch of {n}, the app {:?}",
                out.size(),
                probe.expected.size()
            ));
        }
        let diff = difference(&out, &probe.expected, output)
            .map_err(|e| format!("comparing the outputs failed: {e}"))?;
        if !diff.is_finite() {
            return Err(format!("the outputs differ by {diff} on a batch of {n}"));
        }
        worst = worst.max(diff);
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_are_compared_relative_to_their_scale_and_small_outputs_absolutely() {
        let large = Tensor::from_slice(&[25.0f32, -12.0, 3.0]);
        let rounded = &large * (1.0 + 3e-6);
        let diff = difference(&rounded, &large, OutputKind::Logits).unwrap();
        assert!(
            diff <= TOLERANCE,
            "float rounding of logits of tens: {diff}"
        );
        let wrong = &large + 1e-3;
        assert!(difference(&wrong, &large, OutputKind::Logits).unwrap() > TOLERANCE);
        let small = Tensor::from_slice(&[0.5f32, -0.25]);
        let off = &small + 3e-5;
        let diff = difference(&off, &small, OutputKind::Embedding).unwrap();
        assert!(
            diff > TOLERANCE && diff < 4e-5,
            "absolute within ±1: {diff}"
        );
    }
}
