//! Resuming runs: in process after a stop (same result as an uninterrupted seeded run), and
//! the real binary killed with SIGKILL after its first checkpoint, then resumed. Kept apart
//! from `train_engine` because libtorch's random generator is process-global: seeded runs
//! are only repeatable when no other training shares the process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Device, Tensor};
use transfer_workbench::train::events::CheckpointKind;
use transfer_workbench::train::run::RunDir;
use transfer_workbench::train::{
    Control, EventSink, JobSpec, OptimizerKind, Schedule, Strategy, SyntheticSource, TrainConfig,
    TrainEvent, TrainOutcome, VecSink, WeightsSpec, train,
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

fn epochs(events: &[TrainEvent]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Epoch { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .collect()
}

/// Sets the stop token once the last checkpoint of `epoch` is saved.
struct StopAfter {
    inner: VecSink,
    epoch: usize,
    stop: Arc<AtomicBool>,
}

impl EventSink for StopAfter {
    fn send(&mut self, event: TrainEvent) {
        if matches!(event, TrainEvent::CheckpointSaved { epoch, kind: CheckpointKind::Last, .. } if epoch == self.epoch)
        {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.inner.send(event);
    }
}

fn last_weights(project: &std::path::Path, id: &str) -> Vec<(String, Tensor)> {
    let run = RunDir::open(project, id).unwrap().0;
    let (tensors, _) = run.load_checkpoint(CheckpointKind::Last).unwrap();
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

#[test]
fn a_resumed_run_continues_at_the_right_epoch_and_matches_an_uninterrupted_one() {
    let project = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        schedule: Schedule::OneCycle { pct_start: 0.3 },
        head_dropout: 0.2,
        ..config(Strategy::FineTune, 3)
    };
    let whole = train(
        &spec(project.path(), config.clone()),
        &mut source(),
        &mut VecSink::new(),
        &mut Control::detached(),
    )
    .unwrap();

    let mut control = Control::detached();
    let mut sink = StopAfter {
        inner: VecSink::new(),
        epoch: 0,
        stop: control.stop_token(),
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

    let resumed_spec = JobSpec {
        resume: Some(stopped.run_id.clone()),
        ..spec(project.path(), TrainConfig::default())
    };
    let mut sink = VecSink::new();
    let resumed = train(
        &resumed_spec,
        &mut source(),
        &mut sink,
        &mut Control::detached(),
    )
    .unwrap();
    assert!(
        sink.events()
            .iter()
            .any(|e| matches!(e, TrainEvent::Started { first_epoch: 1, .. }))
    );
    assert_eq!(epochs(&sink.events()), vec![1, 2]);
    assert_eq!(resumed.epochs_done, 3);

    let a = last_weights(project.path(), &whole.run_id);
    let b = last_weights(project.path(), &resumed.run_id);
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let diff = (x - y).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: {diff}");
    }
    let history = RunDir::open(project.path(), &resumed.run_id)
        .unwrap()
        .0
        .read_history()
        .unwrap();
    assert_eq!(
        history.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

fn workbench(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_transfer-workbench"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[test]
fn the_binary_killed_with_sigkill_resumes_from_its_last_checkpoint() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("project.ron"),
        "(name: \"tiny\", backbone: \"resnet18\", input_size_px: 32)",
    )
    .unwrap();
    let dir = project.path().to_str().unwrap();
    let args = [
        "train",
        dir,
        "--synthetic",
        "--weights",
        "random",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--json",
    ];
    let mut child = workbench(&args).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut run_id = None;
    for line in BufReader::new(stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "started" {
            run_id = event["run_id"].as_str().map(str::to_owned);
        }
        if event["event"] == "checkpoint_saved" && event["kind"] == "last" {
            child.kill().unwrap(); // SIGKILL on Unix
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
    let run_id = run_id.expect("a started event");
    let run = RunDir::open(project.path(), &run_id).unwrap().0;
    let (_, state) = run.load_checkpoint(CheckpointKind::Last).unwrap();
    let killed_after = state.epochs_done;
    assert!((1..3).contains(&killed_after), "{killed_after}");

    let output = workbench(&["train", dir, "--synthetic", "--resume", &run_id, "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = json_lines(&output.stdout);
    assert_eq!(events[0]["event"], "started");
    assert_eq!(events[0]["first_epoch"].as_u64(), Some(killed_after as u64));
    let finished = events.last().unwrap();
    assert_eq!(finished["event"], "finished");
    assert_eq!(finished["epochs_done"], 3);

    // Every run file parses, the history has each epoch once, and eval reads the result.
    let history = run.read_history().unwrap();
    assert_eq!(
        history.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let text = std::fs::read_to_string(run.dir.join("history.jsonl")).unwrap();
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    RunDir::open(project.path(), &run_id).unwrap();
    serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(run.dir.join("split.json")).unwrap(),
    )
    .unwrap();
    for kind in [CheckpointKind::Last, CheckpointKind::Best] {
        run.load_checkpoint(kind).unwrap();
        let sidecar = run.checkpoint_path(kind).with_extension("json");
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(sidecar).unwrap()).unwrap();
    }
    let leftovers: Vec<_> = std::fs::read_dir(run.checkpoints())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let eval = workbench(&["eval", dir, "--run", &run_id, "--synthetic", "--json"])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!(
        report["validation"]["accuracy"].as_f64().unwrap() >= 0.9,
        "{report}"
    );
}

#[test]
fn the_binary_killed_before_its_first_checkpoint_starts_again_with_its_frozen_config() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("project.ron"),
        "(name: \"tiny\", backbone: \"resnet18\", input_size_px: 32)",
    )
    .unwrap();
    let dir = project.path().to_str().unwrap();
    let args = [
        "train",
        dir,
        "--synthetic",
        "--weights",
        "random",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--json",
    ];
    let mut child = workbench(&args).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut run_id = None;
    for line in BufReader::new(stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "started" {
            run_id = event["run_id"].as_str().map(str::to_owned);
            child.kill().unwrap(); // SIGKILL on Unix, before epoch 0 ends
            break;
        }
    }
    assert!(!child.wait().unwrap().success(), "the child was killed");
    let run_id = run_id.expect("a started event");
    let run = RunDir::open(project.path(), &run_id).unwrap().0;
    assert!(
        !run.checkpoint_path(CheckpointKind::Last).exists(),
        "killed before the first checkpoint"
    );

    // Resumed with none of the options: the frozen config (2 epochs, batch 8).
    let output = workbench(&["train", dir, "--synthetic", "--resume", &run_id, "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = json_lines(&output.stdout);
    assert_eq!(events[0]["event"], "started");
    assert_eq!(events[0]["first_epoch"], 0);
    assert_eq!(events[0]["epochs"], 2);
    assert_eq!(events[0]["steps_per_epoch"], 8, "64 images in batches of 8");
    let finished = events.last().unwrap();
    assert_eq!(finished["event"], "finished");
    assert_eq!(finished["epochs_done"], 2);
    let history = run.read_history().unwrap();
    assert_eq!(
        history.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        vec![0, 1]
    );
    let (_, state) = run.load_checkpoint(CheckpointKind::Last).unwrap();
    assert_eq!(state.epochs_done, 2);
}
