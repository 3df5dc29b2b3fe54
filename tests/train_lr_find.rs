//! The learning-rate range test on a real small model: random-init ResNet-18 on the synthetic
//! two-class task (32 px, CPU) gives a finite suggestion inside the sweep, reporting each
//! step as it goes, and the CLI's
//! `train --lr-find --json` prints the curve. A file of its own: libtorch's random
//! generator is process-global.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::process::Command;

use tch::Device;
use transfer_workbench::train::{
    LrFinderOptions, OptimizerKind, Strategy, SyntheticSource, TrainConfig, WeightsSpec,
    find_lr_with_progress,
};

#[test]
fn find_lr_suggests_a_finite_rate_inside_the_sweep() {
    let config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy: Strategy::FineTune,
        optimizer: OptimizerKind::AdamW { weight_decay: 1e-4 },
        batch_size: 16,
        seed: 1,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let options = LrFinderOptions {
        min_lr: 1e-6,
        max_lr: 1.0,
        steps: 40,
    };
    let mut source = SyntheticSource::two_class(64, 16, 32, 4);
    let mut reported = Vec::new();
    let result = find_lr_with_progress(&config, &mut source, Device::Cpu, options, &mut |d, t| {
        reported.push((d, t))
    })
    .unwrap();
    // One report per step, counting up to the steps taken, of the steps asked for.
    let expected: Vec<(usize, usize)> = (1..=result.lrs.len()).map(|d| (d, 40)).collect();
    assert_eq!(reported, expected);
    println!(
        "suggested {:?} from {} losses, {} smoothed",
        result.suggested_lr,
        result.losses.len(),
        result.smoothed.len()
    );
    let lr = result.suggested_lr.expect("a suggestion");
    assert!(lr.is_finite());
    assert!((options.min_lr..=options.max_lr).contains(&lr), "{lr}");
    assert_eq!(result.lrs.len(), result.losses.len());
    assert!(result.lrs.windows(2).all(|w| w[1] > w[0]));
}

#[test]
fn the_cli_prints_the_curve_and_the_suggestion() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("project.ron"),
        "(name: \"tiny\", backbone: \"resnet18\", input_size_px: 32)",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(["train", project.path().to_str().unwrap(), "--synthetic"])
        .args([
            "--weights",
            "random",
            "--batch-size",
            "16",
            "--threads",
            "1",
        ])
        .args(["--lr-find", "--lr-find-steps", "30", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let curve: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(curve["lrs"].as_array().unwrap().len(), 30);
    assert!(
        curve["suggested_lr"].as_f64().is_some_and(f64::is_finite),
        "{curve}"
    );
    assert!(
        !project.path().join("runs").exists(),
        "the range test saves nothing"
    );
}
