//! The before-training scores of a backbone study and the bootstrap intervals of its
//! leaderboard, on seeded synthetic embeddings:
//! - LogME equals an independent numpy implementation written from the paper
//!   (`tests/fixtures/study/logme_reference.py`) within 1e-8, with more samples than
//!   dimensions, fewer, and rank-deficient features; it is unchanged by permuting samples,
//!   rotating features orthogonally and renaming classes; informative features score higher
//!   than random ones;
//! - k-NN and k-fold probe accuracies are near 1 for separable embeddings and near chance
//!   for random ones;
//! - the 95% bootstrap interval of a simulated classifier's accuracy holds the true accuracy
//!   in 93-97% of 2,000 simulations (400 would leave a standard error of 1.1 points).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};
use transfer_workbench::study::bootstrap::{difference_interval, mean_interval};
use transfer_workbench::study::knn::knn_accuracy;
use transfer_workbench::study::logme::logme;
use transfer_workbench::study::probe_cv::probe_accuracy;

/// Seeded features: class means of size `signal` in `rank` latent dimensions, plus noise,
/// mapped to `dim` dimensions (rank-deficient when `rank < dim`).
fn features(
    n: usize,
    dim: usize,
    rank: usize,
    classes: usize,
    signal: f64,
    seed: u64,
) -> (Vec<Vec<f64>>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let means: Vec<Vec<f64>> = (0..classes)
        .map(|_| {
            (0..rank)
                .map(|_| rng.gen_range(-1.0..1.0) * signal)
                .collect()
        })
        .collect();
    let mix: Vec<Vec<f64>> = (0..rank)
        .map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect())
        .collect();
    let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let rows = labels
        .iter()
        .map(|&label| {
            let latent: Vec<f64> = (0..rank)
                .map(|r| means[label as usize][r] + rng.gen_range(-1.0..1.0))
                .collect();
            (0..dim)
                .map(|d| (0..rank).map(|r| latent[r] * mix[r][d]).sum())
                .collect()
        })
        .collect();
    (rows, labels)
}

fn tensor(rows: &[Vec<f64>]) -> Tensor {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).reshape([rows.len() as i64, rows[0].len() as i64])
}

/// One LogME case: feature rows, labels, classes.
type Case = (Vec<Vec<f64>>, Vec<i64>, usize);

