//! The learning-rate range test: a few dozen optimiser steps on a throw-away copy of the
//! model with the rate rising exponentially, recording the loss; the suggestion is the rate
//! of steepest descent of the smoothed loss before it diverges.

use serde::Serialize;
use tch::Device;

use super::TrainError;
use super::classifier::{Classifier, channels_last};
use super::config::TrainConfig;
use super::net::Net;
use super::optim::Optimizer;
use super::sampler::{epoch_seed, train_plan};
use super::source::{BatchSource, Split};

/// The sweep.
#[derive(Clone, Copy, Debug)]
pub struct LrFinderOptions {
    /// First rate.
    pub min_lr: f64,
    /// Last rate.
    pub max_lr: f64,
    /// Number of steps (rates).
    pub steps: usize,
}

impl Default for LrFinderOptions {
    fn default() -> Self {
        Self {
            min_lr: 1e-7,
            max_lr: 10.0,
            steps: 60,
        }
    }
}

/// The loss-versus-rate curve and the suggestion.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LrFinderResult {
    /// Rates tried.
    pub lrs: Vec<f64>,
    /// Raw losses (the sweep stops at divergence, so this may be shorter than planned).
    pub losses: Vec<f64>,
    /// Smoothed losses up to divergence.
    pub smoothed: Vec<f64>,
    /// The suggested rate, when the curve has a descent.
    pub suggested_lr: Option<f64>,
}

/// Exponential smoothing of the losses (bias-corrected), cut at the first non-finite loss
/// or when the smoothed loss exceeds four times its minimum.
pub fn smooth_until_divergence(losses: &[f64], beta: f64) -> Vec<f64> {
    let mut smoothed = Vec::with_capacity(losses.len());
    let (mut average, mut best) = (0.0, f64::INFINITY);
    for (i, &loss) in losses.iter().enumerate() {
        if !loss.is_finite() {
            break;
        }
        average = beta * average + (1.0 - beta) * loss;
        let value = average / (1.0 - beta.powi(i as i32 + 1));
        if i > 0 && value > 4.0 * best.max(1e-12) {
            break;
        }
        best = best.min(value);
        smoothed.push(value);
    }
    smoothed
}

/// The rate where the smoothed loss falls fastest per decade of rate, before divergence,
/// along the curve's main descent (its longest decreasing subsequence, as fastai's
/// "valley"), so that a short dip of noise where the rate is still too small to matter
/// cannot take the suggestion.
pub fn suggest_lr(lrs: &[f64], losses: &[f64]) -> (Vec<f64>, Option<f64>) {
    let smoothed = smooth_until_divergence(losses, 0.8);
    let n = smoothed.len().min(lrs.len());
    // The first points carry the least smoothing; skip them.
    let skip = (n / 10).max(1);
    if n < skip + 3 {
        return (smoothed, None);
    }
    // A curve that never drops by 1% below its highest point before its lowest has no
    // descent worth suggesting. The first points (one batch each, barely smoothed) are
    // left out of both, as of the descent.
    let lowest_at = (skip..n)
        .min_by(|&a, &b| smoothed[a].total_cmp(&smoothed[b]))
        .unwrap_or(skip);
    let lowest = smoothed[lowest_at];
    let top = smoothed[skip..=lowest_at]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if lowest > top - 0.01 * top.abs() {
        return (smoothed, None);
    }
    // Only along the longest descent (fastai's "valley"): a short dip of noise early in
    // the sweep, where the rate is too small to change anything, can be steep too.
    let main_descent = in_longest_descent(&smoothed[skip..n]);
    let members: Vec<usize> = (skip..n).filter(|&i| main_descent[i - skip]).collect();
    // The steepest step between consecutive points of the main descent, per decade of rate.
    let mut best: Option<(usize, f64)> = None;
    for pair in members.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let dx = lrs[b].log10() - lrs[a].log10();
        if dx <= 0.0 || !dx.is_finite() {
            continue;
        }
        let slope = (smoothed[b] - smoothed[a]) / dx;
        if slope < 0.0 && best.is_none_or(|(_, s)| slope < s) {
            best = Some((a, slope));
        }
    }
    (smoothed, best.map(|(i, _)| lrs[i]))
}

/// Whether each point of `values` belongs to its longest decreasing subsequence (the
/// curve's main descent; the earliest such subsequence when several are as long).
fn in_longest_descent(values: &[f64]) -> Vec<bool> {
    let n = values.len();
    // For each end point: the length of the longest decreasing subsequence ending there,
    // and the point before it in that subsequence.
    let mut length = vec![1usize; n];
    let mut previous: Vec<Option<usize>> = vec![None; n];
    for i in 1..n {
        for j in 0..i {
            if values[i] < values[j] && length[j] + 1 > length[i] {
                length[i] = length[j] + 1;
                previous[i] = Some(j);
            }
        }
    }
    let mut member = vec![false; n];
    let mut at = (0..n).max_by_key(|&i| (length[i], std::cmp::Reverse(i)));
    while let Some(i) = at {
        member[i] = true;
        at = previous[i];
    }
    member
}

/// Runs the range test for `config`'s task and strategy on a fresh model (nothing is
/// saved), with `config`'s thread count.
pub fn find_lr(
    config: &TrainConfig,
    source: &mut dyn BatchSource,
    device: Device,
    options: LrFinderOptions,
) -> Result<LrFinderResult, TrainError> {
    find_lr_with_progress(config, source, device, options, &mut |_, _| {})
}

