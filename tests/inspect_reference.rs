//! The inspection engine against NumPy / scikit-learn (tests/fixtures/inspect/reference.py):
//! the confusion counts exactly, per-class ROC-AUC within 1e-6 (and the curves), per-sample
//! losses, and PCA up to sign. Once on a tiny trained synthetic run (real embeddings and
//! logits, through the cache), once on fixed four-class arrays with tied scores.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};
use transfer_workbench::inspect::{Predictions, inspect_split, pca};
use transfer_workbench::train::{
    Control, JobSpec, Split, Strategy, SyntheticSource, TrainConfig, VecSink, WeightsSpec, train,
};

/// Writes the arrays, runs the reference script and compares everything.
fn compare_with_reference(
    predictions: &Predictions,
    logits: &[f32],
    embeddings: &[f32],
    dim: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let n = predictions.len() as i64;
    let c = predictions.classes.len() as i64;
    let flat: Vec<f32> = predictions.probabilities.concat();
    let labels: Vec<i64> = predictions.labels.iter().map(|&l| l as i64).collect();
    let write = |name: &str, t: Tensor| t.write_npy(dir.path().join(name)).unwrap();
    write("probabilities.npy", Tensor::from_slice(&flat).view([n, c]));
    write("logits.npy", Tensor::from_slice(logits).view([n, c]));
    write("labels.npy", Tensor::from_slice(&labels));
    write(
        "embeddings.npy",
        Tensor::from_slice(embeddings).view([n, dim as i64]),
    );
    let script = common::fixtures_dir().join("inspect/reference.py");
    let output = Command::new(common::venv_python())
        .arg(&script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();

    let expected: Vec<Vec<usize>> = serde_json::from_value(reference["confusion"].clone()).unwrap();
    assert_eq!(predictions.confusion_counts(), expected);
    let cells = predictions.confusion_cells();
    for (t, row) in cells.iter().enumerate() {
        for (p, cell) in row.iter().enumerate() {
            assert!(
                cell.iter()
                    .all(|&i| predictions.labels[i] == t && predictions.predicted[i] == p)
            );
        }
    }

    let auc: Vec<Option<f64>> = serde_json::from_value(reference["auc"].clone()).unwrap();
    let ours = predictions.roc_auc();
    assert_eq!(ours.len(), auc.len());
    for (class, (a, b)) in ours.iter().zip(&auc).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "class {class}: {a} vs {b}"),
            (None, None) => {}
            _ => panic!("class {class}: {a:?} vs {b:?}"),
        }
    }
    let fpr: Vec<Option<Vec<f64>>> = serde_json::from_value(reference["fpr"].clone()).unwrap();
    let tpr: Vec<Option<Vec<f64>>> = serde_json::from_value(reference["tpr"].clone()).unwrap();
    for ((curve, fpr), tpr) in predictions.roc_curves().iter().zip(&fpr).zip(&tpr) {
        if let (Some(curve), Some(fpr), Some(tpr)) = (curve, fpr, tpr) {
            assert_eq!(curve.fpr.len(), fpr.len(), "{:?} vs {fpr:?}", curve.fpr);
            let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
            assert!(
                close(&curve.fpr, fpr) && close(&curve.tpr, tpr),
                "{curve:?} vs {fpr:?} {tpr:?}"
            );
        }
    }

    let losses: Vec<f64> = serde_json::from_value(reference["losses"].clone()).unwrap();
    for (ours, theirs) in predictions.losses.iter().zip(&losses) {
        assert!(
            (f64::from(*ours) - theirs).abs() < 1e-5 * theirs.max(1.0),
            "{ours} vs {theirs}"
        );
    }

    let projection = pca(embeddings, dim).unwrap();
    let expected: Vec<[f64; 2]> = serde_json::from_value(reference["pca"].clone()).unwrap();
    let scale = expected
        .iter()
        .flat_map(|p| p.iter().map(|v| v.abs()))
        .fold(0.0f64, f64::max);
    for axis in 0..2 {
        let same: f64 = (0..expected.len())
            .map(|i| (f64::from(projection.points[i][axis]) - expected[i][axis]).abs())
            .fold(0.0, f64::max);
        let flipped: f64 = (0..expected.len())
            .map(|i| (f64::from(projection.points[i][axis]) + expected[i][axis]).abs())
            .fold(0.0, f64::max);
        assert!(
            same.min(flipped) < 1e-4 * scale.max(1.0),
            "axis {axis}: {same} / {flipped} (scale {scale})"
        );
    }
    let ratio: Vec<f64> = serde_json::from_value(reference["pca_ratio"].clone()).unwrap();
    for (ours, theirs) in projection.explained_variance_ratio.iter().zip(&ratio) {
        assert!((ours - theirs).abs() < 1e-6, "{ours} vs {theirs}");
    }
}

