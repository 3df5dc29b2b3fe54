//! Damaged run folders in every view, driven through AccessKit with egui_kittest: beside one
//! sound run, four copies of it each lose or cut one file (history, config, checkpoints,
//! status). The Training tab, the Inspector, Embeddings and Compare each show a warning
//! naming the file for each of them, the sound runs stay usable (the Inspector loads one),
//! and the unreadable run can be moved to the trash. Bounded frame loops, no timing checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::Path;

use egui_kittest::kittest::{NodeT, Queryable};
use gui::{App, wait_for};
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::{TrainConfig, WeightsSpec};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Keeps the first half of a file.
fn cut(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

fn shows(app: &App, text: &str) -> bool {
    app.query_all_by_label_contains(text).count() > 0
}

/// What each damaged copy must be reported with, in every view.
const EXPECTED: [(&str, &str); 4] = [
    ("run-002: ", "history.jsonl holds 0 of the 1 epochs"),
    ("run-003 cannot be read: ", "config.ron"),
    ("run-004: ", "no checkpoint in"),
    ("run-005: ", "status.json"),
];

fn assert_problems_shown(app: &App, view: &str) {
    for (run, words) in EXPECTED {
        let found = app
            .query_all_by_label_contains(run)
            // A label's text is its AccessKit value.
            .any(|node| {
                let node = node.accesskit_node();
                [node.label(), node.value()]
                    .into_iter()
                    .flatten()
                    .any(|text| text.contains(words))
            });
        assert!(found, "{view}: no warning \"{run}…{words}…\"");
    }
}

#[test]
fn every_view_names_the_damage_of_each_run_and_keeps_the_rest_usable() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_data(data.path());
    let project = Project {
        name: "Damaged".into(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "resnet18".into(),
        input_size_px: 32,
        ..Project::default()
    };
    let dir = create_project(projects.path(), &project).unwrap();
    let config = TrainConfig {
        weights: WeightsSpec::Random,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    gui::train_headless(&dir, config);
    let runs = dir.join("runs");
    for id in ["run-002", "run-003", "run-004", "run-005"] {
        copy_dir(&runs.join("run-001"), &runs.join(id));
    }
    std::fs::remove_file(runs.join("run-002/history.jsonl")).unwrap();
    cut(&runs.join("run-003/config.ron"));
    std::fs::remove_dir_all(runs.join("run-004/checkpoints")).unwrap();
    cut(&runs.join("run-005/status.json"));

    let mut app = gui::open_app(projects.path(), None);
    let listed = dir.clone();
    app.get_by_label("Training").click();
    wait_for(&mut app, "the run list", 60, move |app| {
        app.runs().ready(&listed).is_some()
    });
    app.run_steps(3);
    assert_problems_shown(&app, "Training");
    assert_eq!(app.state().runs().ready(&dir).unwrap().len(), 4);
    for id in ["run-001", "run-002", "run-004", "run-005"] {
        assert!(shows(&app, &format!("Delete {id}…")), "Training lists {id}");
    }

    // The Inspector picks the newest readable run (its status is cut, its checkpoint is
    // sound) and loads it.
    app.get_by_label("Inspector").click();
    let project_dir = dir.clone();
    wait_for(&mut app, "the inspection of run-005", 300, move |app| {
        app.inspect()
            .data
            .inspection(&project_dir, "run-005")
            .is_some()
    });
    app.run_steps(3);
    assert_problems_shown(&app, "Inspector");
    assert!(shows(&app, "Image 1 of "), "the Inspector shows images");

    for view in ["Embeddings", "Compare"] {
        app.get_by_label(view).click();
        app.run_steps(4);
        assert_problems_shown(&app, view);
    }
    assert!(shows(&app, "Compare run-001"));

    // The unreadable run goes to the trash from the Training tab; its warning goes with it.
    app.get_by_label("Training").click();
    app.run_steps(3);
    app.get_by_label("Delete run-003…").click();
    app.run_steps(2);
    app.get_by_label("Move run-003 to trash").click();
    let listed = dir.clone();
    wait_for(&mut app, "run-003 to leave the list", 60, move |app| {
        app.runs().damaged(&listed).is_empty() && app.runs().ready(&listed).is_some()
    });
    app.run_steps(3);
    assert!(!shows(&app, "run-003 cannot be read"));
    assert!(dir.join(".trash/runs/run-003").is_dir());
}
