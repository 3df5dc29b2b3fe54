//! Compare on two detection runs, driven with egui_kittest: a generated COCO folder of
//! shapes becomes a project, two runs of different length are trained headlessly, and the
//! Compare tab shows each run's COCO metrics, AP per class and the images where the runs
//! disagree; moving the score threshold ranks them again without a new job.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;
#[path = "common/shapes_coco.rs"]
mod shapes_coco;

use std::path::Path;
use std::time::Instant;

use egui_kittest::kittest::Queryable;
use transfer_workbench::inspect::det_compare::rank_disagreements;
use transfer_workbench::inspect::detection::DetImage;
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::{Strategy, TrainConfig, WeightsSpec};

fn train_run(project: &Path, epochs: usize) {
    let config = TrainConfig {
        backbone: "mobilenet_v2".into(),
        weights: WeightsSpec::Pretrained,
        task: TaskKind::Detection,
        input_size_px: 64,
        strategy: Strategy::FineTune,
        lr: 3e-3,
        epochs,
        batch_size: 8,
        threads: Some(1),
        seed: 3,
        ..TrainConfig::default()
    };
    gui::train_headless(project, config);
}

/// A metric as the tables show it.
fn cell(value: f64) -> String {
    if value < 0.0 {
        "n/a".to_owned()
    } else {
        format!("{value:.3}")
    }
}

#[test]
fn compare_shows_ap_per_run_and_class_and_the_images_where_runs_disagree() {
    let start = Instant::now();
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    shapes_coco::coco_folder(data.path(), 60);
    let project = Project {
        name: "Shapes".to_owned(),
        task: TaskKind::Detection,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "mobilenet_v2".to_owned(),
        input_size_px: 64,
        ..Project::default()
    };
    let dir = create_project(projects.path(), &project).unwrap();
    train_run(&dir, 1);
    train_run(&dir, 20);
    println!("trained in {:.1} s", start.elapsed().as_secs_f64());

    let mut app = gui::open_app(projects.path(), None);
    app.get_by_label("Compare").click();
    let project_dir = dir.clone();
    gui::wait_for(&mut app, "both detection inspections", 300, move |app| {
        let det = &app.inspect().data.det;
        ["run-001", "run-002"]
            .iter()
            .all(|run| det.inspection(&project_dir, run).is_some())
    });
    app.run_steps(4);
    println!("inspected in {:.1} s", start.elapsed().as_secs_f64());
    let det = &app.state().inspect().data.det;
    let runs = [
        det.inspection(&dir, "run-001").unwrap().clone(),
        det.inspection(&dir, "run-002").unwrap().clone(),
    ];
    let jobs = det.runs.len();
    assert_eq!(jobs, 2, "one inspection per run");

    // The run table: each run's COCO numbers, as `eval` computes them.
    for head in ["AP@[.5:.95]", "AP@.5", "AP@.75", "AR@100"] {
        app.get_by_label(head);
    }
    for run in &runs {
        let top = run
            .images
            .iter()
            .filter_map(|i| i.found.first())
            .map(|f| f.score);
        println!(
            "AP {:?}; per class {:?}; {} images, best score {:?}",
            run.coco.stats,
            run.coco.per_class_ap,
            run.images.len(),
            top.fold(0.0f32, f32::max)
        );
        for stat in [0, 1, 2, 8] {
            let text = cell(run.coco.stats[stat]);
            assert!(
                app.query_all_by_label(&text).count() >= 1,
                "{text} (stat {stat}) not shown"
            );
        }
    }
    // The class table: one row per class, a column per run.
    for run in ["run-001", "run-002"] {
        app.get_by_label(&format!("{run} AP@[.5:.95]"));
    }
    for (c, class) in runs[1].classes.iter().enumerate() {
        app.get_by_label(class);
        for run in &runs {
            let text = run.coco.per_class_ap[c].map_or("n/a".to_owned(), cell);
            assert!(
                app.query_all_by_label(&text).count() >= 1,
                "{class}: {text}"
            );
        }
    }

    // The gallery: the ranking of the runs' own images, the top one named and scored.
    let images: Vec<&[DetImage]> = runs.iter().map(|r| r.images.as_slice()).collect();
    let ranked = rank_disagreements(&images, 0.5, 0.3);
    println!("{} disagreements at 0.3", ranked.len());
    assert!(
        ranked.len() >= 2,
        "the runs disagree on {} image(s)",
        ranked.len()
    );
    assert_eq!(
        app.state().inspect().compare.detection().found(),
        ranked.len()
    );
    app.get_by_label(&format!(
        "Images where the runs disagree with run-001: {}",
        ranked.len()
    ));
    let top = &ranked[0];
    let id = &runs[0].images[top.first].id;
    assert!(
        app.query_all_by_label(id).count() >= 1,
        "{id} in the gallery"
    );
    app.get_by_label(&format!("Opened: {id}"));
    let (a, b) = top.scores;
    let text = format!(
        "run-002: F1 {:.2}, TP {}, FP {}, missed {}",
        b.f1, b.true_positives, b.false_positives, b.missed
    );
    assert!(app.query_all_by_label(&text).count() >= 1, "{text}");
    assert!((a.f1 - b.f1).abs() == top.gap);
    // The longer run is the better one, and the tables say so.
    assert!(runs[1].coco.stats[0] > runs[0].coco.stats[0]);

    // A click on another tile opens that image larger.
    let second = &runs[0].images[ranked[1].first].id;
    app.get_by_label(&format!("Open {second} of run-002"))
        .click();
    app.run_steps(3);
    app.get_by_label(&format!("Opened: {second}"));
    assert!(app.query_by_label(&format!("Opened: {id}")).is_none());

    // A lower threshold ranks the same inspections again, without a new job.
    app.state_mut()
        .inspect_mut()
        .compare
        .detection_mut()
        .threshold = 0.05;
    app.run_steps(3);
    let low = rank_disagreements(&images, 0.5, 0.05);
    assert_eq!(app.state().inspect().compare.detection().found(), low.len());
    app.get_by_label(&format!(
        "Images where the runs disagree with run-001: {}",
        low.len()
    ));
    assert_eq!(app.state().inspect().data.det.runs.len(), jobs);
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
}
