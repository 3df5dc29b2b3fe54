//! `study PROJECT --scores-only --json` on a small generated project: one JSON object per
//! backbone with the scores and the measured cost, ranked by LogME; a second study reads the
//! embeddings from the cache, and so does a later linear-probe run of the same settings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use common::{json_lines, make_colour_data, workbench_ok};

#[test]
fn scores_only_ranks_backbones_and_shares_the_embedding_cache_with_the_probe() {
    let data = tempfile::tempdir().unwrap();
    make_colour_data(data.path(), 12);
    let projects = tempfile::tempdir().unwrap();
    let project = projects.path().join("colours");
    let project_arg = project.to_str().unwrap();
    workbench_ok(&[
        "new",
        project_arg,
        "--data",
        data.path().to_str().unwrap(),
        "--input-size",
        "32",
    ]);
    let study = [
        "study",
        project_arg,
        "--scores-only",
        "--json",
        "--backbones",
        "mobilenet_v2,efficientnet_lite0",
    ];
    let first = json_lines(&workbench_ok(&study).stdout);
    assert_eq!(first.len(), 2);
    let names: Vec<&str> = first
        .iter()
        .map(|r| r["backbone"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"mobilenet_v2") && names.contains(&"efficientnet_lite0"));
    assert!(first[0]["logme"].as_f64().unwrap() >= first[1]["logme"].as_f64().unwrap());
    for row in &first {
        for key in ["knn_accuracy", "probe_accuracy"] {
            let value = row[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&value), "{key} {value}");
        }
        // Colours this far apart are easy for any ImageNet backbone.
        assert!(row["knn_accuracy"].as_f64().unwrap() > 0.9, "{row}");
        assert!(row["mismatch"].as_f64().unwrap() >= 0.0);
        assert!(row["latency_ms_batch1"].as_f64().unwrap() > 0.0);
        assert!(row["images_per_s_batch32"].as_f64().unwrap() > 0.0);
        assert!(row["params"].as_i64().unwrap() > 1_000_000);
        assert!(row["gflops"].as_f64().unwrap() > 0.0);
        let images = row["images"].as_u64().unwrap();
        assert!(
            (10..24).contains(&images),
            "the training split of 24 images: {images}"
        );
        assert_eq!(row["embeddings_cached"], false);
    }

    let second = json_lines(&workbench_ok(&[&study[..], &["--no-cost"]].concat()).stdout);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(b["embeddings_cached"], true, "{b}");
        assert_eq!(
            a["logme"], b["logme"],
            "the same embeddings, the same score"
        );
        assert!(b["latency_ms_batch1"].is_null());
    }

    // A linear-probe run of the same settings reads the study's embeddings.
    let train = workbench_ok(&[
        "train",
        project_arg,
        "--strategy",
        "probe",
        "--backbone",
        "mobilenet_v2",
        "--epochs",
        "1",
    ]);
    let log = String::from_utf8_lossy(&train.stderr);
    assert!(
        log.contains("train: ") && log.contains("embeddings from the cache"),
        "{log}"
    );
}
