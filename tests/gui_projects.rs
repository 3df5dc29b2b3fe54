//! The real app, driven through AccessKit with egui_kittest: it lists the demo projects and
//! shows a damaged project with its message instead of dropping it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::{Harness, kittest::Queryable};
use transfer_workbench::app::{ProjectsState, WorkbenchApp};

fn harness_for(dir: &Path) -> Harness<'static, WorkbenchApp> {
    let dir = dir.to_owned();
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_eframe(move |cc| WorkbenchApp::new(&cc.egui_ctx, dir));
    // The scan runs on a worker; step frames until it reports (bounded, not a timing check).
    let deadline = Instant::now() + Duration::from_secs(60);
    while matches!(harness.state().projects(), ProjectsState::Scanning) {
        assert!(Instant::now() < deadline, "the project scan never finished");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(3);
    harness
}

#[test]
fn lists_the_demo_projects_and_shows_the_selected_one() {
    let projects = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("projects");
    let mut harness = harness_for(&projects);
    for name in [
        "Chest X-ray: pneumonia",
        "Nuclei segmentation",
        "Fashion-MNIST",
    ] {
        harness.get_by_role_and_label(Role::Button, name);
    }
    harness
        .get_by_role_and_label(Role::Button, "Nuclei segmentation")
        .click();
    harness.run_steps(3);
    harness.get_by_label("segmentation");
    harness.get_by_label("demo data: data/nuclei");
}

#[test]
fn a_damaged_project_is_listed_with_its_message() {
    let root = tempfile::tempdir().unwrap();
    let bad = root.path().join("bad-project");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("project.ron"), "(name: \"oops\", task: Nonsense)").unwrap();
    let mut harness = harness_for(root.path());
    harness.get_by_label("bad-project  (damaged)").click();
    harness.run_steps(3);
    let message = harness.get_by_label_contains("the project file is damaged");
    assert!(format!("{message:?}").contains("project.ron"));
}
