//! 2-D maps of embeddings: PCA (centred, by SVD) and t-SNE (Barnes-Hut, from the `bhtsne`
//! crate, on exact nearest neighbours of a PCA reduction, initialised from PCA like
//! scikit-learn, so a map is the same every time).
//!
//! PCA signs follow scikit-learn's `svd_flip(u_based_decision=False)`: the largest-|value|
//! entry of each principal axis is positive.

use std::sync::atomic::{AtomicBool, Ordering};

use bhtsne::{Neighbor, tSNE};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{InspectError, Progress};

/// Points of a 2-D map, one per input row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// `[x, y]` per point, in input order.
    pub points: Vec<[f32; 2]>,
    /// Share of the total variance each axis explains (PCA only; empty for t-SNE).
    pub explained_variance_ratio: Vec<f64>,
}

/// The first two principal components of row-major `data` `[N x dim]`.
pub fn pca(data: &[f32], dim: usize) -> Result<Projection, InspectError> {
    let (scores, ratio) = principal_components(data, dim, 2)?;
    Ok(Projection {
        points: scores
            .chunks(2)
            .map(|p| [p[0] as f32, p[1] as f32])
            .collect(),
        explained_variance_ratio: ratio,
    })
}

/// Row-major scores `[N x k]` on the first `k` principal axes (zero columns beyond the
/// data's rank), and the explained-variance ratio of each axis.
pub fn principal_components(
    data: &[f32],
    dim: usize,
    k: usize,
) -> Result<(Vec<f64>, Vec<f64>), InspectError> {
    let n = rows(data, dim)?;
    let x = Tensor::f_from_slice(data)?
        .f_view([n as i64, dim as i64])?
        .f_to_kind(Kind::Double)?;
    let centred = x.f_sub(&x.f_mean_dim(Some(&[0i64][..]), true, Kind::Double)?)?;
    // `linalg_svd` would need a driver name, which only CUDA accepts; `svd` gives V.
    let (_, singular, v) = centred.f_svd(true, true)?;
    let vh = v.f_tr()?;
    let kept = k.min(vh.size()[0] as usize);
    let mut axes = Vec::<f64>::try_from(
        &vh.f_narrow(0, 0, kept as i64)?
            .f_contiguous()?
            .f_flatten(0, -1)?,
    )?;
    for axis in axes.chunks_mut(dim) {
        let largest =
            axis.iter().copied().fold(
                0.0f64,
                |best, v| if v.abs() > best.abs() { v } else { best },
            );
        if largest < 0.0 {
            axis.iter_mut().for_each(|v| *v = -*v);
        }
    }
    let axes = Tensor::f_from_slice(&axes)?.f_view([kept as i64, dim as i64])?;
    let kept_scores = Vec::<f64>::try_from(&centred.f_matmul(&axes.f_tr()?)?.f_flatten(0, -1)?)?;
    let mut scores = vec![0.0; n * k];
    for (row, kept_row) in scores.chunks_mut(k).zip(kept_scores.chunks(kept.max(1))) {
        row[..kept].copy_from_slice(&kept_row[..kept]);
    }
    let variances: Vec<f64> = Vec::<f64>::try_from(&singular)?
        .iter()
        .map(|s| s * s)
        .collect();
    let total: f64 = variances.iter().sum();
    let mut ratio: Vec<f64> = variances
        .iter()
        .take(kept)
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    ratio.resize(k, 0.0);
    Ok((scores, ratio))
}

/// Settings of [`tsne`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TsneOptions {
    /// Effective number of neighbours (lowered to `(N - 1) / 3` for small sets).
    pub perplexity: f32,
    /// Gradient-descent iterations (the first 250 with early exaggeration 12).
    pub iterations: usize,
    /// Barnes-Hut accuracy (0.5 is the usual trade-off; smaller is slower and exacter).
    pub theta: f32,
    /// Embeddings wider than this are first reduced by PCA.
    pub pca_dims: usize,
}

impl Default for TsneOptions {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            iterations: 1000,
            theta: 0.5,
            pca_dims: 50,
        }
    }
}

/// Iterations between stop checks and progress reports.
const CHUNK_ITERATIONS: usize = 50;
/// Iterations with early exaggeration, as in the reference implementation.
const EXAGGERATED_ITERATIONS: usize = 250;
const EARLY_EXAGGERATION: f32 = 12.0;

