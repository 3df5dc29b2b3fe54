//! `study PROJECT` with training runs on a small generated project: the runs are ordinary
//! runs of the project, the leaderboard gives each an accuracy with a bootstrap interval;
//! `kill -9` in the middle of the second run, then `study --resume ID`: the finished run is
//! not trained again, the interrupted one resumes from its checkpoint, the study completes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{json_lines, make_colour_data, workbench_ok};

fn new_project(data: &Path, project: &Path) {
    workbench_ok(&[
        "new",
        project.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--input-size",
        "32",
    ]);
}

fn run_ids(project: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(project.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("run-"))
        .collect();
    ids.sort();
    ids
}

/// The leaderboard of study `id`, one JSON object per run.
fn shown(project: &Path, id: &str) -> Vec<serde_json::Value> {
    json_lines(&workbench_ok(&["study", project.to_str().unwrap(), "--show", id, "--json"]).stdout)
}

/// The `train_secs` of an entry file.
fn seconds_of(entry: &str) -> f64 {
    let at = entry.find("train_secs:").expect("train_secs in the entry") + "train_secs:".len();
    entry[at..]
        .trim_start()
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn entry_text(project: &Path, key: &str) -> String {
    std::fs::read_to_string(
        project
            .join("studies/study-001/entries")
            .join(format!("{key}.ron")),
    )
    .unwrap_or_default()
}

#[test]
fn a_study_killed_mid_run_resumes_without_training_finished_runs_again() {
    let data = tempfile::tempdir().unwrap();
    make_colour_data(data.path(), 12);
    let projects = tempfile::tempdir().unwrap();
    let project = projects.path().join("colours");
    new_project(data.path(), &project);

    let (first, second) = ("mobilenet_v2-finetune", "efficientnet_lite0-finetune");
    let mut child = Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args([
            "study",
            project.to_str().unwrap(),
            "--backbones",
            "mobilenet_v2,efficientnet_lite0",
            "--strategies",
            "finetune",
            "--no-control",
            "--epochs",
            "4",
            "--no-cost",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the second run has finished its first epoch (its checkpoint is on disk),
    // then kill the process without warning.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with(&format!("{second}: epoch 0")) {
            break;
        }
    }
    assert!(seen.contains(&format!("{second}: epoch 0")), "{seen}");
    let first_run = run_ids(&project)[0].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let second_checkpoint = project.join("runs/run-002/checkpoints/last.safetensors");
    while !second_checkpoint.is_file() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(entry_text(&project, first).contains("Done"), "{seen}");
    let interrupted = entry_text(&project, second);
    assert!(
        interrupted.contains("Pending") && interrupted.contains("run-002"),
        "the second run was killed mid-way: {interrupted}"
    );
    let seconds_before_kill = seconds_of(&interrupted);
    assert!(seconds_before_kill > 0.0, "its first epoch's time is kept");

    let resumed = workbench_ok(&["study", project.to_str().unwrap(), "--resume", "study-001"]);
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        !log.contains(&format!("{first}: training")),
        "the finished run is not trained again: {log}"
    );
    assert!(
        log.contains(&format!("{second}: resuming from its last checkpoint")),
        "{log}"
    );
    assert_eq!(
        run_ids(&project),
        [first_run.as_str(), "run-002"],
        "no new run folder"
    );
    assert!(seconds_of(&entry_text(&project, second)) > seconds_before_kill);
    let history = std::fs::read_to_string(project.join("runs/run-002/history.jsonl")).unwrap();
    assert_eq!(
        history.lines().count(),
        4,
        "all 4 epochs of the resumed run"
    );
    let table = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        table.contains(first) && table.contains(second) && table.contains("accuracy"),
        "{table}"
    );

    let board = shown(&project, "study-001");
    assert_eq!(board.len(), 2);
    for row in &board {
        assert_eq!(row["state"], "done", "{row}");
        let (metric, low, high) = (
            row["metric"].as_f64().unwrap(),
            row["interval_low"].as_f64().unwrap(),
            row["interval_high"].as_f64().unwrap(),
        );
        assert!(low <= metric && metric <= high, "{row}");
        assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high));
        assert!(row["validation_images"].as_u64().unwrap() > 0);
        assert!(row["train_secs"].as_f64().unwrap() > 0.0);
        assert!(row["export_bytes"].as_u64().unwrap() > 1_000_000, "{row}");
        assert!(row["logme"].as_f64().is_some(), "{row}");
    }
    // The best run is first and the other is compared with it on the same images.
    assert!(board[0]["metric"].as_f64() >= board[1]["metric"].as_f64());
    assert!(board[0]["verdict"].is_null());
    assert!(
        board[1]["verdict"]
            .as_str()
            .unwrap()
            .contains("better than"),
        "{}",
        board[1]
    );
}