/// [`find_lr`], calling `progress(steps_done, steps)` after every step.
pub fn find_lr_with_progress(
    config: &TrainConfig,
    source: &mut dyn BatchSource,
    device: Device,
    options: LrFinderOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<LrFinderResult, TrainError> {
    config.validate()?;
    let steps = options.steps.max(2);
    if !(options.min_lr > 0.0 && options.max_lr > options.min_lr) {
        return Err(TrainError::Config(
            "the sweep needs 0 < min lr < max lr".into(),
        ));
    }
    super::cpu_runtime::prepare_cpu(config.threads());
    let nhwc = config.use_channels_last(device == Device::Cpu);
    let mut model = Net::build(config, source.num_classes(), device, nhwc)?;
    let mut optimizer = Optimizer::new(config.optimizer, model.param_groups(config.strategy, 0));
    let trainable = Classifier::backbone_trainable(config.strategy, 0);
    let ratio = (options.max_lr / options.min_lr).powf(1.0 / (steps - 1) as f64);
    let labels = source.labels(Split::Train);
    let mut result = LrFinderResult::default();
    let mut epoch = 0;
    'sweep: while result.lrs.len() < steps {
        let seed = epoch_seed(config.seed, epoch);
        let plan = train_plan(&labels, config.batch_size, seed, false);
        if plan.is_empty() {
            return Err(TrainError::Config("no training samples".into()));
        }
        for batch in source.batches(Split::Train, plan, true, seed) {
            let batch = batch?;
            let lr = options.min_lr * ratio.powi(result.lrs.len() as i32);
            let mut images = batch.images.f_to_device(device)?;
            if nhwc {
                images = channels_last(&images)?;
            }
            let targets = batch.targets.f_to_device(device)?;
            let logits = model.logits(&images, trainable, true)?;
            let loss = super::task::train_task(config.task).loss(
                &logits,
                &targets,
                None,
                config.label_smoothing,
            )?;
            let value = loss.f_double_value(&[])?;
            result.lrs.push(lr);
            result.losses.push(value);
            progress(result.lrs.len(), steps);
            if !value.is_finite() || result.lrs.len() >= steps {
                break 'sweep;
            }
            optimizer.zero_grad()?;
            loss.f_backward()?;
            optimizer.step(lr)?;
        }
        epoch += 1;
    }
    let (smoothed, suggested) = suggest_lr(&result.lrs, &result.losses);
    result.smoothed = smoothed;
    result.suggested_lr = suggested;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn sweep(steps: usize) -> Vec<f64> {
        (0..steps)
            .map(|i| 1e-6 * 10f64.powf(7.0 * i as f64 / (steps - 1) as f64))
            .collect()
    }

    /// A loss that falls fastest at 1e-3, flattens, then blows up beyond 0.1; plus noise.
    fn noisy_curve(lrs: &[f64], noise: f64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        lrs.iter()
            .map(|&lr| {
                let x = lr.log10();
                let base = 1.5 - (x + 3.0).tanh();
                let blow_up = if x > -1.0 {
                    (4.0 * (x + 1.0)).exp() - 1.0
                } else {
                    0.0
                };
                base + blow_up + rng.gen_range(-noise..noise)
            })
            .collect()
    }

    #[test]
    fn suggestion_is_near_the_steepest_descent_despite_noise() {
        let lrs = sweep(80);
        let (smoothed, lr) = suggest_lr(&lrs, &noisy_curve(&lrs, 0.05));
        let lr = lr.unwrap();
        assert!((2e-4..5e-3).contains(&lr), "suggested {lr}");
        assert!(smoothed.len() < lrs.len(), "divergence cuts the curve");
    }

    #[test]
    fn nan_and_inf_end_the_curve_without_breaking_the_suggestion() {
        let lrs = sweep(80);
        let mut losses = noisy_curve(&lrs, 0.02);
        losses[60] = f64::NAN;
        losses[61] = f64::INFINITY;
        let (smoothed, lr) = suggest_lr(&lrs, &losses);
        assert!(smoothed.len() <= 60);
        assert!((2e-4..5e-3).contains(&lr.unwrap()));
        assert_eq!(suggest_lr(&lrs[..3], &[f64::NAN; 3]).1, None);
        assert_eq!(
            suggest_lr(&lrs, &vec![1.0; 80]).1,
            None,
            "a flat curve has no descent"
        );
    }

    /// A sharp dip early in the sweep (a lucky batch at a rate too small to matter) is
    /// steeper than the real descent but not part of the longest one.
    #[test]
    fn an_early_dip_of_noise_does_not_take_the_suggestion() {
        let lrs = sweep(80);
        let mut losses = noisy_curve(&lrs, 0.02);
        for loss in &mut losses[10..13] {
            *loss -= 1.5;
        }
        let (smoothed, lr) = suggest_lr(&lrs, &losses);
        let lr = lr.unwrap();
        assert!(
            (2e-4..5e-3).contains(&lr),
            "suggested {lr} on {smoothed:.2?}"
        );
    }

    /// A lucky first batch (the lowest loss of the sweep, barely smoothed) does not hide the
    /// descent that follows.
    #[test]
    fn a_low_first_batch_does_not_hide_the_descent() {
        let lrs = sweep(80);
        // A plateau of 2.0 falling to 1.2 before it diverges, the first batch at 1.1.
        let mut losses: Vec<f64> = noisy_curve(&lrs, 0.02)
            .iter()
            .map(|v| 1.0 + 0.4 * v)
            .collect();
        losses[0] = 1.1;
        let lr = suggest_lr(&lrs, &losses).1.expect("a suggestion");
        assert!((2e-4..5e-3).contains(&lr), "suggested {lr}");
    }
}
