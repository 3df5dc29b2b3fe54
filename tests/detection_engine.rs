//! Detection through the training engine: MobileNetV2 (shipped ImageNet weights) with the
//! "objects as points" head, trained by the engine on synthetic shapes on clutter (three
//! classes, some images without objects), AP@[.5:.95] monitored; the held-out AP@.5 reaches
//! 0.9, the history carries the COCO metrics, and a stopped run resumes. With a frozen
//! backbone its maps are computed once per image, cached, and the head alone trains on them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::time::Instant;

use tch::Device;
use transfer_workbench::train::det_source::SyntheticShapes;
use transfer_workbench::train::run::RunDir;
use transfer_workbench::train::task::{AP, AP50};
use transfer_workbench::train::{
    Control, JobSpec, Monitor, OptimizerKind, Schedule, Strategy, TaskKind, TrainConfig,
    TrainEvent, TrainOutcome, VecSink, WeightsSpec, evaluate_run, train,
};

fn config(epochs: usize, size_px: u32) -> TrainConfig {
    TrainConfig {
        backbone: "mobilenet_v2".into(),
        weights: WeightsSpec::Pretrained,
        task: TaskKind::Detection,
        input_size_px: size_px,
        strategy: Strategy::FineTune,
        optimizer: OptimizerKind::AdamW { weight_decay: 1e-4 },
        schedule: Schedule::OneCycle { pct_start: 0.2 },
        lr: 2e-3,
        epochs,
        batch_size: 16,
        monitor: Monitor::new("val_ap"),
        seed: 3,
        ..TrainConfig::default()
    }
}

fn spec(project: &std::path::Path, config: TrainConfig) -> JobSpec {
    JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project, config)
    }
}

const SIZE_PX: u32 = 96;

fn shapes() -> SyntheticShapes {
    SyntheticShapes::new(192, 48, SIZE_PX, 11)
}

#[test]
fn shapes_on_clutter_reach_an_ap50_of_0_9_on_held_out_images() {
    let start = Instant::now();
    let project = tempfile::tempdir().unwrap();
    let mut sink = VecSink::new();
    let summary = train(
        &spec(project.path(), config(12, SIZE_PX)),
        &mut shapes(),
        &mut sink,
        &mut Control::detached(),
    )
    .unwrap();
    assert_eq!(summary.outcome, TrainOutcome::Completed);
    let mut losses = Vec::new();
    for event in sink.events() {
        if let TrainEvent::Epoch {
            epoch,
            train,
            validation,
            ..
        } = event
        {
            println!(
                "epoch {epoch}: train loss {:.4} | validation loss {:.4} AP {:.4} AP50 {:.4} \
                 ({:.1} s)",
                train.loss,
                validation.loss,
                validation.extra[AP],
                validation.extra[AP50],
                start.elapsed().as_secs_f64()
            );
            losses.push(train.loss);
        }
    }
    assert!(losses.last() < losses.first(), "{losses:?}");
    let run = RunDir::open(project.path(), &summary.run_id).unwrap().0;
    let history = run.read_history().unwrap();
    assert!(history.iter().all(|r| r.validation.extra.contains_key(AP)));
    let report = evaluate_run(project.path(), &summary.run_id, &mut shapes(), Device::Cpu).unwrap();
    let ap50 = report.validation.extra[AP50];
    println!(
        "best checkpoint: AP {:.4}, AP50 {ap50:.4} after {:.1} s",
        report.validation.extra[AP],
        start.elapsed().as_secs_f64()
    );
    assert!(ap50 >= 0.9, "held-out AP@.5 {ap50}");
}

#[test]
fn detection_refuses_odd_input_sizes() {
    let project = tempfile::tempdir().unwrap();
    let err = train(
        &spec(project.path(), config(1, 72)),
        &mut SyntheticShapes::new(4, 2, 64, 1),
        &mut VecSink::new(),
        &mut Control::detached(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("multiple of 32"), "{err}");
}

/// The held-out AP@.5 floor of the frozen backbone (no augmentation: the head sees the same
/// cached maps every epoch).
const FROZEN_FLOOR_AP50: f64 = 0.5;

#[test]
fn a_frozen_backbone_runs_once_per_image_and_its_maps_are_cached() {
    let project = tempfile::tempdir().unwrap();
    let frozen = TrainConfig {
        strategy: Strategy::LinearProbe,
        lr: 5e-3,
        ..config(15, SIZE_PX)
    };
    let ready = |sink: &VecSink| -> Vec<(String, bool)> {
        sink.events()
            .iter()
            .filter_map(|e| match e {
                TrainEvent::EmbeddingsReady { split, cached, .. } => Some((split.clone(), *cached)),
                _ => None,
            })
            .collect()
    };
    let mut sink = VecSink::new();
    let summary = train(
        &spec(project.path(), frozen.clone()),
        &mut shapes(),
        &mut sink,
        &mut Control::detached(),
    )
    .unwrap();
    assert_eq!(summary.outcome, TrainOutcome::Completed);
    // 192 training and 48 validation images in batches of 16: one pass per batch, once.
    assert_eq!(summary.backbone_passes, 12 + 3);
    assert_eq!(
        ready(&sink),
        vec![
            ("train".to_owned(), false),
            ("validation".to_owned(), false)
        ]
    );
    let report = evaluate_run(project.path(), &summary.run_id, &mut shapes(), Device::Cpu).unwrap();
    let ap50 = report.validation.extra[AP50];
    println!("frozen backbone: held-out AP@.5 {ap50:.4}");
    assert!(ap50 >= FROZEN_FLOOR_AP50, "held-out AP@.5 {ap50}");

    // A second run reads the cached maps: no backbone pass at all.
    let mut again = VecSink::new();
    let second = train(
        &spec(project.path(), frozen),
        &mut shapes(),
        &mut again,
        &mut Control::detached(),
    )
    .unwrap();
    assert_eq!(second.backbone_passes, 0);
    assert_eq!(
        ready(&again),
        vec![("train".to_owned(), true), ("validation".to_owned(), true)]
    );
}