/// A t-SNE map of row-major `data` `[N x dim]` (N >= 4); `Ok(None)` when stopped. Progress
/// counts iterations. Runs in chunks of 50 iterations so a stop takes effect quickly (each
/// chunk restarts the optimiser's gains and momentum from the previous map).
pub fn tsne(
    data: &[f32],
    dim: usize,
    options: &TsneOptions,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<Projection>, InspectError> {
    let n = rows(data, dim)?;
    if n < 4 {
        return Err(InspectError::Invalid(format!(
            "t-SNE needs at least 4 points, got {n}"
        )));
    }
    // The crate panics on these; refuse them here instead.
    if !(options.theta > 0.0 && options.perplexity > 0.0) {
        return Err(InspectError::Invalid(format!(
            "t-SNE needs theta > 0 and perplexity > 0, got {} and {}",
            options.theta, options.perplexity
        )));
    }
    let reduced: Vec<f32> = if dim > options.pca_dims {
        let (scores, _) = principal_components(data, dim, options.pca_dims)?;
        scores.iter().map(|&v| v as f32).collect()
    } else {
        data.to_vec()
    };
    let width = dim.min(options.pca_dims).max(1);
    let perplexity = options.perplexity.min((n - 1) as f32 / 3.0).max(1.0);
    let k = ((3.0 * perplexity) as usize).clamp(1, n - 1);
    let total = options.iterations;
    progress(0, total);
    let neighbours = exact_neighbours(&reduced, width, k);
    if stop.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let samples: Vec<&[f32]> = reduced.chunks(width).collect();
    let mut y = pca_initialisation(&reduced, width)?;
    let learning_rate = (n as f32 / EARLY_EXAGGERATION / 4.0).max(50.0);
    let mut fit: tSNE<f32, &[f32]> = tSNE::new(&samples);
    fit.perplexity(perplexity)
        .learning_rate(learning_rate)
        .early_exaggeration(EARLY_EXAGGERATION);
    let mut done = 0;
    while done < total {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let epochs = CHUNK_ITERATIONS.min(total - done);
        let exaggerated = done < EXAGGERATED_ITERATIONS;
        fit.epochs(epochs)
            .initial_embedding(y)
            // An exaggerated chunk never reaches its stop epoch; later chunks start without.
            .stop_lying_epoch(if exaggerated { epochs } else { 0 })
            .momentum(if exaggerated { 0.5 } else { 0.8 })
            .momentum_switch_epoch(epochs)
            .barnes_hut_with_neighbors(options.theta, &neighbours);
        y = fit.embedding();
        done += epochs;
        progress(done, total);
    }
    Ok(Some(Projection {
        points: y.chunks(2).map(|p| [p[0], p[1]]).collect(),
        explained_variance_ratio: Vec::new(),
    }))
}

/// The first two principal components scaled so the first has standard deviation 1e-4
/// (scikit-learn's `init="pca"`).
fn pca_initialisation(data: &[f32], dim: usize) -> Result<Vec<f32>, InspectError> {
    let (scores, _) = principal_components(data, dim, 2)?;
    let n = scores.len() / 2;
    let first: Vec<f64> = scores.iter().step_by(2).copied().collect();
    let mean = first.iter().sum::<f64>() / n as f64;
    let std = (first.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let scale = if std > 0.0 { 1e-4 / std } else { 1.0 };
    Ok(scores.iter().map(|&v| (v * scale) as f32).collect())
}

/// The `k` nearest other rows of every row by Euclidean distance, nearest first.
fn exact_neighbours(data: &[f32], dim: usize, k: usize) -> Vec<Vec<Neighbor<f32>>> {
    let rows: Vec<&[f32]> = data.chunks(dim).collect();
    rows.par_iter()
        .enumerate()
        .map(|(i, a)| {
            let mut all: Vec<(f32, usize)> = rows
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, b)| {
                    let d2: f32 = a.iter().zip(*b).map(|(x, y)| (x - y) * (x - y)).sum();
                    (d2, j)
                })
                .collect();
            let by_distance =
                |x: &(f32, usize), y: &(f32, usize)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
            if k < all.len() {
                all.select_nth_unstable_by(k, by_distance);
                all.truncate(k);
            }
            all.sort_by(by_distance);
            all.into_iter()
                .map(|(d2, index)| Neighbor {
                    index,
                    distance: d2.sqrt(),
                })
                .collect()
        })
        .collect()
}

