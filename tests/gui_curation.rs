//! Curation in the window, driven through AccessKit with egui_kittest on a generated
//! two-class folder: train a run, relabel an image and leave one out in the Inspector, undo
//! in the Dataset tab's corrections, leave one out from the Dataset tab's preview and one
//! with a right click in the Inspector's grid, train
//! again: the new run's frozen config holds the overrides and its split leaves the excluded
//! image out, and nothing of the image folder was written. Workers report through the
//! app; the test steps frames until each state is reached (bounded loops, no timing checks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/folder_listing.rs"]
mod folder_listing;
#[path = "common/gui.rs"]
mod gui;

use std::path::Path;

use folder_listing::listing;

use egui_kittest::kittest::Queryable;
use gui::{App, wait_for};
use transfer_workbench::app::{ProjectsState, WorkbenchApp};
use transfer_workbench::data::overrides::Overrides;
use transfer_workbench::runtime::training::LiveStatus;
use transfer_workbench::train::{TrainConfig, WeightsSpec};

fn settle(harness: &mut App, what: &str, done: impl Fn(&WorkbenchApp) -> bool) {
    wait_for(harness, what, 300, done);
    harness.run_steps(3);
}

/// The overrides of the project at `dir` as the app holds them.
fn overrides(app: &WorkbenchApp, dir: &Path) -> Overrides {
    match app.projects() {
        ProjectsState::Ready(rows) => rows
            .iter()
            .find(|r| r.dir == dir)
            .and_then(|r| r.project.as_ref().ok())
            .map(|open| open.project.dataset.curation.overrides())
            .unwrap_or_default(),
        _ => Overrides::default(),
    }
}

/// Whether run `id` finished training.
fn finished(app: &WorkbenchApp, id: &str) -> bool {
    app.training().live.as_ref().is_some_and(|l| {
        matches!(l.status, LiveStatus::Finished(_) | LiveStatus::Failed(_))
            && l.run_id.as_deref() == Some(id)
    }) && !app.training().busy()
}

#[test]
fn relabel_exclude_undo_then_train_with_the_overrides() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_project(projects.path(), data.path(), "resnet18", None);
    let before = listing(data.path());
    let template = TrainConfig {
        weights: WeightsSpec::Random,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let (mut app, dir) = gui::open_training_tab(projects.path(), template);
    app.get_by_label("Start training").click();
    settle(&mut app, "run-001", |app| finished(app, "run-001"));

    // Inspector: relabel the first image as the other class.
    app.get_by_label("Inspector").click();
    let shown = dir.clone();
    settle(&mut app, "the inspection", move |app| {
        app.inspect().data.inspection(&shown, "run-001").is_some()
    });
    let predictions = app
        .state()
        .inspect()
        .data
        .inspection(&dir, "run-001")
        .unwrap()
        .predictions
        .clone();
    let first = predictions.ids[0].clone();
    let other = predictions.classes[1 - predictions.labels[0]].clone();
    app.get_by_label("Relabel as…").click();
    app.run_steps(2);
    // The menu's entry (the class name is also a label of the probability bars).
    app.get_by_role_and_label(egui::accesskit::Role::Button, &other)
        .click();
    let (d, f, o) = (dir.clone(), first.clone(), other.clone());
    settle(&mut app, "the relabel", move |app| {
        overrides(app, &d).relabelled.get(&f) == Some(&o)
    });
    app.get_by_label(&format!("✏ Relabelled as {other} for the next run"));

    // The next image: leave it out, then undo that in the Dataset tab.
    app.key_press(egui::Key::ArrowRight);
    app.run_steps(3);
    let second = predictions.ids[1].clone();
    app.get_by_label("Leave out").click();
    let (d, s) = (dir.clone(), second.clone());
    settle(&mut app, "the exclusion", move |app| {
        overrides(app, &d).excluded.contains(&s)
    });
    app.get_by_label("Dataset").click();
    let scanned = dir.clone();
    settle(&mut app, "the data scan", move |app| {
        app.dataset_scan(&scanned)
            .is_some_and(|s| matches!(s.state, transfer_workbench::runtime::Loading::Ready(_)))
    });
    app.get_by_label_contains("Corrections: 1 image relabelled, 1 image left out");
    app.get_by_label(&format!("⟲ Undo: left out {second}"))
        .click();
    let d = dir.clone();
    settle(&mut app, "the undo", move |app| {
        overrides(app, &d).excluded.is_empty()
    });
    assert_eq!(overrides(app.state(), &dir).relabelled.len(), 1);

    // The Dataset tab's preview shows the first image of the folder: leave it out there.
    let excluded = "dark/dark_00.png".to_owned();
    app.get_by_label("Leave out").click();
    let (d, e) = (dir.clone(), excluded.clone());
    settle(&mut app, "the exclusion from the Dataset tab", move |app| {
        overrides(app, &d).excluded.contains(&e)
    });

    // The Inspector's grid: the relabelled image is marked; a right click leaves one out.
    app.get_by_label("Inspector").click();
    app.run_steps(3);
    app.get_by_label("Grid").click();
    app.run_steps(3);
    app.get_by_label_contains(&format!("{first}: predicted"));
    assert!(
        format!(
            "{:?}",
            app.get_by_label_contains(&format!("{first}: predicted"))
        )
        .contains(&format!("✏ ➡ {other}"))
    );
    let third = predictions.ids[2].clone();
    app.get_by_label_contains(&format!("{third}: predicted"))
        .click_secondary();
    app.run_steps(3);
    app.get_by_label("Leave out").click();
    let (d, t) = (dir.clone(), third.clone());
    settle(&mut app, "the exclusion from the grid", move |app| {
        overrides(app, &d).excluded.contains(&t)
    });
    assert!(
        format!(
            "{:?}",
            app.get_by_label_contains(&format!("{third}: predicted"))
        )
        .contains("🚫 left out")
    );

    // Train again: the run reads the data through the overrides and freezes them.
    app.get_by_label("Training").click();
    app.run_steps(3);
    app.get_by_label("Start training").click();
    settle(&mut app, "run-002", |app| finished(app, "run-002"));
    let config = std::fs::read_to_string(dir.join("runs/run-002/config.ron")).unwrap();
    assert!(
        config.contains(&format!("\"{first}\": \"{other}\"")),
        "{config}"
    );
    assert!(config.contains(&format!("\"{excluded}\"")), "{config}");
    assert!(config.contains(&format!("\"{third}\"")), "{config}");
    let old = std::fs::read_to_string(dir.join("runs/run-001/split.json")).unwrap();
    let new = std::fs::read_to_string(dir.join("runs/run-002/split.json")).unwrap();
    assert!(!new.contains(&excluded), "{new}");
    let in_old = old.contains(&excluded);
    let split = std::fs::read_to_string(dir.join("split.ron")).unwrap();
    assert!(
        split.contains(&excluded),
        "the split keeps the excluded image's assignment (it was in run-001's ids: {in_old})"
    );
    assert_eq!(
        listing(data.path()),
        before,
        "the image folder was not written"
    );
}