/// The numpy reference's scores of `cases`.
fn reference(cases: &[Case]) -> Vec<f64> {
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|(f, l, c)| serde_json::json!({"features": f, "labels": l, "classes": c}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let script = common::fixtures_dir().join("study/logme_reference.py");
    let output = Command::new(common::venv_python())
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn logme_equals_the_numpy_reference_and_keeps_its_invariances() {
    let cases = [
        // (samples, dims, rank, classes, signal, seed)
        (120, 20, 20, 3, 2.0, 1), // more samples than dimensions
        (30, 80, 30, 4, 2.0, 2),  // fewer samples than dimensions
        (100, 30, 8, 3, 1.5, 3),  // rank-deficient, more samples than dimensions
        (20, 50, 6, 2, 1.0, 4),   // rank-deficient, fewer samples
        (90, 16, 16, 5, 0.0, 5),  // no signal at all
    ];
    let built: Vec<Case> = cases
        .iter()
        .map(|&(n, d, r, c, s, seed)| {
            let (f, l) = features(n, d, r, c, s, seed);
            (f, l, c)
        })
        .collect();
    let expected = reference(&built);
    for ((f, labels, classes), want) in built.iter().zip(&expected) {
        let got = logme(&tensor(f), labels, *classes).unwrap();
        assert!(
            (got - want).abs() <= 1e-8,
            "{}x{}: ours {got}, numpy {want}",
            f.len(),
            f[0].len()
        );
    }

    // Invariances, on the first case.
    let (f, labels, classes) = &built[0];
    let base = logme(&tensor(f), labels, *classes).unwrap();
    let order: Vec<usize> = (0..f.len()).rev().collect();
    let permuted_rows: Vec<Vec<f64>> = order.iter().map(|&i| f[i].clone()).collect();
    let permuted_labels: Vec<i64> = order.iter().map(|&i| labels[i]).collect();
    let permuted = logme(&tensor(&permuted_rows), &permuted_labels, *classes).unwrap();
    assert!((permuted - base).abs() < 1e-10, "{permuted} vs {base}");
    tch::manual_seed(7);
    let dim = f[0].len() as i64;
    let random = Tensor::randn([dim, dim], (Kind::Double, tch::Device::Cpu));
    let (q, _) = Tensor::linalg_qr(&random, "reduced");
    let rotated = logme(&tensor(f).matmul(&q), labels, *classes).unwrap();
    assert!((rotated - base).abs() < 1e-9, "{rotated} vs {base}");
    let renamed: Vec<i64> = labels.iter().map(|&l| (l + 1) % *classes as i64).collect();
    let renamed_score = logme(&tensor(f), &renamed, *classes).unwrap();
    assert!(
        (renamed_score - base).abs() < 1e-10,
        "{renamed_score} vs {base}"
    );

    // Informative features score higher than random ones of the same shape.
    let (informative, l) = features(200, 32, 32, 4, 2.0, 11);
    let (random, _) = features(200, 32, 32, 4, 0.0, 12);
    let good = logme(&tensor(&informative), &l, 4).unwrap();
    let bad = logme(&tensor(&random), &l, 4).unwrap();
    assert!(good > bad + 0.1, "informative {good}, random {bad}");
}

#[test]
fn knn_and_probe_accuracy_separate_informative_from_random_embeddings() {
    let (informative, labels) = features(200, 32, 32, 4, 3.0, 21);
    let (random, _) = features(200, 32, 32, 4, 0.0, 22);
    let (good, bad) = (
        tensor(&informative).to_kind(Kind::Float),
        tensor(&random).to_kind(Kind::Float),
    );
    let knn_good = knn_accuracy(&good, &labels, 4, 10).unwrap();
    let knn_bad = knn_accuracy(&bad, &labels, 4, 10).unwrap();
    assert!(knn_good > 0.9, "k-NN on informative embeddings: {knn_good}");
    assert!(knn_bad < 0.45, "k-NN on random embeddings: {knn_bad}");
    let probe_good = probe_accuracy(&good, &labels, 4, 5, 3).unwrap();
    let probe_bad = probe_accuracy(&bad, &labels, 4, 5, 3).unwrap();
    assert!(
        probe_good > 0.9,
        "probe on informative embeddings: {probe_good}"
    );
    assert!(probe_bad < 0.45, "probe on random embeddings: {probe_bad}");
}

#[test]
fn bootstrap_intervals_hold_the_true_accuracy_about_95_percent_of_the_time() {
    // An accuracy off the 1/200 lattice of possible estimates, so that no interval ends on it.
    let (simulations, images, accuracy) = (2000, 200, 0.853);
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut held = 0;
    for sim in 0..simulations {
        let correct: Vec<f64> = (0..images)
            .map(|_| f64::from(u8::from(rng.gen_bool(accuracy))))
            .collect();
        let interval = mean_interval(&correct, 1000, 0.95, sim as u64).unwrap();
        assert!(interval.low <= interval.estimate && interval.estimate <= interval.high);
        held += usize::from(interval.contains(accuracy));
    }
    let coverage = held as f64 / simulations as f64;
    println!("coverage {coverage} ({held} of {simulations})");
    assert!((0.93..=0.97).contains(&coverage), "coverage {coverage}");

    // Paired: a run right on 10 more images of 200 is better by 5 points, and the interval
    // of the difference is tighter than either run's own.
    let a: Vec<f64> = (0..200).map(|i| f64::from(u8::from(i % 10 != 0))).collect();
    let b: Vec<f64> = (0..200)
        .map(|i| f64::from(u8::from(i % 10 != 0 && i % 20 != 1)))
        .collect();
    let difference = difference_interval(&a, &b, 2000, 0.95, 1).unwrap();
    assert!((difference.estimate - 0.05).abs() < 1e-12);
    assert!(difference.low > 0.0, "{difference:?}");
    let own = mean_interval(&a, 2000, 0.95, 1).unwrap();
    assert!(difference.high - difference.low < own.high - own.low);
}