fn rows(data: &[f32], dim: usize) -> Result<usize, InspectError> {
    if dim == 0 || data.is_empty() || !data.len().is_multiple_of(dim) {
        return Err(InspectError::Invalid(format!(
            "{} values do not form rows of {dim}",
            data.len()
        )));
    }
    Ok(data.len() / dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_main_axis_with_a_fixed_sign() {
        // Points along (1, 2, 0) with a small spread along (0, 0, 1).
        let mut data = Vec::new();
        for i in 0..10 {
            let t = i as f32 - 4.5;
            data.extend([t, 2.0 * t, if i % 2 == 0 { 0.1 } else { -0.1 }]);
        }
        let p = pca(&data, 3).unwrap();
        assert_eq!(p.points.len(), 10);
        // The first axis is close to (1, 2, 0)/sqrt(5) (the spread tilts it a little), with
        // its largest entry positive.
        let expected = -4.5 * 5f32.sqrt();
        assert!(
            (p.points[0][0] - expected).abs() < 1e-2,
            "{:?}",
            p.points[0]
        );
        assert!(p.points[0][1].abs() < 0.1);
        assert!(p.explained_variance_ratio[0] > 0.99);
        // Flipping the data's sign gives the same map up to the sign of the scores only.
        let flipped: Vec<f32> = data.iter().map(|v| -v).collect();
        let q = pca(&flipped, 3).unwrap();
        assert!((q.points[0][0] + p.points[0][0]).abs() < 1e-4);
        assert!(pca(&data, 4).is_err());
    }

    #[test]
    fn tsne_separates_two_clusters_and_stops_on_request() {
        // Two tight clusters of 20 points in 5 dims, far apart.
        let mut data = Vec::new();
        for i in 0..40 {
            let centre = if i < 20 { 0.0 } else { 10.0 };
            data.extend((0..5).map(|d| centre + ((i * 7 + d * 3) % 11) as f32 * 0.01));
        }
        let options = TsneOptions {
            iterations: 300,
            ..TsneOptions::default()
        };
        let mut reports = Vec::new();
        let map = tsne(
            &data,
            5,
            &options,
            &mut |d, t| reports.push((d, t)),
            &AtomicBool::new(false),
        )
        .unwrap()
        .unwrap();
        assert_eq!(reports.last(), Some(&(300, 300)));
        let mean = |r: std::ops::Range<usize>| {
            let n = r.len() as f32;
            let s = map.points[r]
                .iter()
                .fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
            [s[0] / n, s[1] / n]
        };
        let (a, b) = (mean(0..20), mean(20..40));
        let between = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        let within = map.points[..20]
            .iter()
            .map(|p| ((p[0] - a[0]).powi(2) + (p[1] - a[1]).powi(2)).sqrt())
            .fold(0.0f32, f32::max);
        assert!(between > 2.0 * within, "between {between}, within {within}");
        let stopped = tsne(&data, 5, &options, &mut |_, _| {}, &AtomicBool::new(true)).unwrap();
        assert!(stopped.is_none());
        assert!(
            tsne(
                &data[..15],
                5,
                &options,
                &mut |_, _| {},
                &AtomicBool::new(false)
            )
            .is_err()
        );
    }

    /// The budget: 5,000 points of 64 dims in under a minute. Prints the time; run
    /// with `cargo test --lib tsne_timing -- --ignored --nocapture` (dependencies, where
    /// the t-SNE runs, are optimised in every profile).
    #[test]
    #[ignore]
    fn tsne_timing_of_5000_points_of_64_dims() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let centres: Vec<f32> = (0..10 * 64).map(|_| rng.gen_range(-3.0..3.0)).collect();
        let data: Vec<f32> = (0..5000)
            .flat_map(|i| {
                let c = &centres[(i % 10) * 64..(i % 10 + 1) * 64];
                c.iter()
                    .map(|v| v + rng.gen_range(-1.0f32..1.0))
                    .collect::<Vec<_>>()
            })
            .collect();
        let start = std::time::Instant::now();
        let map = tsne(
            &data,
            64,
            &TsneOptions::default(),
            &mut |_, _| {},
            &AtomicBool::new(false),
        )
        .unwrap()
        .unwrap();
        let tsne_secs = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        pca(&data, 64).unwrap();
        println!(
            "t-SNE of 5000 x 64 on {} rayon threads: {tsne_secs:.1} s; PCA: {:.3} s",
            rayon::current_num_threads(),
            start.elapsed().as_secs_f64()
        );
        assert_eq!(map.points.len(), 5000);
    }
}
