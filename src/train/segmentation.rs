//! Segmentation loss (cross-entropy + soft Dice) and per-pixel evaluation counts.
//!
//! The task is told by the number of logit channels:
//! - **binary** (1 channel, the recommended binary set-up): the channel is the foreground
//!   logit; the loss is BCE-with-logits plus soft Dice of `sigmoid(logit)` against the
//!   foreground mask. The predicted mask is `logit > 0`;
//! - **multi-class** (`C >= 2` channels, background usually class 0): softmax cross-entropy
//!   plus soft Dice of the softmax probabilities against one-hot targets, averaged over all `C`
//!   classes. A two-class softmax also works this way.
//!
//! Targets are `[N, H, W]` class indices (`i64`, 0/1 for binary). Pixels equal to the
//! `ignore_index` count in neither term. The soft Dice of each class is computed over the whole
//! batch, `(2 sum(p t) + s) / (sum(p) + sum(t) + s)` with smoothing `s` (default 1), so an empty
//! mask predicted empty scores ~1 instead of 0/0, and the cross-entropy is a mean over the
//! valid pixels with at least one pixel in the denominator: no NaN for empty masks or
//! all-ignored batches.

use tch::{Kind, Reduction, Tensor};

/// Weights and options of the segmentation loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegLossConfig {
    /// Weight of the (binary) cross-entropy term.
    pub ce_weight: f64,
    /// Weight of the soft-Dice term.
    pub dice_weight: f64,
    /// Target value of pixels to leave out (e.g. 255 for unlabelled borders).
    pub ignore_index: Option<i64>,
    /// Dice smoothing added to numerator and denominator.
    pub smooth: f64,
}

impl Default for SegLossConfig {
    fn default() -> Self {
        Self {
            ce_weight: 1.0,
            dice_weight: 1.0,
            ignore_index: None,
            smooth: 1.0,
        }
    }
}

/// The loss and its two terms (scalars; `total` carries the gradient).
#[derive(Debug)]
pub struct SegLoss {
    /// `ce_weight * cross_entropy + dice_weight * dice`.
    pub total: Tensor,
    /// Mean (binary) cross-entropy over valid pixels.
    pub cross_entropy: Tensor,
    /// `1 - mean soft Dice`.
    pub dice: Tensor,
}

/// The loss of `logits` `[N, C, H, W]` against `targets` `[N, H, W]` (see the module doc).
pub fn segmentation_loss(
    logits: &Tensor,
    targets: &Tensor,
    config: &SegLossConfig,
) -> Result<SegLoss, tch::TchError> {
    let targets = targets.f_to_kind(Kind::Int64)?;
    let valid = match config.ignore_index {
        Some(ignore) => targets.f_ne(ignore)?,
        None => targets.f_ones_like()?.f_to_kind(Kind::Bool)?,
    };
    // Ignored pixels get class 0 so one-hot and gathers stay in range; `valid` masks them out.
    let safe_targets = targets.f_where_scalarother(&valid, 0)?;
    let ce_targets = targets.f_where_scalarother(&valid, -100)?;
    let valid = valid.f_to_kind(logits.kind())?;
    let valid_pixels = valid.f_sum(Kind::Float)?.f_clamp_min(1.0)?;
    let channels = logits.size().get(1).copied().unwrap_or(0);
    let (cross_entropy, probabilities, one_hot) = if channels == 1 {
        let logits = logits.f_squeeze_dim(1)?;
        let target = safe_targets.f_to_kind(logits.kind())?;
        let bce = logits.f_binary_cross_entropy_with_logits::<Tensor>(
            &target,
            None,
            None,
            Reduction::None,
        )?;
        let ce = bce
            .f_mul(&valid)?
            .f_sum(Kind::Float)?
            .f_div(&valid_pixels)?;
        (
            ce,
            logits.f_sigmoid()?.f_unsqueeze(1)?,
            target.f_unsqueeze(1)?,
        )
    } else {
        let ce =
            logits.f_cross_entropy_loss::<Tensor>(&ce_targets, None, Reduction::None, -100, 0.0)?;
        let ce = ce.f_sum(Kind::Float)?.f_div(&valid_pixels)?;
        let one_hot = safe_targets
            .f_one_hot(channels)?
            .f_permute([0, 3, 1, 2])?
            .f_to_kind(logits.kind())?;
        (ce, logits.f_softmax(1, logits.kind())?, one_hot)
    };
    let mask = valid.f_unsqueeze(1)?;
    let probabilities = probabilities.f_mul(&mask)?;
    let one_hot = one_hot.f_mul(&mask)?;
    let dims: &[i64] = &[0, 2, 3];
    let intersection =
        probabilities
            .f_mul(&one_hot)?
            .f_sum_dim_intlist(dims, false, Kind::Float)?;
    let cardinality = probabilities
        .f_sum_dim_intlist(dims, false, Kind::Float)?
        .f_add(&one_hot.f_sum_dim_intlist(dims, false, Kind::Float)?)?;
    let dice_per_class = intersection
        .f_mul_scalar(2.0)?
        .f_add_scalar(config.smooth)?
        .f_div(&cardinality.f_add_scalar(config.smooth)?)?;
    let dice = dice_per_class
        .f_mean(Kind::Float)?
        .f_neg()?
        .f_add_scalar(1.0)?;
    let total = cross_entropy
        .f_mul_scalar(config.ce_weight)?
        .f_add(&dice.f_mul_scalar(config.dice_weight)?)?;
    Ok(SegLoss {
        total,
        cross_entropy,
        dice,
    })
}

