//! Detection through the binary on a generated COCO folder (shapes on clutter, some images
//! without objects, one unreadable image): `new` detects the task, `train`, `eval --json`
//! (COCO's 12 stats and AP per class), `predict --json` (boxes in the image's own pixels, an
//! error entry for a bad file), and `export`, whose TorchScript file, loaded by Python's
//! `torch.jit.load`, gives the app's boxes on the app's validation inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;
#[path = "common/det_export.rs"]
mod det_export;
#[path = "common/shapes_coco.rs"]
mod shapes_coco;

use std::path::Path;

use serde_json::Value;

/// Runs the binary (which must succeed) and returns its standard output.
fn workbench(args: &[&str]) -> String {
    String::from_utf8_lossy(&common::workbench_ok(args).stdout).into_owned()
}
use shapes_coco::{CLASSES, coco_folder};

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

#[test]
fn new_train_eval_predict_export_on_a_coco_folder() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("shapes coco");
    coco_folder(&data, 60);
    let project = temp.path().join("project");
    let created = workbench(&[
        "new",
        path_str(&project),
        "--data",
        path_str(&data),
        "--backbone",
        "mobilenet_v2",
        "--input-size",
        "64",
    ]);
    assert!(created.contains("detection"), "{created}");
    let trained = workbench(&[
        "train",
        path_str(&project),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "0.002",
    ]);
    assert!(trained.contains("run-001"), "{trained}");
    let history = std::fs::read_to_string(project.join("runs/run-001/history.jsonl")).unwrap();
    assert!(history.contains("\"ap\""), "{history}");

    let eval: Value = serde_json::from_str(&workbench(&["eval", path_str(&project), "--json"]))
        .expect("eval --json is JSON");
    let stats = eval["stats"].as_object().unwrap();
    assert_eq!(stats.len(), 12, "{eval}");
    for key in ["ap", "ap50", "ap75", "ar100", "ap_small", "ar_large"] {
        let value = stats[key].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&value), "{key} = {value}");
    }
    let per_class: Vec<&str> = eval["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(per_class, CLASSES);
    let text = workbench(&["eval", path_str(&project)]);
    assert!(
        text.contains("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"),
        "{text}"
    );

    let image = data.join("images/scene 0.png");
    let bad = data.join("images/broken.png");
    let predicted: Value = serde_json::from_str(&workbench(&[
        "predict",
        path_str(&project),
        path_str(&image),
        path_str(&bad),
        "--threshold",
        "0.05",
        "--json",
    ]))
    .unwrap();
    let entries = predicted.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries[1]["error"].is_string(), "{predicted}");
    for found in entries[0]["detections"].as_array().unwrap() {
        assert!(CLASSES.contains(&found["label"].as_str().unwrap()));
        let score = found["score"].as_f64().unwrap();
        assert!((0.05..=1.0).contains(&score), "{found}");
        let b: Vec<f64> = found["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            b[0] <= b[2] && b[1] <= b[3] && b[2] <= 80.0 && b[3] <= 64.0,
            "{found}"
        );
    }

    let exported = workbench(&["export", path_str(&project)]);
    assert!(exported.contains("model.pt"), "{exported}");
    let metadata: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("runs/run-001/export/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(metadata["task"], "detection");
    assert_eq!(metadata["output"]["kind"], "detections");
    assert_eq!(metadata["verification"]["passed"], true, "{metadata}");
    let data = project.parent().unwrap().join("shapes coco/images");
    let paths: Vec<_> = (0..6)
        .map(|i| data.join(format!("scene {i}.png")))
        .collect();
    det_export::python_reload_matches_the_app(&project, "run-001", &paths);
}

/// A new detection project trains at least 200 optimiser steps by default; `--epochs` alone
/// trains exactly its epochs, and `--min-steps` adds epochs on a small data set, which the
/// run's frozen config records and the command line explains.
#[test]
fn small_detection_sets_train_enough_steps() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("few shapes");
    coco_folder(&data, 12);
    let project = temp.path().join("project");
    workbench(&["new", path_str(&project), "--data", path_str(&data)]);
    let loaded = transfer_workbench::project::load_project(&project).unwrap();
    let defaults = transfer_workbench::train::TrainConfig::for_project(&loaded);
    assert_eq!(defaults.min_steps, 200);

    let out = common::workbench_ok(&[
        "train",
        path_str(&project),
        "--epochs",
        "2",
        "--min-steps",
        "4",
        "--batch-size",
        "32",
        "--input-size",
        "32",
        "--threads",
        "1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Under 32 training images at batch 32: one step per epoch, so 4 epochs.
    assert!(
        stderr.contains("4 epochs instead of 2: at least 4 optimiser steps"),
        "{stderr}"
    );
    let frozen = std::fs::read_to_string(project.join("runs/run-001/config.ron")).unwrap();
    let frozen: transfer_workbench::train::TrainConfig = ron::from_str(&frozen).unwrap();
    assert_eq!((frozen.epochs, frozen.min_steps), (4, 4));
    let history = std::fs::read_to_string(project.join("runs/run-001/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 4, "{history}");
}
