//! The Dataset tab on a detection project, driven with egui_kittest: a generated COCO folder
//! of shapes becomes a project; the tab charts boxes per class (each class named with its
//! count, as counted here from the annotation file) and the images without boxes, draws the
//! selected image's boxes over the preview and the tiles' boxes over the grid, hides them on
//! request, and the class filter keeps the images holding a box of that class.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;
#[path = "common/shapes_coco.rs"]
mod shapes_coco;

use std::collections::{BTreeMap, BTreeSet};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use serde_json::Value;
use transfer_workbench::app::ProjectsState;
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::runtime::Loading;
use transfer_workbench::runtime::dataset::DatasetScan;

/// Generated images (every fifth without objects) besides the corrupt one.
const IMAGES: usize = 12;

#[test]
fn dataset_tab_charts_boxes_per_class_and_draws_the_boxes() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    shapes_coco::coco_folder(data.path(), IMAGES);
    let project = Project {
        name: "Shapes".to_owned(),
        task: TaskKind::Detection,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "mobilenet_v2".to_owned(),
        input_size_px: 64,
        ..Project::default()
    };
    create_project(projects.path(), &project).unwrap();

    // Boxes and images per category, and the images without any, from the file itself.
    let coco: Value = serde_json::from_str(
        &std::fs::read_to_string(data.path().join("annotations.json")).unwrap(),
    )
    .unwrap();
    let mut boxes = BTreeMap::<u64, usize>::new();
    let mut images = BTreeMap::<u64, BTreeSet<u64>>::new();
    for a in coco["annotations"].as_array().unwrap() {
        let category = a["category_id"].as_u64().unwrap();
        *boxes.entry(category).or_default() += 1;
        images
            .entry(category)
            .or_default()
            .insert(a["image_id"].as_u64().unwrap());
    }
    let annotated: BTreeSet<u64> = images.values().flatten().copied().collect();
    let without_boxes = IMAGES - annotated.len();
    assert_eq!(without_boxes, IMAGES / 5);

    let mut app = gui::open_app(projects.path(), None);
    let dir = match app.state().projects() {
        ProjectsState::Ready(rows) => rows[0].dir.clone(),
        _ => unreachable!(),
    };
    app.get_by_label("Dataset").click();
    let scanned = dir.clone();
    gui::wait_for(&mut app, "the scan and thumbnails", 120, move |app| {
        app.dataset_settled(&scanned)
    });
    app.run_steps(3);
    let rendered = dir.clone();
    gui::wait_for(&mut app, "the preview", 60, move |app| {
        app.dataset_settled(&rendered)
    });
    app.run_steps(2);

    let Some(DatasetScan {
        state: Loading::Ready(scan),
        ..
    }) = app.state().dataset_scan(&dir)
    else {
        panic!("the scan failed")
    };
    assert_eq!(scan.index.items.len(), IMAGES);
    let summary = scan.report.boxes.clone().expect("a box summary");
    let first = scan.index.items[0].clone();
    assert_eq!(summary.images_without_boxes, without_boxes);

    // The chart's class list: every class with its count, and the images without boxes.
    app.get_by_label_contains("Boxes per class (COCO");
    for (i, name) in shapes_coco::CLASSES.iter().enumerate() {
        let category = i as u64 + 1;
        let count = boxes.get(&category).copied().unwrap_or(0);
        let holding = images.get(&category).map_or(0, BTreeSet::len);
        assert_eq!(summary.classes[i].boxes, count, "{name}");
        app.get_by_label(&format!("{name}: {count} boxes in {holding} images"));
    }
    app.get_by_label(&format!("Images without boxes: {without_boxes}"));

    // The first image is previewed with its boxes; tiles carry theirs.
    let first_boxes = first.boxes.as_ref().unwrap().len();
    assert!(first_boxes > 0, "{first:?}");
    assert_eq!(
        app.state().dataset_view().preview_boxes_drawn(),
        first_boxes
    );
    assert!(app.state().dataset_view().tile_boxes_drawn() >= first_boxes);
    app.get_by_label_contains("Boxes: ");
    app.get_by_role_and_label(Role::CheckBox, "Show boxes")
        .click();
    app.run_steps(3);
    assert_eq!(app.state().dataset_view().preview_boxes_drawn(), 0);

    // The class filter keeps the images that hold a box of the class.
    let disks = images.get(&2).map_or(0, BTreeSet::len);
    app.get_by_role_and_label(Role::ComboBox, "Class").click();
    app.run_steps(3);
    app.get_by_label("disk").click();
    app.run_steps(3);
    app.get_by_label(&format!("Showing {disks} of {IMAGES} images"));
}
