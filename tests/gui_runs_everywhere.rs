//! One list of runs for every view, driven through AccessKit with egui_kittest: with the
//! Inspector, Embeddings and Compare tabs opened before the project has any run (each says
//! so), a run trained in the Training tab appears in all of them once it ends, and shows as
//! running in the run list while it trains; deleted from the Training tab, it leaves them all
//! for the project's trash. The test steps frames until each state is
//! reached (bounded loops, not timing checks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::Path;

use egui_kittest::kittest::Queryable;
use gui::{App, open_app, wait_for};
use transfer_workbench::app::{ProjectsState, WorkbenchApp};
use transfer_workbench::runtime::training::{LiveStatus, RunState};
use transfer_workbench::train::{TrainConfig, WeightsSpec};

fn run_states(app: &WorkbenchApp, dir: &Path) -> Vec<(String, RunState)> {
    app.runs().ready(dir).map_or_else(Vec::new, |runs| {
        runs.iter()
            .map(|r| (r.id.clone(), r.status.clone()))
            .collect()
    })
}

fn open_tab(app: &mut App, tab: &str) {
    app.get_by_label(tab).click();
    app.run_steps(4);
}

#[test]
fn a_finished_run_appears_in_every_view_opened_before() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_project(projects.path(), data.path(), "resnet18", None);
    let template = TrainConfig {
        weights: WeightsSpec::Random,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let mut app = open_app(projects.path(), Some(template));
    let dir = match app.state().projects() {
        ProjectsState::Ready(rows) => rows[0].dir.clone(),
        _ => unreachable!(),
    };

    // Every inspection tab, opened before any run exists, says there is none.
    for tab in ["Compare", "Inspector", "Embeddings"] {
        open_tab(&mut app, tab);
        let listed = dir.clone();
        wait_for(&mut app, "the run list", 60, move |app| {
            app.runs().ready(&listed).is_some()
        });
        app.run_steps(2);
        app.get_by_label("This project has no runs yet: train one first.");
    }

    // Train one run; while it trains the list shows it running.
    open_tab(&mut app, "Training");
    app.get_by_label("No runs yet.");
    app.get_by_label("Start training").click();
    let listed = dir.clone();
    wait_for(&mut app, "the run to show as running", 300, move |app| {
        let states = run_states(app, &listed);
        states == vec![("run-001".to_owned(), RunState::Running)]
            || states == vec![("run-001".to_owned(), RunState::Finished)]
    });
    let listed = dir.clone();
    wait_for(&mut app, "the run to end and be listed", 300, move |app| {
        let live_done = app
            .training()
            .live
            .as_ref()
            .is_some_and(|l| matches!(l.status, LiveStatus::Finished(_)));
        live_done
            && !app.training().busy()
            && run_states(app, &listed) == vec![("run-001".to_owned(), RunState::Finished)]
    });
    app.run_steps(3);

    // Compare lists it (and ticks it); the Inspector and Embeddings pick it.
    open_tab(&mut app, "Compare");
    assert_eq!(
        app.query_all_by_label("This project has no runs yet: train one first.")
            .count(),
        0
    );
    app.get_by_label("Compare run-001");
    let chosen: Vec<&str> = app.state().inspect().compare.chosen().collect();
    assert_eq!(chosen, vec!["run-001"]);
    for tab in ["Inspector", "Embeddings"] {
        open_tab(&mut app, tab);
        assert_eq!(
            app.query_all_by_label("This project has no runs yet: train one first.")
                .count(),
            0,
            "{tab}"
        );
        assert!(
            app.query_all_by_label_contains("run-001").count() > 0,
            "{tab} does not offer run-001"
        );
    }

    // Delete the run from the Training tab: it leaves every list and goes to the trash.
    open_tab(&mut app, "Training");
    app.get_by_label("Delete run-001…").click();
    app.run_steps(2);
    app.get_by_label("Move run-001 to trash").click();
    let listed = dir.clone();
    wait_for(&mut app, "the run to leave the list", 60, move |app| {
        app.runs()
            .ready(&listed)
            .is_some_and(|runs| runs.is_empty())
    });
    app.run_steps(3);
    assert!(!dir.join("runs/run-001").exists());
    assert!(dir.join(".trash/runs/run-001/config.ron").is_file());
    app.get_by_label("No runs yet.");
    for tab in ["Compare", "Inspector", "Embeddings"] {
        open_tab(&mut app, tab);
        app.get_by_label("This project has no runs yet: train one first.");
    }
}
