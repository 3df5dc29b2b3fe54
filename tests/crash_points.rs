//! Crash points: the real binary killed with SIGKILL in the middle of `train`, `export`,
//! `new`, `project rename` and `project settings`, at a step of one of its file writes (the
//! pause-point hook, `atomic_file::PAUSE_AT_VAR`) or after a seeded random delay. After
//! each kill the project must load and every file in it be whole (a temp file, a staging
//! folder or a lock file of the dead process may be left); after the recovery a user would
//! do (resume the run, run the command again) nothing may be left and every run must have
//! completed.
//!
//! The normal test run takes a seeded subset ([`SUBSET`] points, one of each action among
//! them; seed `CRASH_POINTS_SEED`, default 19); `CRASH_POINTS=all` runs all of them
//! (`setup/crash_points.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod fault_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fault_support::{Paused, assert_intact, bin, class_folder, events, ok, run_to_pause, s};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use transfer_workbench::project::load_project;

/// Points of the normal test run.
const SUBSET: usize = 8;

/// Epochs of every run.
const EPOCHS: u64 = 2;

/// What is interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Train,
    Export,
    New,
    Rename,
    Settings,
}

/// When it is killed: at a pause point (`stage:n`), or after this share of the time the
/// same command took uninterrupted.
#[derive(Clone, Debug)]
enum When {
    Pause(&'static str),
    Delay(f64),
}

/// Every kill point: per action, its writes at each step (see the write order in the
/// comments), then random moments.
fn all_points(rng: &mut ChaCha8Rng) -> Vec<(Action, When)> {
    use Action::*;
    // A new run writes config.ron (1) and split.json (2) in its staging folder, its status
    // (3), then per epoch best.safetensors (4) and its sidecar (5), last.safetensors (6) and
    // its sidecar (7), the status (8).
    let mut points: Vec<(Action, When)> = [
        "written:1",
        "renamed:2",
        "renamed:3",
        "written:4",
        "synced:6",
        "renamed:6",
        "renamed:8",
    ]
    .into_iter()
    .map(|p| (Train, When::Pause(p)))
    .collect();
    // The export writes model.json, then renames its verified model.pt beside it.
    for action in [Export, New, Rename, Settings] {
        for p in ["written:1", "synced:1", "renamed:1"] {
            points.push((action, When::Pause(p)));
        }
    }
    for _ in 0..5 {
        points.push((Train, When::Delay(rng.gen_range(0.05..0.95))));
    }
    for _ in 0..2 {
        points.push((Export, When::Delay(rng.gen_range(0.05..0.95))));
    }
    points
}

/// The shared project: a class folder, a project, one trained run (so that `split.ron`
/// exists and every later run writes in the same order) and the time a train and an export
/// take here.
struct Bench {
    root: PathBuf,
    project: PathBuf,
    data: PathBuf,
    train_time: Duration,
    export_time: Duration,
    news: usize,
}

fn train_args(project: &Path) -> Vec<String> {
    [
        "train",
        s(project),
        "--epochs",
        &EPOCHS.to_string(),
        "--weights",
        "random",
        "--threads",
        "1",
        "--batch-size",
        "8",
        "--json",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn command(args: &[String]) -> Command {
    bin(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn action_args(bench: &Bench, action: Action, new_dir: &Path) -> Vec<String> {
    let project = s(&bench.project).to_owned();
    let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match action {
        Action::Train => train_args(&bench.project),
        Action::Export => v(&["export", &project]),
        Action::New => v(&[
            "new",
            s(new_dir),
            "--data",
            s(&bench.data),
            "--backbone",
            "resnet18",
            "--input-size",
            "32",
        ]),
        // A new value each time: an edit that changes nothing writes nothing.
        Action::Rename => v(&[
            "project",
            "rename",
            &project,
            &format!("Renamed {}", bench.news),
        ]),
        Action::Settings => v(&[
            "project",
            "settings",
            &project,
            "--seed",
            &bench.news.to_string(),
        ]),
    }
}

fn run_ids(project: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(project.join("runs"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("run-"))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Checks right after a kill: the project loads and its files are whole, leftovers allowed;
/// an export never looks complete without its metadata.
fn assert_whole_after_kill(project: &Path) {
    load_project(project).unwrap_or_else(|e| panic!("the project does not load: {e}"));
    fault_support::assert_whole(project, true);
    for id in run_ids(project) {
        let export = project.join("runs").join(&id).join("export");
        if export.join("model.pt").exists() {
            let json = std::fs::read(export.join("model.json")).unwrap();
            serde_json::from_slice::<serde_json::Value>(&json).unwrap();
        }
    }
}

/// Kills one action at `when`; returns whether it was killed (a delay may outlast it).
fn kill(bench: &Bench, action: Action, when: &When, new_dir: &Path) -> Option<String> {
    let args = action_args(bench, action, new_dir);
    match when {
        When::Pause(point) => match run_to_pause(command(&args), point) {
            Ok(paused) => {
                let at = paused.path.display().to_string();
                Paused::kill(paused);
                Some(format!("at {point} of {at}"))
            }
            Err(output) => panic!(
                "{action:?} ended before {point}: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        },
        When::Delay(share) => {
            let full = match action {
                Action::Export => bench.export_time,
                _ => bench.train_time,
            };
            let delay = full.mul_f64(*share);
            let mut child = command(&args).spawn().unwrap();
            std::thread::sleep(delay);
            let ended = child.try_wait().unwrap().is_some();
            child.kill().ok(); // SIGKILL on Unix
            child.wait().unwrap();
            (!ended).then(|| format!("after {} ms", delay.as_millis()))
        }
    }
}

/// What a user does after the kill, then the full check.
fn recover(bench: &Bench, action: Action, new_dir: &Path, runs_before: &[String]) {
    match action {
        Action::Train => {
            let new_runs: Vec<_> = run_ids(&bench.project)
                .into_iter()
                .filter(|id| !runs_before.contains(id))
                .collect();
            let output = match new_runs.as_slice() {
                [] => ok(command(&train_args(&bench.project))),
                [id] => ok(bin(&["train", s(&bench.project), "--resume", id, "--json"])),
                more => panic!("one kill made {more:?}"),
            };
            let finished = events(&output).pop().unwrap();
            assert_eq!(finished["event"], "finished", "{finished}");
            assert_eq!(finished["epochs_done"], EPOCHS, "{finished}");
        }
        Action::Export => {
            ok(bin(&["export", s(&bench.project)]));
        }
        Action::New => {
            if !new_dir.join("project.ron").exists() {
                ok(command(&action_args(bench, action, new_dir)));
            }
            assert_intact(new_dir);
        }
        Action::Rename | Action::Settings => {
            ok(command(&action_args(bench, action, new_dir)));
        }
    }
    assert_intact(&bench.project);
    for id in run_ids(&bench.project) {
        let status: serde_json::Value = serde_json::from_slice(
            &std::fs::read(bench.project.join("runs").join(&id).join("status.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(status["state"], "finished", "{id}: {status}");
    }
}

fn bench(root: &Path) -> Bench {
    let data = root.join("data");
    class_folder(&data, 8);
    let project = root.join("project");
    let mut bench = Bench {
        root: root.to_owned(),
        project: project.clone(),
        data,
        train_time: Duration::ZERO,
        export_time: Duration::ZERO,
        news: 0,
    };
    ok(command(&action_args(&bench, Action::New, &project)));
    let started = Instant::now();
    ok(command(&train_args(&project)));
    bench.train_time = started.elapsed();
    let started = Instant::now();
    ok(bin(&["export", s(&project)]));
    bench.export_time = started.elapsed();
    bench
}

#[test]
fn killed_commands_leave_every_project_loadable_and_every_run_resumable() {
    let seed: u64 = std::env::var("CRASH_POINTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(19);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut points = all_points(&mut rng);
    let total = points.len();
    assert!(total >= 20, "{total} kill points");
    if std::env::var("CRASH_POINTS").as_deref() != Ok("all") {
        // A random point of each action first, then random others.
        points.shuffle(&mut rng);
        let (mut chosen, mut rest) = (Vec::new(), Vec::new());
        for point in points {
            if chosen.iter().any(|(action, _)| *action == point.0) {
                rest.push(point);
            } else {
                chosen.push(point);
            }
        }
        chosen.extend(rest);
        chosen.truncate(SUBSET);
        points = chosen;
    }
    let temp = tempfile::tempdir().unwrap();
    let mut bench = bench(temp.path());
    println!(
        "seed {seed}: {} of {total} kill points; train {:?}, export {:?} uninterrupted",
        points.len(),
        bench.train_time,
        bench.export_time
    );
    let mut killed = 0;
    for (i, (action, when)) in points.iter().enumerate() {
        bench.news += 1;
        let new_dir = bench.root.join(format!("new-{}", bench.news));
        let runs_before = run_ids(&bench.project);
        let Some(moment) = kill(&bench, *action, when, &new_dir) else {
            println!("{i}: {action:?} {when:?} ended before the kill");
            recover(&bench, *action, &new_dir, &runs_before);
            continue;
        };
        println!("{i}: {action:?} killed {moment}");
        killed += 1;
        assert_whole_after_kill(&bench.project);
        if new_dir.join("project.ron").exists() {
            assert_whole_after_kill(&new_dir);
        }
        recover(&bench, *action, &new_dir, &runs_before);
    }
    println!("{killed} kills, every project loaded and every run completed");
    assert!(
        killed * 2 >= points.len(),
        "most points must kill: {killed}"
    );
}
