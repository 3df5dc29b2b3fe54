//! The Study tab over the real app in egui_kittest, on a generated two-class folder: a
//! study of two backbones starts from the tab, both leaderboard rows fill in as the runs
//! finish, the Pareto plot has two points, and a click on one opens its run in the
//! Inspector; the top bar's job indicator shows the study from another tab and leads back to
//! it. The test steps frames until each state is reached (bounded loops).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use egui_kittest::kittest::{NodeT, Queryable};
use gui::{open_app, wait_for};
use transfer_workbench::app::{CentralTab, WorkbenchApp};
use transfer_workbench::project::TrainingSettings;
use transfer_workbench::runtime::inspect::Loading;
use transfer_workbench::train::TrainConfig;

fn board_rows(app: &WorkbenchApp) -> Vec<(String, Option<f64>, Option<String>)> {
    match &app.study().board {
        Some((_, _, Loading::Ready(board))) => board
            .rows
            .iter()
            .map(|r| (r.key.clone(), r.metric, r.run_id.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_study_of_two_backbones_fills_its_rows_and_its_plot_opens_a_run() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let training = TrainingSettings {
        config: TrainConfig {
            epochs: 2,
            batch_size: 4,
            threads: Some(1),
            ..TrainConfig::default()
        },
        augment: "default".into(),
    };
    gui::make_brightness_project(projects.path(), data.path(), "mobilenet_v2", Some(training));
    let mut app = open_app(projects.path(), None);
    app.get_by_label("Study").click();
    wait_for(&mut app, "the installed backbones", 30, |app| {
        app.study().installed.is_some()
    });
    app.run_steps(3);

    // mobilenet_v2 (the project's backbone) is ticked; add efficientnet_lite0, no control.
    app.get_by_label("efficientnet_lite0").click();
    app.get_by_label("From-scratch control").click();
    app.run_steps(2);
    app.get_by_label("Start study (2 runs)").click();
    app.run_steps(2);
    // The top bar shows the job, whatever the tab; a click there comes back to the study.
    assert!(
        app.state().study().is_running(),
        "the study runs for more than two frames"
    );
    app.get_by_label("Overview").click();
    app.run_steps(2);
    assert_eq!(app.state().tab(), CentralTab::Overview);
    app.get_by_label_contains("Job: study").click();
    app.run_steps(2);
    assert_eq!(app.state().tab(), CentralTab::Study);
    wait_for(&mut app, "the study to end", 600, |app| {
        !app.study().is_running()
            && !app.training().busy()
            && board_rows(app).len() == 2
            && board_rows(app)
                .iter()
                .all(|(_, metric, _)| metric.is_some())
    });
    app.run_steps(2);
    assert_eq!(
        app.query_all_by_label_contains("Job: ").count(),
        0,
        "no job indicator once the study ended"
    );
    let rows = board_rows(app.state());
    let keys: Vec<&str> = rows.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"mobilenet_v2-probe") && keys.contains(&"efficientnet_lite0-probe"),
        "{keys:?}"
    );
    app.run_steps(3);
    // The mismatch of each pretrained backbone, in words under a header that opens.
    app.get_by_label("How far the images are from the pretraining data")
        .click();
    app.run_steps(3);
    for backbone in ["mobilenet_v2: ", "efficientnet_lite0: "] {
        assert!(
            app.query_all_by_label_contains(backbone).any(|node| {
                let node = node.accesskit_node();
                [node.label(), node.value()]
                    .into_iter()
                    .flatten()
                    .any(|text| text.contains("the images are"))
            }),
            "no mismatch sentence for {backbone}"
        );
    }
    let points = app.state().study_view().pareto_points().to_vec();
    assert_eq!(points.len(), 2, "{points:?}");

    // A click on a point opens its run in the Inspector.
    let (run, at) = points[1].clone();
    app.event(egui::Event::PointerMoved(at));
    app.step();
    for pressed in [true, false] {
        app.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::default(),
        });
        app.step();
    }
    wait_for(&mut app, "the Inspector", 30, |app| {
        app.tab() == CentralTab::Inspector
    });
    assert_eq!(app.state().inspect().run.as_deref(), Some(run.as_str()));
}