#[test]
fn a_probe_study_with_a_from_scratch_control_fills_every_row() {
    let data = tempfile::tempdir().unwrap();
    make_colour_data(data.path(), 20);
    let projects = tempfile::tempdir().unwrap();
    let project = projects.path().join("colours");
    new_project(data.path(), &project);
    let report = tempfile::tempdir().unwrap();
    // Small steps, so that a few epochs of the probe are enough steps.
    workbench_ok(&[
        "project",
        "settings",
        project.to_str().unwrap(),
        "--batch-size",
        "4",
        "--lr",
        "0.01",
    ]);
    let board = json_lines(
        &workbench_ok(&[
            "study",
            project.to_str().unwrap(),
            "--backbones",
            "mobilenet_v2,efficientnet_lite0",
            "--epochs",
            "5",
            "--json",
            "--report",
            report.path().to_str().unwrap(),
        ])
        .stdout,
    );
    let keys: Vec<&str> = board.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(board.len(), 3, "{keys:?}");
    assert!(keys.contains(&"mobilenet_v2-probe-scratch"), "{keys:?}");
    for row in &board {
        assert_eq!(row["state"], "done", "{row}");
        assert!(row["latency_ms_batch1"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["params"].as_i64().unwrap() > 1_000_000);
    }
    let control = board
        .iter()
        .find(|r| r["key"] == "mobilenet_v2-probe-scratch")
        .unwrap();
    assert_eq!(control["pretrained"], false);
    // Pretrained features separate these colours; random ones are the baseline.
    let pretrained = board
        .iter()
        .find(|r| r["key"] == "mobilenet_v2-probe")
        .unwrap();
    assert!(
        pretrained["metric"].as_f64().unwrap() >= 0.8,
        "{pretrained}"
    );
    assert!(
        pretrained["metric"].as_f64() >= control["metric"].as_f64(),
        "{pretrained} vs {control}"
    );
    assert_eq!(
        run_ids(&project).len(),
        3,
        "each row is a run of the project"
    );

    // The report: every run in its table, the plots it links beside it as real PNGs.
    let text = std::fs::read_to_string(report.path().join("report.md")).unwrap();
    for key in &keys {
        assert!(text.contains(&format!("| {key} |")), "{key} in\n{text}");
    }
    assert!(
        text.contains("Kendall's τ") && text.contains("Pareto front"),
        "{text}"
    );
    for plot in [
        "intervals.png",
        "pareto.png",
        "before_after.png",
        "mismatch.png",
    ] {
        assert!(text.contains(&format!("]({plot})")), "{plot} linked");
        let image = image::open(report.path().join(plot)).unwrap();
        assert!(image.width() > 400 && image.height() > 300);
    }
}

#[test]
fn two_train_spec_processes_fill_one_planned_study() {
    let data = tempfile::tempdir().unwrap();
    make_colour_data(data.path(), 12);
    let projects = tempfile::tempdir().unwrap();
    let project = projects.path().join("colours");
    new_project(data.path(), &project);
    let specs = tempfile::tempdir().unwrap();
    let planned = workbench_ok(&[
        "study",
        project.to_str().unwrap(),
        "--backbones",
        "mobilenet_v2,efficientnet_lite0",
        "--no-control",
        "--epochs",
        "2",
        "--plan",
        specs.path().to_str().unwrap(),
    ]);
    let listed = String::from_utf8_lossy(&planned.stdout);
    let files: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(files.len(), 2, "{listed}");
    assert!(!project.join("runs").exists(), "planning trains nothing");

    // Three processes at once, as tasks of a job array would be; the first spec twice
    // (a task that a scheduler started again): it is trained once.
    let mut running: Vec<_> = [files[0], files[1], files[0]]
        .iter()
        .map(|spec| {
            Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
                .args(["train", project.to_str().unwrap(), "--spec", spec])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in running.drain(..) {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let board = shown(&project, "study-001");
    assert_eq!(board.len(), 2);
    let mut runs: Vec<&str> = board
        .iter()
        .map(|r| {
            assert_eq!(r["state"], "done", "{r}");
            r["run_id"].as_str().unwrap()
        })
        .collect();
    runs.sort();
    assert_eq!(runs, ["run-001", "run-002"], "one run each, none twice");
    assert_eq!(run_ids(&project).len(), 2);
}

#[test]
fn a_segmentation_study_ranks_its_runs_by_dice_per_image() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("tiles");
    common::segmentation_folder(&data);
    let project = temp.path().join("disks");
    new_project(&data, &project);
    let board = json_lines(
        &workbench_ok(&[
            "study",
            project.to_str().unwrap(),
            "--backbones",
            "mobilenet_v2",
            "--strategies",
            "finetune",
            "--epochs",
            "2",
            "--no-cost",
            "--json",
        ])
        .stdout,
    );
    let keys: Vec<&str> = board.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys.len(),
        2,
        "the run and its from-scratch control: {keys:?}"
    );
    for row in &board {
        assert_eq!(row["state"], "done", "{row}");
        let (dice, low, high) = (
            row["metric"].as_f64().unwrap(),
            row["interval_low"].as_f64().unwrap(),
            row["interval_high"].as_f64().unwrap(),
        );
        assert!(
            (0.0..=1.0).contains(&dice) && low <= dice && dice <= high,
            "{row}"
        );
        assert!(row["validation_images"].as_u64().unwrap() > 0);
        // LogME and the probe scores are made for classification.
        assert!(row["logme"].is_null(), "{row}");
    }
    assert!(
        board[1]["verdict"]
            .as_str()
            .unwrap()
            .contains("better than")
    );
}
