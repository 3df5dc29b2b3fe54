//! The Inspector, Embeddings and Compare tabs, driven through AccessKit with egui_kittest on
//! a tiny generated project (dark against light images) with two runs trained headlessly in
//! the set-up. Workers report through the app; the test steps frames until they do (bounded
//! loops, no timing checks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use transfer_workbench::app::WorkbenchApp;
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::{Strategy, TrainConfig, WeightsSpec};

/// Ten dark and ten light 36 px images, with a little texture so no two are equal.
fn make_data(root: &Path) {
    for (class, level) in [("dark", 50u8), ("light", 200u8)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for n in 0..10u32 {
            image::RgbImage::from_fn(36, 36, |x, y| {
                let v = level.wrapping_add(((x * 3 + y * 5 + n * 7) % 29) as u8);
                image::Rgb([v, v, v])
            })
            .save(root.join(class).join(format!("{class}_{n}.png")))
            .unwrap();
        }
    }
}

fn train_run(project: &Path, strategy: Strategy, lr: f64) {
    let config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy,
        lr,
        epochs: 2,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    gui::train_headless(project, config);
}

fn settle(harness: &mut Harness<'static, WorkbenchApp>, done: impl Fn(&WorkbenchApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "the app never settled");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(4);
}

/// Whether the inspector shows the image with this id (exactly one image label is shown).
fn shows(harness: &Harness<'static, WorkbenchApp>, id: &str) -> bool {
    assert_eq!(harness.query_all_by_label_contains("Image: ").count(), 1);
    harness.query_by_label(&format!("Image: {id}")).is_some()
}

#[test]
fn inspector_embeddings_and_compare_show_the_runs() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    make_data(data.path());
    let project = Project {
        name: "Shades".to_owned(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "resnet18".to_owned(),
        ..Project::default()
    };
    let dir: PathBuf = create_project(projects.path(), &project).unwrap();
    train_run(&dir, Strategy::FineTune, 1e-3);
    train_run(&dir, Strategy::LinearProbe, 1e-2);

    let mut harness = gui::open_app(projects.path(), None);

    // Inspector: the newest run's predictions load; arrows and Next step through them.
    harness.get_by_label("Inspector").click();
    let project_dir = dir.clone();
    settle(&mut harness, move |app| {
        app.inspect()
            .data
            .inspection(&project_dir, "run-002")
            .is_some()
    });
    let predictions = harness
        .state()
        .inspect()
        .data
        .inspection(&dir, "run-002")
        .unwrap()
        .predictions
        .clone();
    let n = predictions.len();
    assert!(n >= 2, "the validation split has {n} images");
    harness.get_by_label(&format!("Image 1 of {n}"));
    assert!(shows(&harness, &predictions.ids[0]));
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(3);
    assert!(shows(&harness, &predictions.ids[1]));
    assert!(!shows(&harness, &predictions.ids[0]));
    harness.get_by_label(&format!("Image 2 of {n}"));
    harness.get_by_label("Previous").click();
    harness.run_steps(3);
    assert!(shows(&harness, &predictions.ids[0]));

    // A confusion cell filters the images to that cell.
    let (truth, predicted) = (predictions.labels[0], predictions.predicted[0]);
    let in_cell = (0..n)
        .filter(|&i| predictions.labels[i] == truth && predictions.predicted[i] == predicted)
        .count();
    let cell = format!(
        "Cell {} to {}: {in_cell}",
        predictions.classes[truth], predictions.classes[predicted]
    );
    harness.get_by_label(&cell).click();
    harness.run_steps(3);
    harness.get_by_label(&format!("Image 1 of {in_cell}"));
    assert!(shows(&harness, &predictions.ids[0]));

    // Embeddings: the PCA map has one point per validation image.
    harness.get_by_label("Embeddings").click();
    harness.run_steps(4);
    assert_eq!(harness.state().inspect().embeddings.shown_points(), n);

    // Compare: every run is ticked at first; both are in the metrics table and their
    // predictions load. Unticking one takes its row away.
    harness.get_by_label("Compare").click();
    let project_dir = dir.clone();
    settle(&mut harness, move |app| {
        app.inspect()
            .data
            .inspection(&project_dir, "run-001")
            .is_some()
    });
    for run in ["run-001", "run-002"] {
        assert!(
            harness.query_all_by_label(run).count() >= 1,
            "{run} in the table"
        );
    }
    harness.get_by_label("finetune");
    harness.get_by_label("probe");
    harness.get_by_label_contains("Disagreements with run-001: ");
    harness.get_by_label("Compare run-001").click();
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("run-001").count(), 0);
    assert!(
        harness.query_by_label("finetune").is_none(),
        "run-001 fine-tuned"
    );
    harness.get_by_label("probe");
    assert!(harness.query_all_by_label("run-002").count() >= 1);
}
