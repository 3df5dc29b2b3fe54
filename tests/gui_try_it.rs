//! The Try-it tab, driven with egui_kittest: a run trained headlessly on the brightness
//! project predicts a folder of new images typed into the tab (outside the project's data,
//! with one broken file). Each image gets a card with the class and probabilities the core
//! gives for it, plus its Grad-CAM layer; the broken file gets its error. The project's data
//! folder is left exactly as it was. Frames are stepped until each state is reached
//! (bounded loops, not timing checks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/folder_listing.rs"]
mod folder_listing;
#[path = "common/gui.rs"]
mod gui;

use std::path::PathBuf;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use folder_listing::listing;
use tch::Device;
use transfer_workbench::app::ProjectsState;
use transfer_workbench::inspect::try_images::{Tried, predict_files};
use transfer_workbench::train::{CheckpointChoice, TrainConfig, TrainedModel, WeightsSpec};

#[test]
fn try_it_predicts_new_images_without_touching_the_project() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_project(projects.path(), data.path(), "mobilenet_v2", None);
    let project = std::fs::read_dir(projects.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("project.ron").is_file())
        .unwrap();
    let config = TrainConfig {
        backbone: "mobilenet_v2".into(),
        weights: WeightsSpec::Pretrained,
        input_size_px: 32,
        epochs: 2,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    gui::train_headless(&project, config);
    let data_before = listing(data.path());

    // New images from elsewhere: one dark, one light, one broken.
    let outside = tempfile::tempdir().unwrap();
    gui::make_brightness_data(outside.path());
    let tried_dir = outside.path().join("new");
    std::fs::create_dir_all(&tried_dir).unwrap();
    for (class, n) in [("dark", 3), ("light", 5)] {
        std::fs::copy(
            outside.path().join(format!("{class}/{class}_{n:02}.png")),
            tried_dir.join(format!("new {class}.png")),
        )
        .unwrap();
    }
    std::fs::write(
        tried_dir.join("broken.png"),
        b"\x89PNG\r\n\x1a\nnot an image",
    )
    .unwrap();

    let mut app = gui::open_app(projects.path(), None);
    let dir = match app.state().projects() {
        ProjectsState::Ready(rows) => rows[0].dir.clone(),
        _ => unreachable!(),
    };
    app.get_by_label("Try it").click();
    let listed = dir.clone();
    gui::wait_for(&mut app, "the run list", 60, move |app| {
        app.runs().ready(&listed).is_some()
    });
    app.run_steps(2);
    app.get_by_role_and_label(Role::TextInput, "Path").focus();
    app.run_steps(1);
    app.get_by_role_and_label(Role::TextInput, "Path")
        .type_text(&tried_dir.display().to_string());
    app.run_steps(1);
    app.get_by_label("Predict").click();
    app.run_steps(1);
    let key = (dir.clone(), "run-001".to_owned());
    let waiting = key.clone();
    gui::wait_for(&mut app, "the predictions", 240, move |app| {
        app.try_runtime().settled()
            && app
                .try_runtime()
                .cards
                .get(&waiting)
                .is_some_and(|c| c.len() == 3)
    });
    app.run_steps(3);

    // What the core says about the same files, shown card by card.
    let mut model =
        TrainedModel::load(&dir, "run-001", CheckpointChoice::BestOrLast, Device::Cpu).unwrap();
    let files: Vec<PathBuf> = ["broken.png", "new dark.png", "new light.png"]
        .iter()
        .map(|n| tried_dir.join(n))
        .collect();
    let expected = predict_files(&dir, &mut model, &files, 0.3).unwrap();
    let cards = &app.state().try_runtime().cards[&key];
    for file in &expected {
        let card = cards.iter().find(|c| c.path == file.path).unwrap();
        match (&file.result, &card.result) {
            (Err(reason), Err(shown)) => {
                assert_eq!(reason, shown);
                assert!(shown.contains("broken.png"), "{shown}");
                app.get_by_label(shown.as_str());
            }
            (Ok(Tried::Classes(p)), Ok((outcome, layer))) => {
                let ranked = Tried::Classes(p.clone()).ranked(&model.classes);
                let (best, probability) = &ranked[0];
                assert_eq!(&outcome.ranked[0].0, best);
                assert!((outcome.ranked[0].1 - probability).abs() < 1e-4);
                assert!(
                    layer.is_some(),
                    "a Grad-CAM layer for {}",
                    file.path.display()
                );
                let bar = format!("{best}: {:.1}%", probability * 100.0);
                assert!(
                    app.query_all_by_label(&bar).next().is_some(),
                    "no bar '{bar}'"
                );
            }
            (expected, shown) => panic!(
                "{}: the core gave ok = {}, the card ok = {}",
                file.path.display(),
                expected.is_ok(),
                shown.is_ok()
            ),
        }
    }
    app.get_by_label("new dark.png");
    app.get_by_label("new light.png");
    // Only read: the data folder is as it was, and nothing was copied into the project.
    assert_eq!(listing(data.path()), data_before);
    assert!(
        listing(&dir).keys().all(|p| !p.contains("new ")),
        "a tried image was copied into the project"
    );
}
