//! Bootstrap confidence intervals over validation images: the percentile interval of a
//! metric that is a mean of per-image values (accuracy: 1 or 0 per image; Dice per image),
//! and of the difference between two runs scored on the same images (paired: each
//! resample draws the same images for both).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::StudyError;

/// Resamples drawn by default.
pub const DEFAULT_RESAMPLES: usize = 2000;

/// A point estimate with a percentile interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// The metric on the images as they are.
    pub estimate: f64,
    /// The lower end.
    pub low: f64,
    /// The upper end.
    pub high: f64,
    /// The coverage asked for (0.95).
    pub level: f64,
}

impl Interval {
    /// Whether the interval holds `value`.
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The `level` interval of the mean of `values` from `resamples` resamples (seeded).
pub fn mean_interval(
    values: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<Interval, StudyError> {
    paired(values, None, resamples, level, seed)
}

/// The `level` interval of mean(`a`) - mean(`b`), `a[i]` and `b[i]` being the same image's
/// values under two runs; resampling draws images, so the pairing is kept.
pub fn difference_interval(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<Interval, StudyError> {
    if a.len() != b.len() {
        return Err(StudyError::Invalid(format!(
            "paired values of {} and {} images",
            a.len(),
            b.len()
        )));
    }
    paired(a, Some(b), resamples, level, seed)
}

fn paired(
    a: &[f64],
    b: Option<&[f64]>,
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<Interval, StudyError> {
    let n = a.len();
    if n == 0 || resamples == 0 || !(0.0..1.0).contains(&level) {
        return Err(StudyError::Invalid(format!(
            "a bootstrap needs values and resamples and a level in (0, 1): {n} values, \
             {resamples} resamples, level {level}"
        )));
    }
    let value = |i: usize| a[i] - b.map_or(0.0, |b| b[i]);
    let estimate = (0..n).map(value).sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| value(rng.gen_range(0..n))).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Ok(Interval {
        estimate,
        low: quantile(&means, tail),
        high: quantile(&means, 1.0 - tail),
        level,
    })
}

/// The `q` quantile of sorted `values` (linear between neighbours, as numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    let weight = position - below as f64;
    sorted[below] * (1.0 - weight) + sorted[above] * weight
}

/// "better than B by 2.1 points, interval -0.4 to 4.6: not shown to be better", for a
/// difference in a metric on a 0..1 scale.
pub fn verdict(difference: &Interval, other: &str) -> String {
    let points = |v: f64| v * 100.0;
    let shown = if difference.low > 0.0 {
        "shown to be better"
    } else {
        "not shown to be better"
    };
    format!(
        "better than {other} by {:.1} points, interval {:.1} to {:.1}: {shown}",
        points(difference.estimate),
        points(difference.low),
        points(difference.high)
    )
}
