//! The Training tab's job controls and saved settings, driven through AccessKit with
//! egui_kittest over the real app on a generated two-class folder (brightness decides the
//! class): the LR finder's suggestion goes into the settings, settings edited in the tab
//! are saved in the project and come back after a restart, Pause holds a run and Continue
//! lets it finish, Stop ends a run as stopped and Resume takes it to its last epoch. The
//! test steps frames until each state is reached (bounded loops on the app's state).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use gui::{App, open_training_tab, wait_for};
use std::time::Duration;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use transfer_workbench::app::WorkbenchApp;
use transfer_workbench::project::load_project;
use transfer_workbench::runtime::training::{
    LiveRun, LiveStatus, LrFindState, RunState, RunSummary,
};
use transfer_workbench::train::{OptimizerKind, TrainConfig, WeightsSpec};

/// libtorch's random generator is process-global: the tests of this binary that train take
/// turns to stay repeatable.
static TRAINING: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TRAINING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A projects folder holding one 32 px resnet18 project over a fresh data folder.
fn make_project() -> (tempfile::TempDir, tempfile::TempDir) {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_project(projects.path(), data.path(), "resnet18", None);
    (projects, data)
}

fn live(app: &WorkbenchApp) -> &LiveRun {
    app.training().live.as_ref().expect("a job of this session")
}

fn status(app: &WorkbenchApp) -> Option<LiveStatus> {
    app.training().live.as_ref().map(|l| l.status.clone())
}

fn ended(app: &WorkbenchApp) -> bool {
    matches!(
        status(app),
        Some(LiveStatus::Finished(_) | LiveStatus::Failed(_))
    ) && !app.training().busy()
}

fn run_row(app: &WorkbenchApp, dir: &Path, id: &str) -> Option<RunSummary> {
    app.runs()
        .ready(dir)
        .and_then(|runs| runs.iter().find(|r| r.id == id).cloned())
}

/// Many small steps: batch 2 over the ~19 training images, one thread.
fn small_steps(epochs: usize) -> TrainConfig {
    TrainConfig {
        weights: WeightsSpec::Random,
        epochs,
        batch_size: 2,
        threads: Some(1),
        ..TrainConfig::default()
    }
}

#[test]
fn lr_suggestion_and_edited_settings_are_saved_and_survive_a_restart() {
    let _turn = turn();
    let (projects, _data) = make_project();
    let (mut app, dir) = open_training_tab(projects.path(), small_steps(1));
    assert_eq!(
        load_project(&dir).unwrap().training,
        None,
        "opening saves nothing"
    );

    app.get_by_label("Find learning rate").click();
    wait_for(&mut app, "the LR finder", 300, |app| {
        matches!(
            &app.training().lr_find,
            Some((_, LrFindState::Ready(_) | LrFindState::Failed(_)))
        )
    });
    app.run_steps(2);
    let Some((_, state)) = &app.state().training().lr_find else {
        unreachable!()
    };
    let result = state.ready().cloned().expect("the LR finder failed");
    assert!(!result.losses.is_empty());
    let suggestion = result
        .suggested_lr
        .expect("a suggestion on a learnable task");
    app.get_by_label(&format!("Suggested learning rate: {suggestion:.1e}"));
    assert_ne!(
        app.state().training_draft(&dir).unwrap().config.lr,
        suggestion
    );
    app.get_by_label("Use suggestion").click();
    app.run_steps(2);
    assert_eq!(
        app.state().training_draft(&dir).unwrap().config.lr,
        suggestion
    );

    // Two edits through the widgets: early stopping on, and SGD for AdamW.
    app.get_by_label("patience").click();
    app.run_steps(2);
    app.get_by_role_and_label(Role::ComboBox, "Optimiser")
        .click();
    app.run_steps(3);
    app.get_by_label("SGD").click();
    app.run_steps(3);
    let draft = app.state().training_draft(&dir).unwrap().clone();
    assert!(draft.config.early_stopping.is_some());
    assert!(matches!(draft.config.optimizer, OptimizerKind::Sgd { .. }));

    // The edits reach the project file (saved on a worker).
    let file_dir = dir.clone();
    let wanted = draft.to_saved();
    wait_for(&mut app, "the saved settings", 60, move |_| {
        load_project(&file_dir).unwrap().training.as_ref() == Some(&wanted)
    });
    drop(app);

    // A new app over the same folder, whose defaults differ, shows the saved settings.
    let other_defaults = TrainConfig {
        lr: 0.05,
        ..small_steps(2)
    };
    let (app, dir_again) = open_training_tab(projects.path(), other_defaults);
    assert_eq!(dir_again, dir);
    let restored = app.state().training_draft(&dir).unwrap();
    assert_eq!(restored, &draft);
    assert_eq!(restored.config.lr, suggestion);
    assert_eq!(restored.config.epochs, 1);
    let optimiser = app.get_by_role_and_label(Role::ComboBox, "Optimiser");
    assert_eq!(optimiser.value().as_deref(), Some("SGD"));
}

