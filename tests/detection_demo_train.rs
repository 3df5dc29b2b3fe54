//! The nuclei and tree-crown detection demo projects trained through the command line with
//! the default recipe (only the epoch count raised: see `EPOCHS`) reach an AP@.5 floor on
//! their held-out tiles. The measurements behind the floor (ours and the PyTorch reference
//! `tests/fixtures/parity/centernet_reference.py` with the same recipe and split) are in
//! `docs/detection_reference.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::path::Path;

use serde_json::Value;

/// Epochs of the test. The default of 10 is 10 optimiser steps on this project (11 training
/// tiles, batch 32: one step an epoch), too few for the head to leave its prior (AP@.5 of 0
/// on the PyTorch reference); 100 epochs took 84 s on one thread of a loaded 2-core machine.
const EPOCHS: &str = "100";

/// AP@.5 floor on the validation tiles: the best checkpoint measured 0.886 (seed 0; the
/// PyTorch reference 0.842), and the validation AP@.5 of the last 30 epochs stayed between
/// about 0.7 and 0.89; 0.6 leaves a margin for other seeds' thread counts and CPUs (see
/// `docs/detection_reference.md`).
const FLOOR_AP50: f64 = 0.6;

/// Validation AP@.5 of the demo project `name` (a copy in a temp folder; its `project.ron`
/// points at the asset cache) trained through the CLI for `EPOCHS`, with the eval output.
fn demo_ap50(name: &str) -> (f64, Value) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("projects")
        .join(name);
    let temp = tempfile::tempdir().unwrap();
    let project = temp.path().join(name);
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(demo.join("project.ron"), project.join("project.ron")).unwrap();
    let project_arg = project.to_str().unwrap();
    common::workbench_ok(&["train", project_arg, "--epochs", EPOCHS]);
    let output = common::workbench_ok(&["eval", project_arg, "--json"]);
    let eval: Value = serde_json::from_slice(&output.stdout).expect("eval --json is JSON");
    (eval["stats"]["ap50"].as_f64().unwrap(), eval)
}

#[test]
fn nuclei_demo_reaches_its_ap50_floor_on_held_out_tiles() {
    let (ap50, eval) = demo_ap50("nuclei-detection");
    assert!(
        ap50 >= FLOOR_AP50,
        "AP@.5 {ap50} on the validation tiles, floor {FLOOR_AP50}: {eval}"
    );
}

/// AP@.5 floor of the tree-crown demo on its validation tiles (CenterNet on MobileNetV2, the
/// project's 320 px, 100 epochs): measured 0.465 (test tiles 0.348) in 346 s on a 2-core AMD
/// EPYC; about 7 held-out tiles of some 20 crowns each move it by up to 0.1 between runs, so
/// 0.2 leaves room for other CPUs and thread counts while a head that stays at its prior
/// (AP@.5 0, as after the default 10 epochs) still fails.
const TREE_FLOOR_AP50: f64 = 0.2;

#[test]
fn tree_crown_demo_reaches_its_ap50_floor_on_held_out_tiles() {
    let (ap50, eval) = demo_ap50("tree-crowns");
    assert!(
        ap50 >= TREE_FLOOR_AP50,
        "AP@.5 {ap50} on the validation tiles, floor {TREE_FLOOR_AP50}: {eval}"
    );
}
