//! The Inspector on a segmentation run, driven through AccessKit with egui_kittest: a tiny
//! generated folder (bright disks on a dark background, 0/255 masks) and a run trained
//! headlessly in the set-up. The Dice the Inspector shows for an image is checked against the
//! overlay engine's `dice()` computed here from the model's own prediction; stepping with the
//! arrow key and the Next button changes the image and its Dice; the layer toggles change the
//! view's state and the overlay textures it asks for.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind};
use transfer_workbench::app::WorkbenchApp;
use transfer_workbench::inspect::overlay::{ClassMask, dice};
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::runtime::inspect_seg::SegLayerKey;
use transfer_workbench::train::{
    CheckpointChoice, Control, JobSpec, ProjectSource, TrainConfig, TrainedModel, VecSink,
    WeightsSpec, load_eval_images, train,
};

const RUN: &str = "run-001";

/// 16 noisy 40 px images with one or two bright disks and their 0/255 masks.
fn make_data(root: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(root.join("masks")).unwrap();
    for i in 0..16 {
        let disks: Vec<(f32, f32, f32)> = (0..rng.gen_range(1..=2))
            .map(|_| {
                (
                    rng.gen_range(9.0..31.0),
                    rng.gen_range(9.0..31.0),
                    rng.gen_range(4.0..8.0),
                )
            })
            .collect();
        let inside = |x: u32, y: u32| {
            disks
                .iter()
                .any(|(cx, cy, r)| (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r)
        };
        let image = RgbImage::from_fn(40, 40, |x, y| {
            let base = if inside(x, y) { 190.0 } else { 60.0 };
            let v = (base + rng.gen_range(-25.0f32..25.0)).clamp(0.0, 255.0) as u8;
            Rgb([v, v, v])
        });
        let mask = GrayImage::from_fn(40, 40, |x, y| Luma([if inside(x, y) { 255 } else { 0 }]));
        image
            .save(root.join(format!("images/disk {i}.png")))
            .unwrap();
        mask.save(root.join(format!("masks/disk {i}.png"))).unwrap();
    }
}

fn train_run(project: &Path) {
    tch::manual_seed(0);
    let mut config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        lr: 3e-3,
        epochs: 2,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let mut source = ProjectSource::open_for_training(project, &mut config).unwrap();
    assert!((config.task == TaskKind::Segmentation));
    let spec = JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project, config)
    };
    train(
        &spec,
        &mut source,
        &mut VecSink::default(),
        &mut Control::detached(),
    )
    .unwrap();
}

/// The foreground Dice of `image` computed here: the run's prediction at input size (argmax),
/// brought to the mask's size by nearest sampling, against the 0/255 mask file.
fn expected_dice(model: &mut TrainedModel, project: &Path, image: &Path, mask: &Path) -> f64 {
    let loaded = load_eval_images(&[image.to_owned()], project, &model.config).unwrap();
    assert!(loaded.failed.is_empty());
    let predicted = model
        .probabilities(&loaded.images)
        .unwrap()
        .argmax(1, false)
        .to_kind(Kind::Uint8)
        .to_device(Device::Cpu);
    let (h, w) = (predicted.size()[1] as u32, predicted.size()[2] as u32);
    let values = Vec::<u8>::try_from(predicted.flatten(0, -1)).unwrap();
    let truth = image::open(mask).unwrap().to_luma8();
    let (tw, th) = truth.dimensions();
    let truth = ClassMask::new(tw, th, truth.pixels().map(|p| p.0[0] / 255).collect()).unwrap();
    let predicted = ClassMask::new(w, h, values).unwrap().resized(tw, th);
    dice(&predicted, &truth, 2)
        .unwrap()
        .foreground
        .unwrap_or(f64::NAN)
}

fn settle(harness: &mut Harness<'static, WorkbenchApp>, done: impl Fn(&WorkbenchApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "the app never settled");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(4);
}

/// The Dice the inspector shows (its one "Dice: " heading).
fn shown_dice(harness: &Harness<'static, WorkbenchApp>) -> f64 {
    let labels: Vec<String> = harness
        .query_all_by_label_contains("Dice: ")
        // A label's text is its AccessKit value.
        .filter_map(|node| node.accesskit_node().value())
        .filter(|label| label.starts_with("Dice: "))
        .collect();
    assert_eq!(labels.len(), 1, "one Dice heading: {labels:?}");
    labels[0]["Dice: ".len()..].parse().unwrap()
}

/// The validation image the inspector shows, after checking its id label is the only one.
fn shown_image(harness: &Harness<'static, WorkbenchApp>, ids: &[String]) -> usize {
    assert_eq!(harness.query_all_by_label_contains("Image: ").count(), 1);
    let index = harness.state().inspect().inspector.shown().unwrap();
    harness.get_by_label(&format!("Image: {}", ids[index]));
    index
}

