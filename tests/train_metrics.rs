//! Classification metrics against scikit-learn (the set-up's venv Python): generated
//! predictions with many tied scores, a binary task and a class absent from the labels.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use transfer_workbench::train::metrics::ClassificationMetrics;

/// Rows of probabilities built from small integer weights, so that scores tie often.
fn generate(items: usize, classes: usize, label_classes: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut probabilities = Vec::with_capacity(items * classes);
    let mut labels = Vec::with_capacity(items);
    for _ in 0..items {
        let label = rng.gen_range(0..label_classes);
        let mut weights: Vec<f32> = (0..classes).map(|_| rng.gen_range(1..=4) as f32).collect();
        // Informative but noisy: the true class usually weighs more.
        if rng.gen_bool(0.7) {
            weights[label] += 3.0;
        }
        let total: f32 = weights.iter().sum();
        probabilities.extend(weights.iter().map(|w| w / total));
        labels.push(label as i64);
    }
    (probabilities, labels)
}

fn sklearn_reference(probabilities: &[f32], labels: &[i64], classes: usize) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    let output = dir.path().join("out.json");
    // f32 -> f64 is exact, so both sides rank the very same numbers.
    let probabilities: Vec<f64> = probabilities.iter().map(|&p| f64::from(p)).collect();
    let payload = json!({"classes": classes, "probabilities": probabilities, "labels": labels});
    std::fs::write(&input, payload.to_string()).unwrap();
    let script = common::fixtures_dir().join("metrics/sklearn_metrics.py");
    let run = Command::new(common::venv_python())
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn assert_close(ours: &[f64], theirs: &[f64], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!((a - b).abs() <= 1e-9, "{what}[{i}]: {a} vs {b}");
    }
}

fn compare(probabilities: &[f32], labels: &[i64], classes: usize) -> ClassificationMetrics {
    let ours = ClassificationMetrics::compute(probabilities, labels, classes).unwrap();
    let theirs = sklearn_reference(probabilities, labels, classes);
    let counts: Vec<u64> = theirs["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ours.confusion.counts, counts, "confusion matrix");
    for (cell, items) in ours.confusion.items.iter().enumerate() {
        assert_eq!(items.len() as u64, counts[cell], "items in cell {cell}");
    }
    let support: Vec<u64> = ours.per_class.iter().map(|s| s.support).collect();
    let their_support: Vec<u64> = floats(&theirs["support"])
        .iter()
        .map(|&s| s as u64)
        .collect();
    assert_eq!(support, their_support, "support");
    let field = |f: fn(&transfer_workbench::train::metrics::ClassScores) -> f64| -> Vec<f64> {
        ours.per_class.iter().map(f).collect()
    };
    assert_close(
        &field(|s| s.precision),
        &floats(&theirs["precision"]),
        "precision",
    );
    assert_close(&field(|s| s.recall), &floats(&theirs["recall"]), "recall");
    assert_close(&field(|s| s.f1), &floats(&theirs["f1"]), "f1");
    assert_close(
        &[ours.macro_f1],
        &[theirs["macro_f1"].as_f64().unwrap()],
        "macro f1",
    );
    assert_close(
        &[ours.accuracy],
        &[theirs["accuracy"].as_f64().unwrap()],
        "accuracy",
    );
    let balanced = theirs["balanced_accuracy"].as_f64().unwrap();
    assert_close(&[ours.balanced_accuracy], &[balanced], "balanced accuracy");
    for class in 0..classes {
        let their_auc = theirs["aucs"][class].as_f64();
        match (ours.roc_auc[class], their_auc) {
            (Some(a), Some(b)) => {
                println!(
                    "class {class}: AUC {a:.6}, |ours - scikit-learn| = {:e}",
                    (a - b).abs()
                );
                assert!((a - b).abs() <= 1e-9, "AUC {class}: {a} vs {b}");
            }
            (None, None) => {}
            other => panic!("AUC {class} defined on one side only: {other:?}"),
        }
        let their_curve = &theirs["curves"][class];
        match &ours.roc[class] {
            Some(curve) => {
                assert_close(&curve.fpr, &floats(&their_curve["fpr"]), "fpr");
                assert_close(&curve.tpr, &floats(&their_curve["tpr"]), "tpr");
                assert!(curve.thresholds[0].is_infinite());
                // serde_json parses floats to within an ulp or so (no float_roundtrip).
                let thresholds = floats(&their_curve["thresholds"]);
                assert_close(&curve.thresholds[1..], &thresholds, "thresholds");
            }
            None => assert!(their_curve.is_null(), "curve {class}"),
        }
    }
    if let Some(macro_auc) = theirs["macro_auc"].as_f64() {
        let ours_macro = ours.macro_roc_auc.unwrap();
        assert!(
            (ours_macro - macro_auc).abs() <= 1e-9,
            "{ours_macro} vs {macro_auc}"
        );
    }
    ours
}

#[test]
fn multiclass_metrics_match_scikit_learn() {
    let (probabilities, labels) = generate(300, 4, 4, 7);
    let metrics = compare(&probabilities, &labels, 4);
    // The generated scores do tie: fewer curve points than items.
    let curve = metrics.roc[0].as_ref().unwrap();
    assert!(curve.fpr.len() < 100, "{} points", curve.fpr.len());
    assert!(metrics.macro_roc_auc.unwrap() > 0.6);
}

#[test]
fn binary_metrics_match_scikit_learn() {
    let (probabilities, labels) = generate(157, 2, 2, 11);
    compare(&probabilities, &labels, 2);
}

#[test]
fn absent_class_has_no_auc_and_other_metrics_still_match() {
    // Three outputs, labels only 0 and 1: class 2 is predicted sometimes but never true.
    let (probabilities, labels) = generate(120, 3, 2, 3);
    let metrics = compare(&probabilities, &labels, 3);
    assert_eq!(metrics.roc_auc[2], None);
    assert_eq!(metrics.per_class[2].support, 0);
    let macro_auc = metrics.macro_roc_auc.unwrap();
    let mean = (metrics.roc_auc[0].unwrap() + metrics.roc_auc[1].unwrap()) / 2.0;
    assert!((macro_auc - mean).abs() < 1e-12);
    let json = serde_json::to_string(&metrics).unwrap();
    assert!(!json.contains("NaN"));
}

#[test]
fn all_equal_scores_match_scikit_learn() {
    let probabilities = vec![0.25f32; 4 * 40];
    let labels: Vec<i64> = (0..40).map(|i| i % 4).collect();
    let metrics = compare(&probabilities, &labels, 4);
    assert_eq!(metrics.roc_auc, vec![Some(0.5); 4]);
}
