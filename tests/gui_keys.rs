//! Arrow keys act on the area under the pointer, and a running job stays in reach from any
//! project: driven through AccessKit with egui_kittest over the real app on two generated
//! two-class projects, one with a run trained headlessly in the set-up. In the Inspector's
//! grid the arrows move the highlighted cell and leave the project alone; over the project
//! list Up/Down switch the project; while a training job runs in one project, the Training
//! tab of the other shows the job with a button that goes back to it. The test steps frames
//! until each state is reached (bounded loops on the app's state).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::{Path, PathBuf};

use egui::Key;
use egui_kittest::kittest::Queryable;
use gui::{App, wait_for};
use transfer_workbench::app::{ProjectsState, WorkbenchApp};
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::runtime::training::LiveStatus;
use transfer_workbench::train::{Strategy, TrainConfig, WeightsSpec};
use transfer_workbench::ui::inspector_nav::InspectorMode;

/// A 32 px resnet18 project named `name` over the two-class folder `data`.
fn make_project(projects: &Path, data: &Path, name: &str) -> PathBuf {
    let project = Project {
        name: name.into(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.to_owned()),
        backbone: "resnet18".into(),
        input_size_px: 32,
        ..Project::default()
    };
    create_project(projects, &project).unwrap()
}

fn train_once(dir: &Path) {
    let config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy: Strategy::FineTune,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    gui::train_headless(dir, config);
}

/// The project folders in the list's order.
fn listed(app: &WorkbenchApp) -> Vec<PathBuf> {
    match app.projects() {
        ProjectsState::Ready(rows) => rows.iter().map(|r| r.dir.clone()).collect(),
        _ => Vec::new(),
    }
}

fn selected(app: &App) -> PathBuf {
    app.state().selected_project().unwrap().to_owned()
}

fn status(app: &WorkbenchApp) -> Option<LiveStatus> {
    app.training().live.as_ref().map(|l| l.status.clone())
}

#[test]
fn arrows_follow_the_pointer_and_a_running_job_stays_in_reach() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_data(data.path());
    let alpha = make_project(projects.path(), data.path(), "Alpha");
    let beta = make_project(projects.path(), data.path(), "Beta");
    train_once(&alpha);
    // Many small steps, so a run started from the window is still going when paused.
    let template = TrainConfig {
        weights: WeightsSpec::Random,
        epochs: 3,
        batch_size: 2,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let mut app = gui::open_app(projects.path(), Some(template));
    let order = listed(app.state());
    assert_eq!(order.len(), 2);

    // Alpha's Inspector as a grid.
    app.get_by_label("Alpha").click();
    app.run_steps(2);
    assert_eq!(selected(&app), alpha);
    app.get_by_label("Inspector").click();
    let loaded = alpha.clone();
    wait_for(&mut app, "the run's predictions", 120, move |app| {
        app.inspect().data.inspection(&loaded, "run-001").is_some()
    });
    app.run_steps(3);
    let count = app
        .state()
        .inspect()
        .data
        .inspection(&alpha, "run-001")
        .unwrap()
        .predictions
        .len();
    assert!(count >= 3, "{count} validation images");
    app.get_by_label("Grid").click();
    app.run_steps(3);
    let view = |app: &App| {
        let v = &app.state().inspect().inspector;
        (v.mode(), v.position())
    };
    assert_eq!(view(&app), (InspectorMode::Grid, 0));
    let columns = app.state().inspect().inspector.grid_columns();

    // With the pointer on the grid, the arrows move the highlighted cell, not the project.
    app.query_all_by_label_contains(": predicted ")
        .next()
        .expect("a grid cell")
        .hover();
    app.run_steps(1);
    app.key_press(Key::ArrowRight);
    app.run_steps(2);
    assert_eq!(view(&app), (InspectorMode::Grid, 1));
    app.key_press(Key::ArrowDown);
    app.run_steps(2);
    let below = (1 + columns).min(count - 1);
    assert_eq!(view(&app), (InspectorMode::Grid, below));
    app.key_press(Key::ArrowUp);
    app.run_steps(2);
    assert_eq!(view(&app).1, below.saturating_sub(columns));
    assert_eq!(selected(&app), alpha, "the arrows left the project alone");
    // Enter opens the highlighted cell in the single view.
    let highlighted = view(&app).1;
    app.key_press(Key::Enter);
    app.run_steps(2);
    assert_eq!(view(&app), (InspectorMode::Single, highlighted));
    assert!(app.state().inspect().inspector.shown().is_some());

    // Over the project list, Up/Down switch the project.
    let at = order.iter().position(|d| *d == alpha).unwrap();
    let (step, other) = if at == 0 {
        (Key::ArrowDown, order[1].clone())
    } else {
        (Key::ArrowUp, order[0].clone())
    };
    assert_eq!(other, beta);
    app.get_by_label("Alpha").hover();
    app.run_steps(1);
    app.key_press(step);
    app.run_steps(3);
    assert_eq!(selected(&app), beta);
    let back = if step == Key::ArrowDown {
        Key::ArrowUp
    } else {
        Key::ArrowDown
    };
    app.key_press(back);
    app.run_steps(3);
    assert_eq!(selected(&app), alpha);

    // A job training Alpha (held by Pause so it stays running) is shown on Beta's
    // Training tab, with a button that goes back to Alpha.
    app.get_by_label("Training").click();
    let runs_listed = alpha.clone();
    wait_for(&mut app, "Alpha's runs", 60, move |app| {
        app.runs().ready(&runs_listed).is_some()
    });
    app.run_steps(2);
    app.get_by_label("Start training").click();
    wait_for(&mut app, "the first step", 300, |app| {
        app.training()
            .live
            .as_ref()
            .is_some_and(|l| l.steps_done > 0)
    });
    app.get_by_label("Pause").click();
    wait_for(&mut app, "the pause", 120, |app| {
        matches!(status(app), Some(LiveStatus::Paused))
    });
    app.run_steps(2);
    app.get_by_label("Beta").click();
    app.run_steps(3);
    assert_eq!(selected(&app), beta);
    app.get_by_label("A job runs in project 'Alpha'");
    app.get_by_label_contains("Now: training run-002 paused");
    app.get_by_label_contains(" of 3, step ");
    app.get_by_label("Show it").click();
    app.run_steps(3);
    assert_eq!(selected(&app), alpha);
    assert!(
        app.query_by_label("Show it").is_none(),
        "the job's own project"
    );
    app.get_by_label("run-002: paused");

    // Stopped, the job ends and no panel is left.
    app.get_by_label("Stop").click();
    wait_for(&mut app, "the stop", 120, |app| !app.training().busy());
    app.get_by_label("Beta").click();
    app.run_steps(3);
    assert!(app.query_by_label("Show it").is_none());
}