#[test]
fn segmentation_run_shows_overlays_and_per_image_dice() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    make_data(data.path());
    let project = Project {
        name: "Disks".to_owned(),
        task: TaskKind::Segmentation,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "resnet18".to_owned(),
        input_size_px: 32,
        ..Project::default()
    };
    let dir: PathBuf = create_project(projects.path(), &project).unwrap();
    train_run(&dir);

    let mut harness = gui::open_app(projects.path(), None);
    harness.get_by_label("Inspector").click();
    let project_dir = dir.clone();
    settle(&mut harness, move |app| {
        let seg = &app.inspect().data.seg;
        seg.inspection(&project_dir, RUN).is_some() && seg.idle()
    });
    let run = harness
        .state()
        .inspect()
        .data
        .seg
        .inspection(&dir, RUN)
        .unwrap()
        .clone();
    let n = run.images.len();
    assert!(n >= 2, "the validation split has {n} images");
    let ids: Vec<String> = run.images.iter().map(|i| i.id.clone()).collect();
    assert_eq!(run.classes.len(), 2, "background and foreground");

    // The first image, its Dice as the overlay engine computes it from the model's output.
    let mut model = TrainedModel::load(&dir, RUN, CheckpointChoice::BestOrLast, Device::Cpu)
        .expect("the trained run");
    let expected: Vec<f64> = run
        .images
        .iter()
        .map(|image| {
            let mask = data
                .path()
                .join("masks")
                .join(image.path.file_name().unwrap());
            expected_dice(&mut model, &dir, &image.path, &mask)
        })
        .collect();
    println!("per-image Dice of the {n} validation images: {expected:?}");
    assert!(
        expected.iter().any(|&d| d > 0.0),
        "the run finds some foreground: {expected:?}"
    );
    harness.get_by_label(&format!("Image 1 of {n}"));
    assert_eq!(shown_image(&harness, &ids), 0);
    let first = shown_dice(&harness);
    assert!(
        (first - expected[0]).abs() <= 0.0015,
        "shown {first}, engine {}",
        expected[0]
    );
    let mean = expected.iter().sum::<f64>() / n as f64;
    harness.get_by_label(&format!("Mean Dice over {n} validation images: {mean:.3}"));

    // The arrow key and the Next button step to the following images and their Dice.
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(3);
    assert_eq!(shown_image(&harness, &ids), 1);
    harness.get_by_label(&format!("Image 2 of {n}"));
    let second = shown_dice(&harness);
    assert!((second - expected[1]).abs() <= 0.0015);
    if (expected[0] - expected[1]).abs() > 0.002 {
        assert_ne!(first, second, "the Dice label follows the image");
    }
    harness.key_press(egui::Key::ArrowLeft);
    harness.run_steps(3);
    assert_eq!(shown_image(&harness, &ids), 0);
    harness.get_by_label("Next").click();
    harness.run_steps(3);
    assert_eq!(shown_image(&harness, &ids), 1);

    // Ground truth over the filled prediction is drawn as outlines (the two share the class
    // colours): turning it on makes the outline layers of the shown image.
    let layers = harness.state().inspect().inspector.segmentation().layers();
    assert!(layers.prediction && !layers.ground_truth && !layers.outlines);
    let outline_key = SegLayerKey {
        run: (dir.clone(), RUN.to_owned()),
        index: 1,
        outline: true,
    };
    assert!(
        !harness
            .state()
            .inspect()
            .data
            .seg
            .layers
            .contains_key(&outline_key)
    );
    harness.get_by_label("Ground truth").click();
    let key = outline_key.clone();
    settle(&mut harness, move |app| {
        let seg = &app.inspect().data.seg;
        seg.idle() && seg.layers.get(&key).is_some_and(|l| l.ready().is_some())
    });

    // Difference and Outlines: the view's state changes (the outline layers exist already,
    // the filled ones were made for the images shown before).
    harness.get_by_label("Difference").click();
    harness.get_by_label("Outlines").click();
    harness.run_steps(3);
    let layers = harness.state().inspect().inspector.segmentation().layers();
    assert!(layers.prediction && layers.ground_truth && layers.difference && layers.outlines);
    let filled_key = SegLayerKey {
        outline: false,
        ..outline_key
    };
    let seg = &harness.state().inspect().data.seg;
    assert!(
        seg.layers
            .get(&filled_key)
            .is_some_and(|l| l.ready().is_some())
    );

    // Worst Dice first: the first image listed has the lowest Dice.
    harness
        .get_by_role_and_label(Role::ComboBox, "Order")
        .click();
    harness.run_steps(2);
    harness.get_by_label("Worst Dice first").click();
    harness.run_steps(3);
    let worst = shown_image(&harness, &ids);
    let lowest = expected.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        (expected[worst] - lowest).abs() < 1e-9,
        "{expected:?}: {worst}"
    );
    assert!((shown_dice(&harness) - lowest).abs() <= 0.0015);

    // The grid lists every image in the same order, each with its Dice; a click on the last
    // one opens it in the single view.
    harness.get_by_label("Grid").click();
    harness.run_steps(3);
    let cells: Vec<String> = harness
        .query_all_by_label_contains(": Dice ")
        .filter_map(|n| n.accesskit_node().label())
        .collect();
    assert_eq!(cells.len(), n, "{cells:?}");
    assert!(cells[0].starts_with(&format!("{}: Dice ", ids[worst])));
    harness.get_by_label(&cells[n - 1]).click();
    harness.run_steps(3);
    let last = shown_image(&harness, &ids);
    assert!(cells[n - 1].starts_with(&format!("{}: Dice ", ids[last])));
    harness.get_by_label(&format!("Image {n} of {n}"));

    // Bad input: a validation image broken after training is left out (the data scan finds
    // it) and the inspection says so; the other images are still inspected.
    drop(harness);
    std::fs::write(&run.images[0].path, b"not an image any more").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let again = transfer_workbench::inspect::segmentation::inspect_segmentation(
        &dir,
        RUN,
        &mut |_, _| {},
        &stop,
    )
    .unwrap()
    .unwrap();
    assert_eq!(again.images.len(), n - 1);
    assert_eq!(again.skipped.len(), 1, "{:?}", again.skipped);
    assert!(
        again.skipped[0].contains("1 file(s) of the data set could not be read"),
        "{}",
        again.skipped[0]
    );
    assert!(again.images.iter().all(|i| i.id != run.images[0].id));
}
