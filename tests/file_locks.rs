//! Two processes on one project, through the real binary: an edit of `project.ron` while
//! another process holds the project is refused naming the holder, a lock left by a killed
//! process is taken over, four `train` processes started at once get four distinct runs,
//! and a run being trained cannot be trained by a second process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod fault_support;

use fault_support::{assert_intact, bin, class_project, events, ok, run_to_pause, s};
use transfer_workbench::file_lock::{PROJECT_LOCK_FILE, recorded_holder};
use transfer_workbench::project::load_project;

#[test]
fn an_edit_while_another_process_holds_the_project_is_refused_naming_it_then_taken_over() {
    let temp = tempfile::tempdir().unwrap();
    let project = class_project(temp.path(), 2);
    let dir = s(&project);
    // The rename stops inside its save, holding the project's lock.
    let holder = run_to_pause(bin(&["project", "rename", dir, "Renamed"]), "written:1")
        .unwrap_or_else(|o| panic!("no pause: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(holder.path.ends_with("project.ron"), "{:?}", holder.path);
    let holder_pid = holder.child.id();

    let mut second = bin(&["project", "settings", dir, "--epochs", "3"]);
    second.env("TRANSFER_WORKBENCH_LOCK_WAIT_MS", "300");
    let refused = second.output().unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains(&format!("pid {holder_pid}")), "{message}");
    assert!(message.contains("project rename"), "{message}");
    assert!(message.contains("project.ron"), "{message}");

    // Killed while holding it: the lock file stays, naming the dead process.
    holder.kill();
    let lock = project.join(PROJECT_LOCK_FILE);
    assert_eq!(recorded_holder(&lock).map(|h| h.pid), Some(holder_pid));
    let mut again = bin(&["project", "settings", dir, "--epochs", "3"]);
    again.env("TRANSFER_WORKBENCH_LOCK_WAIT_MS", "300");
    ok(again);
    let saved = load_project(&project).unwrap();
    assert_eq!(saved.training.map(|t| t.config.epochs), Some(3));
    assert_eq!(saved.name, "project", "the killed rename never landed");
    assert!(!lock.exists(), "a released lock leaves no file");
    assert_intact(&project);
}

#[test]
fn four_train_processes_started_at_once_get_four_distinct_runs() {
    let temp = tempfile::tempdir().unwrap();
    let project = class_project(temp.path(), 8);
    let dir = s(&project);
    let args = [
        "train",
        dir,
        "--epochs",
        "1",
        "--weights",
        "random",
        "--threads",
        "1",
        "--batch-size",
        "8",
        "--json",
    ];
    let children: Vec<_> = (0..4).map(|_| bin(&args).spawn().unwrap()).collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let events = events(&output);
            assert_eq!(events.last().unwrap()["event"], "finished");
            events[0]["run_id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["run-001", "run-002", "run-003", "run-004"]);
    // Each run froze the one split all four share.
    let splits: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let path = project.join("runs").join(id).join("split.json");
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        })
        .collect();
    assert!(splits.iter().all(|split| split == &splits[0]));
    assert_intact(&project);
}

#[test]
fn a_run_being_trained_is_refused_to_a_second_process_until_its_holder_dies() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("project.ron"),
        "(name: \"tiny\", backbone: \"resnet18\", input_size_px: 32)",
    )
    .unwrap();
    let dir = s(temp.path());
    let args = [
        "train",
        dir,
        "--synthetic",
        "--weights",
        "random",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--json",
    ];
    // Writes: config.ron and split.json of the new run, then its status once it holds the
    // run's lock.
    let trainer = run_to_pause(bin(&args), "renamed:3")
        .unwrap_or_else(|o| panic!("no pause: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(trainer.path.ends_with("status.json"), "{:?}", trainer.path);
    let trainer_pid = trainer.child.id();

    let resume = ["train", dir, "--synthetic", "--resume", "run-001", "--json"];
    let refused = bin(&resume).output().unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains(&format!("pid {trainer_pid}")), "{message}");
    assert!(message.contains("training run-001"), "{message}");
    assert!(message.contains("run.lock"), "{message}");

    // Killed before its first checkpoint: the resume takes the lock over and starts again.
    trainer.kill();
    let resumed = ok(bin(&resume));
    let events = events(&resumed);
    assert_eq!(events[0]["first_epoch"], 0);
    assert_eq!(events.last().unwrap()["epochs_done"], 1);
    assert_intact(temp.path());
}