/// Predicted class per pixel `[N, H, W]` (`i64`): `logit > 0` for one channel, else arg-max.
pub fn predicted_classes(logits: &Tensor) -> Result<Tensor, tch::TchError> {
    if logits.size().get(1) == Some(&1) {
        logits.f_squeeze_dim(1)?.f_gt(0.0)?.f_to_kind(Kind::Int64)
    } else {
        logits.f_argmax(1, false)
    }
}

/// Number of classes that [`predicted_classes`] yields for `logits` (2 for one channel).
pub fn output_classes(logits: &Tensor) -> i64 {
    logits.size().get(1).map_or(0, |&c| c.max(2))
}

/// The `C x C` pixel confusion counts (row = target, column = prediction) of one batch,
/// computed where the tensors live, for [`super::metrics::SegmentationAccumulator::add_confusion`].
/// Pixels whose target is the ignore index or outside `0..C` are skipped.
pub fn pixel_confusion(
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<i64>,
) -> Result<Vec<u64>, tch::TchError> {
    let classes = output_classes(logits);
    let predictions = predicted_classes(logits)?.f_flatten(0, -1)?;
    let targets = targets.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?;
    let mut valid = targets.f_ge(0)?.f_logical_and(&targets.f_lt(classes)?)?;
    if let Some(ignore) = ignore_index {
        valid = valid.f_logical_and(&targets.f_ne(ignore)?)?;
    }
    let cells = targets
        .f_mul_scalar(classes)?
        .f_add(&predictions)?
        .f_masked_select(&valid)?;
    let counts = cells
        .f_bincount::<Tensor>(None, classes * classes)?
        .f_to_device(tch::Device::Cpu)?;
    let counts = Vec::<i64>::try_from(&counts)?;
    Ok(counts.into_iter().map(|c| c.max(0) as u64).collect())
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;

    fn scalar(t: &Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn perfect_binary_prediction_has_near_zero_loss() {
        let mask = Tensor::from_slice(&[0i64, 1, 1, 0, 0, 1, 0, 0, 1]).view([1, 3, 3]);
        let logits = (mask.to_kind(Kind::Float) * 40.0 - 20.0).view([1, 1, 3, 3]);
        let loss = segmentation_loss(&logits, &mask, &SegLossConfig::default()).unwrap();
        assert!(scalar(&loss.dice) < 1e-6, "{}", scalar(&loss.dice));
        assert!(scalar(&loss.cross_entropy) < 1e-6);
        // The opposite prediction is bad.
        let wrong = segmentation_loss(&-logits, &mask, &SegLossConfig::default()).unwrap();
        assert!(scalar(&wrong.dice) > 0.7);
        assert!(scalar(&wrong.cross_entropy) > 10.0);
    }

    #[test]
    fn perfect_multiclass_prediction_has_near_zero_loss() {
        let targets = Tensor::from_slice(&[0i64, 1, 2, 2, 1, 0, 0, 0]).view([2, 2, 2]);
        let logits = targets
            .one_hot(3)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            * 30.0;
        let loss = segmentation_loss(&logits, &targets, &SegLossConfig::default()).unwrap();
        assert!(scalar(&loss.total) < 1e-6, "{}", scalar(&loss.total));
        // Uniform logits: CE = ln 3.
        let uniform = Tensor::zeros([2, 3, 2, 2], (Kind::Float, Device::Cpu));
        let loss = segmentation_loss(&uniform, &targets, &SegLossConfig::default()).unwrap();
        assert!((scalar(&loss.cross_entropy) - 3f64.ln()).abs() < 1e-5);
    }

    #[test]
    fn empty_masks_and_ignored_pixels_do_not_nan() {
        let empty = Tensor::zeros([2, 4, 4], (Kind::Int64, Device::Cpu));
        let logits = Tensor::full([2, 1, 4, 4], -10.0, (Kind::Float, Device::Cpu));
        let logits = logits.set_requires_grad(true);
        let loss = segmentation_loss(&logits, &empty, &SegLossConfig::default()).unwrap();
        assert!(scalar(&loss.total).is_finite());
        assert!(scalar(&loss.dice) < 1e-2, "{}", scalar(&loss.dice));
        loss.total.backward();
        assert!(logits.grad().isfinite().all().int64_value(&[]) == 1);
        // Every pixel ignored, binary and multi-class.
        let ignored = Tensor::full([2, 4, 4], 255, (Kind::Int64, Device::Cpu));
        let config = SegLossConfig {
            ignore_index: Some(255),
            ..Default::default()
        };
        let loss = segmentation_loss(&logits, &ignored, &config).unwrap();
        assert_eq!(scalar(&loss.cross_entropy), 0.0);
        assert!(scalar(&loss.total).is_finite());
        let multi = Tensor::randn([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        let loss = segmentation_loss(&multi, &ignored, &config).unwrap();
        assert_eq!(scalar(&loss.cross_entropy), 0.0);
        assert!(scalar(&loss.total).is_finite());
    }

    #[test]
    fn ignored_pixels_do_not_count() {
        let targets = Tensor::from_slice(&[1i64, 0, 255, 255]).view([1, 2, 2]);
        let logits = Tensor::from_slice(&[5.0f32, -5.0, 5.0, -5.0]).view([1, 1, 2, 2]);
        let config = SegLossConfig {
            ignore_index: Some(255),
            ..Default::default()
        };
        let with_ignored = segmentation_loss(&logits, &targets, &config).unwrap();
        let kept = segmentation_loss(
            &logits.narrow(2, 0, 1),
            &targets.narrow(1, 0, 1),
            &SegLossConfig::default(),
        )
        .unwrap();
        assert!((scalar(&with_ignored.total) - scalar(&kept.total)).abs() < 1e-6);
    }

    #[test]
    fn pixel_confusion_counts_target_rows_and_predicted_columns() {
        let targets = Tensor::from_slice(&[1i64, 0, 1, 255]).view([1, 2, 2]);
        let logits = Tensor::from_slice(&[3.0f32, 2.0, -1.0, 4.0]).view([1, 1, 2, 2]);
        let counts = pixel_confusion(&logits, &targets, Some(255)).unwrap();
        // (t0,p1) = 1, (t1,p1) = 1, (t1,p0) = 1.
        assert_eq!(counts, vec![0, 1, 1, 1]);
    }
}
