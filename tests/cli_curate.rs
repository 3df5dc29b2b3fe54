//! Curation through the binary: relabel, exclude, undo and restore images of a project, then
//! train: the new run reads the data through the overrides and freezes them in its config,
//! the split keeps its assignments, older runs keep their labels, and nothing of the
//! image folder is written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;
#[path = "common/folder_listing.rs"]
mod folder_listing;

use std::collections::BTreeMap;
use std::path::Path;

use folder_listing::listing;

use common::{make_colour_data, workbench_ok as workbench};

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// The ids `split.ron` assigns to `part` (`Train`, `Val`, `Test`).
fn assigned(project: &Path, part: &str) -> Vec<String> {
    let text = std::fs::read_to_string(project.join("split.ron")).unwrap();
    text.lines()
        .filter(|l| {
            l.trim_end()
                .trim_end_matches(',')
                .ends_with(&format!(": {part}"))
        })
        .map(|l| l.trim().split('"').nth(1).unwrap().to_owned())
        .collect()
}

/// Train then validation ids of a run's `split.json`.
fn run_ids(project: &Path, run: &str) -> (Vec<String>, Vec<String>) {
    let frozen: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.join("runs").join(run).join("split.json")).unwrap(),
    )
    .unwrap();
    let ids = |part: &str| -> Vec<String> {
        frozen[part]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    (ids("train"), ids("validation"))
}

/// The true class name of each validation sample of `run`, by id.
fn truths(project: &Path, run: &str) -> BTreeMap<String, String> {
    let out = workbench(&[
        "inspect",
        path_str(project),
        "--run",
        run,
        "--top-losses",
        "1000",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let classes = report["classes"].as_array().unwrap().clone();
    report["top_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let label = e["label"].as_u64().unwrap() as usize;
            (
                e["id"].as_str().unwrap().to_owned(),
                classes[label].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn train(project: &Path) -> std::process::Output {
    workbench(&[
        "train",
        path_str(project),
        "--epochs",
        "1",
        "--weights",
        "random",
        "--threads",
        "1",
        "--batch-size",
        "4",
    ])
}

#[test]
fn overrides_reach_the_next_run_and_never_touch_the_images() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    make_colour_data(&data, 10);
    let before = listing(&data);
    let project = temp.path().join("project");
    workbench(&[
        "new",
        path_str(&project),
        "--data",
        path_str(&data),
        "--backbone",
        "resnet18",
        "--input-size",
        "32",
    ]);
    train(&project);
    let (train_1, val_1) = run_ids(&project, "run-001");
    let red_val = val_1
        .iter()
        .find(|id| id.starts_with("red/"))
        .unwrap()
        .clone();
    let train_gone = train_1[0].clone();
    let val_gone = val_1.iter().find(|id| **id != red_val).unwrap().clone();
    let assignments = |p: &Path| ["Train", "Val", "Test"].map(|part| assigned(p, part));
    let split_before = assignments(&project);

    let p = path_str(&project);
    let relabel = workbench(&["curate", p, "relabel", "--to", "blue", &red_val]);
    assert!(
        String::from_utf8_lossy(&relabel.stdout).contains("relabelled"),
        "{relabel:?}"
    );
    // A path inside the data folder is taken as its id.
    let by_path = data.join(&train_gone);
    workbench(&["curate", p, "exclude", path_str(&by_path)]);
    workbench(&["curate", p, "exclude", &val_gone]);
    workbench(&["curate", p, "exclude", &red_val]);
    let undo = workbench(&["curate", p, "undo"]);
    assert!(
        String::from_utf8_lossy(&undo.stdout).contains(&format!("undid: left out {red_val}")),
        "{undo:?}"
    );
    // Refusals name what is wrong and change nothing.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(["curate", p, "relabel", "--to", "green", &red_val])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains("no class “green”; its classes: blue, red"),
        "{stderr}"
    );
    let list = workbench(&["curate", p, "list"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.starts_with("1 image relabelled, 2 images left out"),
        "{list}"
    );
    assert!(list.contains(&format!("{red_val} → blue")), "{list}");

    let second = train(&project);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("the project's curation: 1 image relabelled, 2 images left out"),
        "{stderr}"
    );
    // The run froze the overrides it read its data through.
    let config = std::fs::read_to_string(project.join("runs/run-002/config.ron")).unwrap();
    assert!(config.contains("overrides:"), "{config}");
    assert!(
        config.contains(&format!("\"{red_val}\": \"blue\"")),
        "{config}"
    );
    assert!(config.contains(&format!("\"{val_gone}\"")), "{config}");
    let (train_2, val_2) = run_ids(&project, "run-002");
    assert!(!train_2.contains(&train_gone) && train_1.contains(&train_gone));
    assert!(!val_2.contains(&val_gone) && val_2.contains(&red_val));
    assert_eq!(train_2.len(), train_1.len() - 1);
    assert_eq!(val_2.len(), val_1.len() - 1);
    // The split keeps its frozen assignments, excluded images included.
    assert_eq!(assignments(&project), split_before);
    // The new run sees the new label; the old run keeps the one it trained with.
    assert_eq!(truths(&project, "run-002")[&red_val], "blue");
    assert_eq!(truths(&project, "run-001")[&red_val], "red");

    // Restoring every override returns the data set as it was.
    workbench(&["curate", p, "restore", &red_val, &train_gone, &val_gone]);
    let list = workbench(&["curate", p, "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).starts_with("no overrides"));
    assert_eq!(listing(&data), before, "the image folder was not written");
}
