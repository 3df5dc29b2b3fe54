//! The training engine on a synthetic two-class task (CPU, 32 px, random-init ResNet-18):
//! fine-tuning learns, the linear probe embeds once, commands pause/resume/stop the worker,
//! a NaN loss fails the run and keeps the best checkpoint,.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::time::Duration;

use tch::Device;
use transfer_workbench::train::events::{BALANCED_ACCURACY, CheckpointKind, MACRO_AUC, MACRO_F1};
use transfer_workbench::train::run::RunDir;
use transfer_workbench::train::source::BatchIter;
use transfer_workbench::train::{
    Batch, BatchSource, ChannelSink, Control, JobSpec, Monitor, OptimizerKind, Schedule, Split,
    Strategy, SyntheticSource, TrainConfig, TrainEvent, TrainOutcome, VecSink, WeightsSpec,
    spawn_training, train,
};

fn config(strategy: Strategy, epochs: usize) -> TrainConfig {
    TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy,
        optimizer: OptimizerKind::AdamW { weight_decay: 1e-4 },
        schedule: Schedule::Constant,
        lr: 1e-3,
        epochs,
        batch_size: 16,
        seed: 3,
        threads: Some(1),
        ..TrainConfig::default()
    }
}

fn source() -> SyntheticSource {
    SyntheticSource::two_class(64, 32, 32, 11)
}

fn spec(project: &std::path::Path, config: TrainConfig) -> JobSpec {
    JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project, config)
    }
}

fn epochs(events: &[TrainEvent]) -> Vec<(usize, f64, f64)> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch {
                epoch,
                train,
                validation,
                ..
            } => Some((*epoch, train.loss, validation.accuracy)),
            _ => None,
        })
        .collect()
}

#[test]
fn fine_tuning_lowers_the_loss_and_learns_the_task() {
    let project = tempfile::tempdir().unwrap();
    let mut sink = VecSink::new();
    let config = TrainConfig {
        monitor: Monitor::new("val_macro_f1"),
        ..config(Strategy::FineTune, 4)
    };
    let summary = train(
        &spec(project.path(), config),
        &mut source(),
        &mut sink,
        &mut Control::detached(),
    )
    .unwrap();
    let history = epochs(&sink.events());
    println!("epochs (epoch, train loss, validation accuracy): {history:?}");
    assert_eq!(summary.outcome, TrainOutcome::Completed);
    assert!(
        history.last().unwrap().1 < history[0].1 * 0.7,
        "{history:?}"
    );
    assert!(history.last().unwrap().2 >= 0.9, "{history:?}");
    // Every epoch's validation carries the full classification metrics.
    let events = sink.events();
    let last = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch { validation, .. } => Some(validation.clone()),
            _ => None,
        })
        .next_back()
        .unwrap();
    let metrics = last
        .classification
        .as_ref()
        .expect("classification metrics");
    assert_eq!(metrics.items, 32);
    assert_eq!(metrics.confusion.counts.iter().sum::<u64>(), 32);
    assert!(
        metrics.confusion.items.is_empty(),
        "no item lists in events"
    );
    assert_eq!((metrics.per_class.len(), metrics.roc_auc.len()), (2, 2));
    assert_eq!(metrics.roc.len(), 2, "the event keeps the ROC curves");
    assert_eq!(last.extra[MACRO_F1], metrics.macro_f1);
    assert_eq!(last.extra[BALANCED_ACCURACY], metrics.balanced_accuracy);
    assert_eq!(Some(last.extra[MACRO_AUC]), metrics.macro_roc_auc);
    let best = summary.best.unwrap();
    println!(
        "macro AUC {:?}, best macro F1 {best:?}",
        metrics.macro_roc_auc
    );
    assert!(metrics.macro_roc_auc.unwrap() >= 0.9, "{metrics:?}");
    assert!(best.1 >= 0.9 && best.1 <= 1.0, "best macro F1 {best:?}");
    let run = RunDir::open(project.path(), &summary.run_id).unwrap().0;
    let history = run.read_history().unwrap();
    assert_eq!(history.len(), 4);
    let stored = history[3].validation.classification.as_ref().unwrap();
    assert!(stored.roc.is_empty() && stored.confusion.items.is_empty());
    assert_eq!(stored.roc_auc, metrics.roc_auc);
    assert!(run.checkpoint_path(CheckpointKind::Best).is_file());
    assert!(matches!(
        sink.events().last(),
        Some(TrainEvent::Finished { .. })
    ));
}

