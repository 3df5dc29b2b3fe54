//! Segmentation through the training engine: MobileNetV2 (shipped pretrained weights when the
//! asset cache has them, random init otherwise) + U-Net decoder trained by the worker on
//! synthetic disks, with Dice as the monitored metric; the validation foreground Dice
//! exceeds 0.8, events and history carry Dice and IoU, `evaluate_run` agrees, and a stopped
//! run resumes from its last checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tch::Device;
use transfer_workbench::train::events::{CheckpointKind, DICE, IOU};
use transfer_workbench::train::run::RunDir;
use transfer_workbench::train::{
    BatchSource, ChannelSink, Control, EventSink, JobSpec, Monitor, OptimizerKind, Schedule,
    Strategy, SyntheticDisks, TaskKind, TrainConfig, TrainEvent, TrainOutcome, VecSink,
    WeightsSpec, evaluate_run, spawn_training, train,
};

fn weights() -> WeightsSpec {
    let pretrained = transfer_workbench::assets::pretrained_weights("mobilenet_v2")
        .is_ok_and(|path| path.exists());
    if pretrained {
        WeightsSpec::Pretrained
    } else {
        WeightsSpec::Random
    }
}

fn config(epochs: usize, size_px: u32) -> TrainConfig {
    TrainConfig {
        backbone: "mobilenet_v2".into(),
        weights: weights(),
        task: TaskKind::Segmentation,
        input_size_px: size_px,
        strategy: Strategy::FineTune,
        optimizer: OptimizerKind::AdamW { weight_decay: 1e-4 },
        schedule: Schedule::Constant,
        lr: 3e-3,
        epochs,
        batch_size: 8,
        monitor: Monitor::new("val_dice"),
        seed: 5,
        threads: Some(1),
        ..TrainConfig::default()
    }
}

fn spec(project: &std::path::Path, config: TrainConfig) -> JobSpec {
    JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project, config)
    }
}

#[test]
fn the_worker_trains_segmentation_to_a_validation_dice_above_0_8() {
    let start = Instant::now();
    let project = tempfile::tempdir().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let handle = spawn_training(
        spec(project.path(), config(6, 64)),
        |_| Ok(Box::new(SyntheticDisks::new(48, 16, 64, 1)) as Box<dyn BatchSource>),
        Box::new(ChannelSink::new(tx, || {})),
    )
    .unwrap();
    let mut epochs = Vec::new();
    let mut run_id = None;
    loop {
        let event = rx.recv_timeout(Duration::from_secs(600)).expect("an event");
        match event {
            TrainEvent::Failed { reason } => panic!("{reason}"),
            TrainEvent::Started { run_id: id, .. } => run_id = Some(id),
            TrainEvent::Epoch {
                epoch,
                train,
                validation,
                ..
            } => {
                let seg = validation
                    .segmentation
                    .clone()
                    .expect("segmentation metrics");
                assert_eq!(seg.dice.len(), 2);
                assert_eq!(validation.extra.get(DICE).copied(), seg.foreground_dice);
                assert!(validation.extra.contains_key(IOU));
                assert!(validation.classification.is_none());
                println!(
                    "epoch {epoch}: train loss {:.4} dice {:.4} | validation loss {:.4} dice {:.4} \
                     iou {:.4} pixel accuracy {:.4} ({:.1} s)",
                    train.loss,
                    train.extra.get(DICE).copied().unwrap_or(f64::NAN),
                    validation.loss,
                    seg.foreground_dice.unwrap_or(f64::NAN),
                    seg.foreground_iou.unwrap_or(f64::NAN),
                    validation.accuracy,
                    start.elapsed().as_secs_f64()
                );
                epochs.push((train.loss, seg.foreground_dice.unwrap_or(0.0)));
            }
            TrainEvent::Finished {
                outcome,
                best_value,
                ..
            } => {
                assert_eq!(outcome, "completed");
                let best = best_value.unwrap();
                assert!(best > 0.8, "best validation Dice {best}, epochs {epochs:?}");
                break;
            }
            _ => {}
        }
    }
    handle.join();
    assert_eq!(epochs.len(), 6);
    assert!(epochs[5].0 < epochs[0].0, "{epochs:?}");
    let run_id = run_id.unwrap();
    let run = RunDir::open(project.path(), &run_id).unwrap().0;
    let history = run.read_history().unwrap();
    assert!(history.iter().all(|r| r.validation.segmentation.is_some()));
    let mut source = SyntheticDisks::new(48, 16, 64, 1);
    let report = evaluate_run(project.path(), &run_id, &mut source, Device::Cpu).unwrap();
    let dice = report.validation.extra[DICE];
    assert!(dice > 0.8, "evaluated best checkpoint: Dice {dice}");
    println!(
        "{:?}: best checkpoint Dice {dice:.4} in {:.1} s",
        weights(),
        start.elapsed().as_secs_f64()
    );
}

/// Sets the stop token once the last checkpoint of epoch 0 is saved.
struct StopAfterFirst {
    inner: VecSink,
    stop: Arc<AtomicBool>,
}

impl EventSink for StopAfterFirst {
    fn send(&mut self, event: TrainEvent) {
        if matches!(
            event,
            TrainEvent::CheckpointSaved {
                epoch: 0,
                kind: CheckpointKind::Last,
                ..
            }
        ) {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.inner.send(event);
    }
}

#[test]
fn a_stopped_segmentation_run_resumes_from_its_last_checkpoint() {
    let project = tempfile::tempdir().unwrap();
    let source = || SyntheticDisks::new(8, 4, 32, 2);
    let mut control = Control::detached();
    let mut sink = StopAfterFirst {
        inner: VecSink::new(),
        stop: control.stop_token(),
    };
    let config = TrainConfig {
        batch_size: 4,
        strategy: Strategy::Staged {
            warmup_epochs: 1,
            layer_groups: 2,
            lr_decay: 0.5,
        },
        ..config(2, 32)
    };
    let stopped = train(
        &spec(project.path(), config),
        &mut source(),
        &mut sink,
        &mut control,
    )
    .unwrap();
    assert_eq!(
        (stopped.outcome, stopped.epochs_done),
        (TrainOutcome::Stopped, 1)
    );
    let resumed = JobSpec {
        resume: Some(stopped.run_id.clone()),
        ..spec(project.path(), TrainConfig::default())
    };
    let mut sink = VecSink::new();
    let summary = train(&resumed, &mut source(), &mut sink, &mut Control::detached()).unwrap();
    assert_eq!(summary.outcome, TrainOutcome::Completed);
    assert_eq!(summary.epochs_done, 2);
    assert!(
        sink.events()
            .iter()
            .any(|e| matches!(e, TrainEvent::Started { first_epoch: 1, .. }))
    );
    let run = RunDir::open(project.path(), &stopped.run_id).unwrap().0;
    let epochs: Vec<usize> = run
        .read_history()
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, vec![0, 1]);
    let (tensors, state) = run.load_checkpoint(CheckpointKind::Last).unwrap();
    assert_eq!(state.epochs_done, 2);
    assert!(tensors.keys().any(|k| k.starts_with("decoder.blocks.0.")));
}
