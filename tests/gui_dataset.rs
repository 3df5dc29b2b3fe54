//! The Dataset tab, driven through AccessKit with egui_kittest against a generated folder:
//! two classes, a corrupt file and a 16-bit PNG. The scan runs on a worker; the test steps
//! frames until it reports (bounded loops, not timing checks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::NodeT;
use egui_kittest::{Harness, kittest::Queryable};
use transfer_workbench::app::{ProjectsState, WorkbenchApp};
use transfer_workbench::data::window::WindowSetting;
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project, load_project};
use transfer_workbench::runtime::Loading;
use transfer_workbench::runtime::dataset::DatasetScan;

/// cats: two 8-bit images and a 16-bit ramp; dogs: two images and a corrupt PNG.
fn make_data(root: &Path) {
    for (class, shades) in [("cats", [10u8, 60]), ("dogs", [110, 160])] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for (n, shade) in shades.into_iter().enumerate() {
            image::RgbImage::from_fn(40, 40, |x, y| image::Rgb([shade, x as u8 * 5, y as u8 * 5]))
                .save(root.join(class).join(format!("{class}_{n}.png")))
                .unwrap();
        }
    }
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(48, 40, |x, y| {
        image::Luma([1000 + (x * 40 + y) as u16 * 7])
    })
    .save(root.join("cats/ramp16.png"))
    .unwrap();
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(&[0x13; 64]);
    std::fs::write(root.join("dogs/broken.png"), broken).unwrap();
}

fn settle(harness: &mut Harness<'static, WorkbenchApp>, done: impl Fn(&WorkbenchApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "the app never settled");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(3);
}

fn tiles(harness: &Harness<'static, WorkbenchApp>) -> usize {
    harness.query_all_by_label_contains("Tile: ").count()
}

fn open_dataset_tab(projects: &Path) -> (Harness<'static, WorkbenchApp>, PathBuf) {
    let dir = projects.to_owned();
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1300.0, 900.0))
        .build_eframe(move |cc| WorkbenchApp::new(&cc.egui_ctx, dir));
    settle(
        &mut harness,
        |app| matches!(app.projects(), ProjectsState::Ready(rows) if !rows.is_empty()),
    );
    let project_dir = match harness.state().projects() {
        ProjectsState::Ready(rows) => rows[0].dir.clone(),
        _ => unreachable!(),
    };
    harness.get_by_label("Dataset").click();
    let scanned = project_dir.clone();
    settle(&mut harness, move |app| {
        app.dataset_scan(&scanned)
            .is_some_and(|scan| !scan.state.is_running())
    });
    (harness, project_dir)
}

#[test]
fn dataset_tab_shows_counts_report_filters_and_preview() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    make_data(data.path());
    let project = Project {
        name: "Pets".to_owned(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.path().to_owned()),
        ..Project::default()
    };
    create_project(projects.path(), &project).unwrap();
    let (mut harness, project_dir) = open_dataset_tab(projects.path());
    let Some(DatasetScan {
        state: Loading::Ready(scanned),
        ..
    }) = harness.state().dataset_scan(&project_dir)
    else {
        panic!("the scan failed")
    };
    assert_eq!(scanned.report.usable, 5);

    harness.get_by_label("cats: 3 images");
    harness.get_by_label("dogs: 2 images");
    harness.get_by_label_contains("dogs/broken.png: ");
    harness.get_by_label("Showing 5 of 5 images");
    assert_eq!(tiles(&harness), 5);

    harness
        .get_by_role_and_label(Role::ComboBox, "Class")
        .click();
    harness.run_steps(3);
    harness.get_by_label("dogs").click();
    harness.run_steps(3);
    harness.get_by_label("Showing 2 of 5 images");
    assert_eq!(tiles(&harness), 2);

    harness.get_by_label_contains("dogs/broken.png: ").click();
    harness.run_steps(3);
    harness.get_by_label("Selected: dogs/broken.png");

    // The 16-bit image: its tile opens the preview; a manual window is saved in the project.
    harness
        .get_by_role_and_label(Role::ComboBox, "Class")
        .click();
    harness.run_steps(3);
    harness.get_by_label("cats").click();
    harness.run_steps(3);
    harness
        .get_by_label_contains("Tile: cats/ramp16.png")
        .click();
    // The preview is asked for on the frame after the click; then wait for its render.
    harness.run_steps(2);
    let rendered = project_dir.clone();
    settle(&mut harness, move |app| app.dataset_settled(&rendered));
    harness.get_by_label("Selected: cats/ramp16.png");
    harness.get_by_label("Size: 48 x 40 px");
    // Hover first: the pointer leaves the tile (and its tooltip) before the press.
    harness.get_by_label("Manual").hover();
    harness.run_steps(2);
    harness.get_by_label("Manual").click();
    // The manual window starts at the image's own range: 1000 to 1000 + 1919 * 7.
    let saved = project_dir.clone();
    settle(&mut harness, move |_| {
        load_project(&saved).unwrap().dataset.window != WindowSetting::Auto
    });
    assert_eq!(
        load_project(&project_dir).unwrap().dataset.window,
        WindowSetting::Manual {
            center: 7716.5,
            width: 13433.0,
        }
    );
    let centre = harness.get_by_role_and_label(Role::Slider, "Centre");
    assert_eq!(centre.accesskit_node().numeric_value(), Some(7716.5));
}
