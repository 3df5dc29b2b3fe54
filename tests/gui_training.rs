//! The Training tab and the export dialog, driven through AccessKit with egui_kittest on a
//! generated two-class folder (brightness decides the class): start a run and watch its
//! curves and progress arrive, run a second one to the end, see both in the run list with
//! their stored history, export one and read "Verification passed". Training runs on the
//! app's worker; the test steps frames until each state is reached (bounded loops, not
//! timing checks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use gui::{App, wait_for};
use std::path::{Path, PathBuf};

use egui_kittest::kittest::Queryable;
use transfer_workbench::app::WorkbenchApp;
use transfer_workbench::project::{DataLocation, Project, create_project};
use transfer_workbench::runtime::Loading;
use transfer_workbench::runtime::training::{LiveStatus, RunState};
use transfer_workbench::train::{TrainConfig, WeightsSpec};

/// [`wait_for`], then a few frames for the views to catch up.
fn settle(harness: &mut App, what: &str, timeout_secs: u64, done: impl Fn(&WorkbenchApp) -> bool) {
    wait_for(harness, what, timeout_secs, done);
    harness.run_steps(3);
}

fn live_status(app: &WorkbenchApp) -> Option<LiveStatus> {
    app.training().live.as_ref().map(|l| l.status.clone())
}

fn finished(app: &WorkbenchApp) -> bool {
    matches!(
        live_status(app),
        Some(LiveStatus::Finished(_) | LiveStatus::Failed(_))
    ) && !app.training().busy()
}

fn runs(app: &WorkbenchApp, dir: &Path) -> Vec<(String, RunState)> {
    app.runs().ready(dir).map_or_else(Vec::new, |runs| {
        runs.iter()
            .map(|r| (r.id.clone(), r.status.clone()))
            .collect()
    })
}

fn open_training_tab(projects: &Path) -> (App, PathBuf) {
    let template = TrainConfig {
        weights: WeightsSpec::Random,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    gui::open_training_tab(projects, template)
}

#[test]
fn train_twice_see_the_runs_and_export_one() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_project(projects.path(), data.path(), "resnet18", None);
    let (mut harness, dir) = open_training_tab(projects.path());
    harness.get_by_label("No runs yet.");
    harness.get_by_label_contains("No shipped pretrained weights");

    // First run: the curves and the progress label appear while it trains or once it ends.
    harness.get_by_label("Start training").click();
    settle(&mut harness, "the first loss point", 300, |app| {
        app.training()
            .live
            .as_ref()
            .is_some_and(|l| !l.curves.step_loss.is_empty())
            || finished(app)
    });
    harness.get_by_label_contains("epoch 1/1");
    settle(&mut harness, "the first run to end", 300, finished);
    let live = harness.state().training().live.as_ref().unwrap();
    assert_eq!(
        live.status,
        LiveStatus::Finished("completed".into()),
        "{:?}",
        live.log
    );
    assert!(!live.curves.step_loss.is_empty());
    assert_eq!(live.curves.val_loss.len(), 1);
    assert!(live.curves.metrics.contains_key("accuracy"));
    assert_eq!(live.run_id.as_deref(), Some("run-001"));

    // Second run (the compare view needs two), started with the keyboard shortcut.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    settle(&mut harness, "the second run to end", 300, |app| {
        finished(app)
            && app
                .training()
                .live
                .as_ref()
                .and_then(|l| l.run_id.as_deref())
                == Some("run-002")
    });
    let listed = dir.clone();
    settle(&mut harness, "both runs in the list", 60, move |app| {
        runs(app, &listed)
            == vec![
                ("run-001".to_owned(), RunState::Finished),
                ("run-002".to_owned(), RunState::Finished),
            ]
    });
    assert_eq!(harness.query_all_by_label_contains("val_loss ").count(), 2);

    // Selecting a run shows its stored history (read on a worker).
    harness.get_by_label("run-001").click();
    settle(&mut harness, "the stored history", 60, |app| {
        matches!(
            &app.training().history,
            Some((_, id, transfer_workbench::runtime::training::HistoryState::Ready(curves)))
                if id == "run-001" && curves.val_loss.len() == 1
        )
    });
    harness.get_by_label("Stored history of run-001");

    // Export the first run through the dialog.
    harness.get_by_label("Export run-001…").click();
    harness.run_steps(6);
    harness.get_by_label("Export").click();
    settle(&mut harness, "the export", 300, |app| {
        app.training()
            .export
            .job
            .as_ref()
            .is_some_and(|job| !job.is_running())
    });
    let report = match harness.state().training().export.job.clone() {
        Some(Loading::Ready(report)) => report,
        other => panic!("the export failed: {other:?}"),
    };
    assert!(report.metadata.verification.passed);
    assert!(report.model_path.is_file());
    assert_eq!(report.model_path, dir.join("runs/run-001/export/model.pt"));
    harness.get_by_label_contains("Verification passed");
    harness.get_by_label_contains("model.pt");
}

#[test]
fn a_failing_run_says_why() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    // A single image cannot make both a training and a validation split.
    std::fs::create_dir_all(data.path().join("only")).unwrap();
    image::RgbImage::new(16, 16)
        .save(data.path().join("only/a.png"))
        .unwrap();
    let project = Project {
        name: "One class".into(),
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "resnet18".into(),
        input_size_px: 32,
        ..Project::default()
    };
    create_project(projects.path(), &project).unwrap();
    let (mut harness, _) = open_training_tab(projects.path());
    harness.get_by_label("Start training").click();
    settle(&mut harness, "the failure", 120, finished);
    let status = live_status(harness.state()).unwrap();
    let LiveStatus::Failed(reason) = status else {
        panic!("expected a failure, got {status:?}");
    };
    harness.get_by_label(&format!("Training failed: {reason}"));
}