#[test]
fn linear_probe_embeds_once_and_reuses_the_cache() {
    let project = tempfile::tempdir().unwrap();
    let probe = TrainConfig {
        lr: 1e-2,
        ..config(Strategy::LinearProbe, 3)
    };
    let mut first = VecSink::new();
    let spec = spec(project.path(), probe);
    let summary = train(&spec, &mut source(), &mut first, &mut Control::detached()).unwrap();
    // 64 train + 32 validation images at 16 per batch, embedded once for three epochs.
    assert_eq!(summary.backbone_passes, 4 + 2);
    let cached: Vec<bool> = first
        .events()
        .iter()
        .filter_map(|e| match e {
            TrainEvent::EmbeddingsReady {
                cached,
                path,
                precision,
                ..
            } => {
                assert!(path.is_file());
                // The machine's path, or the one TRANSFER_WORKBENCH_BF16 asks for.
                let expected = if transfer_workbench::model::cpu_bf16::bf16_by_default() {
                    "bfloat16"
                } else {
                    "float32"
                };
                assert_eq!(precision, expected);
                Some(*cached)
            }
            _ => None,
        })
        .collect();
    assert_eq!(cached, vec![false, false]);
    let mut second = VecSink::new();
    let summary = train(&spec, &mut source(), &mut second, &mut Control::detached()).unwrap();
    assert_eq!(summary.backbone_passes, 0, "the second run reads the cache");
    assert!(
        second
            .events()
            .iter()
            .any(|e| matches!(e, TrainEvent::EmbeddingsReady { cached: true, .. }))
    );
    assert_eq!(epochs(&second.events()).len(), 3);
}

#[test]
fn commands_pause_resume_and_stop_the_worker() {
    let project = tempfile::tempdir().unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let sink = ChannelSink::new(tx, || {});
    let config = config(Strategy::FineTune, 50);
    let handle = spawn_training(
        spec(project.path(), config),
        |_| Ok(Box::new(source()) as Box<dyn BatchSource>),
        Box::new(sink),
    )
    .unwrap();
    let wait_for = |pred: &dyn Fn(&TrainEvent) -> bool| loop {
        let event = rx.recv_timeout(Duration::from_secs(120)).expect("an event");
        assert!(!matches!(event, TrainEvent::Failed { .. }), "{event:?}");
        if pred(&event) {
            return event;
        }
    };
    wait_for(&|e| matches!(e, TrainEvent::Step { .. }));
    handle.pause();
    wait_for(&|e| matches!(e, TrainEvent::Paused));
    // While paused no steps arrive (at most the one in flight).
    std::thread::sleep(Duration::from_millis(300));
    let steps_while_paused = rx
        .try_iter()
        .filter(|e| matches!(e, TrainEvent::Step { .. }))
        .count();
    assert!(steps_while_paused <= 1, "{steps_while_paused}");
    handle.resume();
    wait_for(&|e| matches!(e, TrainEvent::Resumed));
    wait_for(&|e| matches!(e, TrainEvent::Step { .. }));
    handle.stop();
    let finished = wait_for(&|e| matches!(e, TrainEvent::Finished { .. }));
    assert!(matches!(&finished, TrainEvent::Finished { outcome, .. } if outcome == "stopped"));
    handle.join();
}

/// Yields NaN images from epoch `nan_from_epoch` (counted by training passes) on.
struct PoisonedSource {
    inner: SyntheticSource,
    train_passes: usize,
    nan_from_epoch: usize,
}

impl BatchSource for PoisonedSource {
    fn labels(&self, split: Split) -> Vec<i64> {
        self.inner.labels(split)
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn fingerprint(&self, split: Split) -> String {
        self.inner.fingerprint(split)
    }
    fn batches(
        &mut self,
        split: Split,
        plan: Vec<Vec<usize>>,
        augment: bool,
        seed: u64,
    ) -> BatchIter<'_> {
        let poison = split == Split::Train && self.train_passes >= self.nan_from_epoch;
        if split == Split::Train {
            self.train_passes += 1;
        }
        Box::new(
            self.inner
                .batches(split, plan, augment, seed)
                .map(move |b| {
                    let b = b?;
                    let images = if poison {
                        b.images.f_mul_scalar(f64::NAN)?
                    } else {
                        b.images
                    };
                    Ok(Batch {
                        images,
                        targets: b.targets,
                        skipped: b.skipped,
                    })
                }),
        )
    }
}

#[test]
fn a_nan_loss_fails_the_run_and_keeps_the_best_checkpoint() {
    let project = tempfile::tempdir().unwrap();
    let mut source = PoisonedSource {
        inner: source(),
        train_passes: 0,
        nan_from_epoch: 1,
    };
    let mut sink = VecSink::new();
    let result = train(
        &spec(project.path(), config(Strategy::FineTune, 3)),
        &mut source,
        &mut sink,
        &mut Control::detached(),
    );
    let err = result.unwrap_err().to_string();
    assert!(err.contains("loss became NaN at epoch 1"), "{err}");
    let events = sink.events();
    assert!(matches!(events.last(), Some(TrainEvent::Failed { reason }) if reason == &err));
    let run = RunDir::open(project.path(), "run-001").unwrap().0;
    let (_, state) = run.load_checkpoint(CheckpointKind::Best).unwrap();
    assert_eq!(state.epochs_done, 1);
    assert!(
        std::fs::read_to_string(run.dir.join("train.log"))
            .unwrap()
            .contains("NaN")
    );
}