/// Pauses the running job from its first step: clicks Pause and waits until it holds.
fn pause(app: &mut App) -> usize {
    app.get_by_label("Pause").click();
    wait_for(app, "the pause", 60, |app| {
        matches!(status(app), Some(LiveStatus::Paused)) || ended(app)
    });
    assert_eq!(
        status(app.state()),
        Some(LiveStatus::Paused),
        "the run ended before the pause took effect: give it more steps"
    );
    app.run_steps(2);
    live(app.state()).steps_done
}

#[test]
fn pause_holds_the_run_and_continue_lets_it_finish() {
    let _turn = turn();
    let (projects, _data) = make_project();
    let epochs = 3;
    let (mut app, dir) = open_training_tab(projects.path(), small_steps(epochs));
    app.get_by_label("Start training").click();
    wait_for(&mut app, "the first step", 300, |app| {
        app.training()
            .live
            .as_ref()
            .is_some_and(|l| l.steps_done > 0)
            || ended(app)
    });
    let held_at = pause(&mut app);
    let total = epochs * live(app.state()).steps_per_epoch;
    assert!(held_at > 0 && held_at < total, "{held_at} of {total}");
    app.get_by_label("run-001: paused");

    // Frames go by (each yielding to the worker), and the run stays where it was.
    for _ in 0..40 {
        app.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(status(app.state()), Some(LiveStatus::Paused));
    assert_eq!(live(app.state()).steps_done, held_at);
    assert_eq!(live(app.state()).curves.step_loss.len(), held_at);

    app.get_by_label("Continue").click();
    wait_for(&mut app, "steps after the pause", 120, move |app| {
        live(app).steps_done > held_at
    });
    wait_for(&mut app, "the end of the run", 300, ended);
    let run = live(app.state());
    assert_eq!(
        run.status,
        LiveStatus::Finished("completed".into()),
        "{:?}",
        run.log
    );
    assert_eq!(run.steps_done, total);
    assert_eq!(run.curves.val_loss.len(), epochs);
    assert!(run.log.iter().any(|l| l == "paused"));
    assert!(run.log.iter().any(|l| l == "resumed"));
    let listed = dir.clone();
    wait_for(&mut app, "the finished run in the list", 60, move |app| {
        run_row(app, &listed, "run-001").is_some_and(|r| r.status == RunState::Finished)
    });
    assert_eq!(
        run_row(app.state(), &dir, "run-001").unwrap().epochs,
        (epochs, epochs)
    );
}

#[test]
fn stop_mid_run_then_resume_it_to_the_last_epoch() {
    let _turn = turn();
    let (projects, _data) = make_project();
    let epochs = 3;
    let (mut app, dir) = open_training_tab(projects.path(), small_steps(epochs));
    app.get_by_label("Start training").click();
    wait_for(&mut app, "the first epoch", 300, |app| {
        app.training()
            .live
            .as_ref()
            .is_some_and(|l| !l.curves.val_loss.is_empty())
            || ended(app)
    });
    // Held first, so the stop lands mid-run whatever the machine's speed.
    let held_at = pause(&mut app);
    let epochs_done = live(app.state()).curves.val_loss.len();
    assert!((1..epochs).contains(&epochs_done), "{epochs_done}");

    app.get_by_label("Stop").click();
    wait_for(&mut app, "the stop", 120, ended);
    app.run_steps(2);
    let run = live(app.state());
    assert_eq!(
        run.status,
        LiveStatus::Finished("stopped".into()),
        "{:?}",
        run.log
    );
    // The charts keep what the run drew.
    assert_eq!(run.curves.step_loss.len(), held_at);
    assert_eq!(run.curves.val_loss.len(), epochs_done);
    app.get_by_label("run-001: stopped");
    app.get_by_label(&format!("Loss per step ({held_at} steps)"));

    let listed = dir.clone();
    wait_for(&mut app, "the stopped run in the list", 60, move |app| {
        run_row(app, &listed, "run-001").is_some_and(|r| r.status == RunState::Stopped)
    });
    let row = run_row(app.state(), &dir, "run-001").unwrap();
    assert_eq!(row.epochs, (epochs_done, epochs));
    assert!(row.resumable, "a stopped run keeps its last checkpoint");
    assert!(
        dir.join("runs/run-001/checkpoints/last.safetensors")
            .is_file()
    );
    app.get_by_label("stopped");

    app.get_by_label("Resume run-001").click();
    wait_for(&mut app, "the resumed run to end", 300, |app| {
        ended(app) && live(app).log.iter().any(|l| l.starts_with("resuming"))
    });
    let run = live(app.state());
    assert_eq!(
        run.status,
        LiveStatus::Finished("completed".into()),
        "{:?}",
        run.log
    );
    let started = format!("run-001: started at epoch {} of {epochs}", epochs_done + 1);
    assert!(
        run.log.iter().any(|l| l.starts_with(&started)),
        "{:?}",
        run.log
    );
    assert_eq!(run.curves.val_loss.len(), epochs - epochs_done);
    assert_eq!(run.steps_done, epochs * run.steps_per_epoch);
    let listed = dir.clone();
    wait_for(
        &mut app,
        "the resumed run finished in the list",
        60,
        move |app| run_row(app, &listed, "run-001").is_some_and(|r| r.status == RunState::Finished),
    );
    let row = run_row(app.state(), &dir, "run-001").unwrap();
    assert_eq!(row.epochs, (epochs, epochs));
    assert!(!row.resumable);
}
