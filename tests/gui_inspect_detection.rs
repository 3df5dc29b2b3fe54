//! The Inspector on a detection run, driven with egui_kittest: a generated COCO folder of
//! shapes becomes a project (its task detected from the layout), a run is trained in the
//! Training tab for one epoch, the Inspector shows the run's boxes, and moving the
//! score-threshold slider changes how many boxes are drawn, at once (no new job).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;
#[path = "common/shapes_coco.rs"]
mod shapes_coco;

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project, detect_task};
use transfer_workbench::runtime::training::LiveStatus;
use transfer_workbench::train::{Strategy, TrainConfig, WeightsSpec};

const RUN: &str = "run-001";

#[test]
fn detection_run_shows_boxes_and_the_threshold_slider_redraws_them() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    shapes_coco::coco_folder(data.path(), 30);
    assert_eq!(detect_task(data.path()), TaskKind::Detection);
    let project = Project {
        name: "Shapes".to_owned(),
        task: TaskKind::Detection,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "mobilenet_v2".to_owned(),
        input_size_px: 64,
        ..Project::default()
    };
    let dir = create_project(projects.path(), &project).unwrap();
    let template = TrainConfig {
        backbone: "mobilenet_v2".into(),
        weights: WeightsSpec::Pretrained,
        task: TaskKind::Detection,
        input_size_px: 64,
        strategy: Strategy::FineTune,
        lr: 3e-3,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let mut app = gui::open_app(projects.path(), Some(template));
    app.get_by_label("Training").click();
    app.run_steps(2);
    app.get_by_label("Start training").click();
    gui::wait_for(&mut app, "the run to finish", 600, |app| {
        let finished = app
            .training()
            .live
            .as_ref()
            .is_some_and(|live| matches!(live.status, LiveStatus::Finished(_)));
        finished && !app.training().busy()
    });
    app.get_by_label("Inspector").click();
    let project_dir = dir.clone();
    gui::wait_for(&mut app, "the detection inspection", 300, move |app| {
        app.inspect()
            .data
            .det
            .inspection(&project_dir, RUN)
            .is_some()
    });
    app.run_steps(4);
    let run = app
        .state()
        .inspect()
        .data
        .det
        .inspection(&dir, RUN)
        .unwrap()
        .clone();
    assert_eq!(run.classes, shapes_coco::CLASSES);
    assert!(!run.images.is_empty());
    // Every image's annotated boxes are there; the run's metrics are COCO's 12.
    assert!(run.images.iter().any(|i| !i.truth.is_empty()));
    let ap = run.coco.stats[0];
    let ap = if ap < 0.0 {
        "n/a".to_owned()
    } else {
        format!("{ap:.3}")
    };
    for label in ["AP@[.5:.95]", "AR@100", ap.as_str()] {
        assert!(
            app.query_all_by_label(label).count() >= 1,
            "no {label} shown"
        );
    }

    // A low threshold draws the image's detections; the slider raises it and fewer remain.
    let index = app.state().inspect().inspector.shown().unwrap();
    let image = &run.images[index];
    app.state_mut()
        .inspect_mut()
        .inspector
        .detection_mut()
        .threshold = 0.01;
    app.run_steps(3);
    let low = app.state().inspect().inspector.detection().drawn();
    let expected_low = image.found.iter().filter(|f| f.score >= 0.01).count();
    assert_eq!(low, expected_low, "boxes drawn at 0.01");
    assert!(low > 0, "the run finds something at 0.01");
    let jobs_before = app.state().inspect().data.det.runs.len();
    let slider = app.get_by_role(Role::Slider);
    slider.click();
    app.run_steps(3);
    let threshold = app.state().inspect().inspector.detection().threshold;
    assert!(
        threshold > 0.3,
        "the click moved the threshold to {threshold}"
    );
    let high = app.state().inspect().inspector.detection().drawn();
    let expected_high = image.found.iter().filter(|f| f.score >= threshold).count();
    assert_eq!(high, expected_high, "boxes drawn at {threshold}");
    assert!(high < low, "{high} boxes at {threshold}, {low} at 0.01");
    assert_eq!(app.state().inspect().data.det.runs.len(), jobs_before);

    // The grid shows every validation image with its F1 and counts; a click opens one.
    app.get_by_label("Grid").click();
    app.run_steps(3);
    let cells: Vec<String> = app
        .query_all_by_label_contains(" missed")
        .filter(|n| n.accesskit_node().role() == Role::Button)
        .filter_map(|n| n.accesskit_node().label())
        .collect();
    assert_eq!(cells.len(), run.images.len(), "{cells:?}");
    app.get_by_label(&cells[0]).click();
    app.run_steps(3);
    let opened = app.state().inspect().inspector.shown().unwrap();
    assert!(cells[0].starts_with(&format!("{}: F1 ", run.images[opened].id)));
}