fn trained_run(project: &Path) -> String {
    let config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy: Strategy::FineTune,
        epochs: 1,
        batch_size: 16,
        seed: 3,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let spec = JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project, config)
    };
    let mut source = SyntheticSource::two_class(32, 24, 32, 5);
    train(
        &spec,
        &mut source,
        &mut VecSink::new(),
        &mut Control::detached(),
    )
    .unwrap()
    .run_id
}

#[test]
fn a_trained_runs_predictions_and_embeddings_match_the_reference() {
    let project = tempfile::tempdir().unwrap();
    let run_id = trained_run(project.path());
    let mut source = SyntheticSource::two_class(32, 24, 32, 5);
    let stop = AtomicBool::new(false);
    let mut reports = Vec::new();
    let first = inspect_split(
        project.path(),
        &run_id,
        &mut source,
        Split::Validation,
        Device::Cpu,
        &mut |done, total| reports.push((done, total)),
        &stop,
    )
    .unwrap()
    .unwrap();
    assert_eq!(reports.first(), Some(&(0, 24)));
    assert_eq!(reports.last(), Some(&(24, 24)));
    assert!(!first.outputs.reused);
    assert!(
        first
            .outputs
            .cache_path
            .starts_with(project.path().join("runs").join(&run_id).join("inspect"))
    );
    let p = &first.predictions;
    assert_eq!(p.len(), 24);
    assert_eq!(p.ids[3], "validation/3");
    assert_eq!(first.outputs.dim, 512, "resnet18 pools 512 features");

    // The second time comes from the cache, identical.
    let again = inspect_split(
        project.path(),
        &run_id,
        &mut source,
        Split::Validation,
        Device::Cpu,
        &mut |_, _| {},
        &stop,
    )
    .unwrap()
    .unwrap();
    assert!(again.outputs.reused);
    assert_eq!(again.outputs.embeddings, first.outputs.embeddings);
    assert_eq!(again.predictions, first.predictions);

    // A stop before the first batch ends the pass without a result or a cache file.
    std::fs::remove_file(&first.outputs.cache_path).unwrap();
    let stopped = inspect_split(
        project.path(),
        &run_id,
        &mut source,
        Split::Validation,
        Device::Cpu,
        &mut |_, _| {},
        &AtomicBool::new(true),
    )
    .unwrap();
    assert!(stopped.is_none());
    assert!(!first.outputs.cache_path.exists());

    compare_with_reference(
        p,
        &first.outputs.logits,
        &first.outputs.embeddings,
        first.outputs.dim,
    );
}

#[test]
fn four_classes_with_tied_scores_match_the_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let (n, classes, dim) = (80usize, 4usize, 6usize);
    let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    // Logits lean towards the label and are rounded to steps of 0.5, so scores tie often.
    let logits: Vec<f32> = labels
        .iter()
        .flat_map(|&l| {
            let row: Vec<f32> = (0..classes)
                .map(|c| {
                    let lean = if c as i64 == l { 1.0 } else { 0.0 };
                    ((lean + rng.gen_range(-1.5f32..1.5)) * 2.0).round() / 2.0
                })
                .collect();
            row
        })
        .collect();
    let embeddings: Vec<f32> = (0..n)
        .flat_map(|i| {
            let t = i as f32 / n as f32;
            (0..dim)
                .map(|d| t * (d as f32 + 1.0) + rng.gen_range(-0.3f32..0.3))
                .collect::<Vec<_>>()
        })
        .collect();
    let names = (0..classes).map(|c| format!("c{c}")).collect();
    let ids = (0..n).map(|i| format!("img{i}")).collect();
    let predictions = Predictions::from_logits(names, ids, Vec::new(), &labels, &logits).unwrap();
    assert!(
        predictions
            .confusion_counts()
            .iter()
            .flatten()
            .filter(|&&c| c > 0)
            .count()
            > classes
    );
    compare_with_reference(&predictions, &logits, &embeddings, dim);
}
