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
    while matches!(harness.state().projects(), ProjectsState::Running { .. }) {
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

fn settle(harness: &mut Harness<'static, WorkbenchApp>, done: impl Fn(&WorkbenchApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "the app never settled");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(3);
}

fn project_names(app: &WorkbenchApp) -> Vec<String> {
    match app.projects() {
        ProjectsState::Ready(rows) => rows.iter().map(|r| r.title()).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn create_rename_and_delete_a_project_from_the_window() {
    let root = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for class in ["cats", "dogs"] {
        std::fs::create_dir_all(data.path().join(class)).unwrap();
        image::RgbImage::new(8, 8)
            .save(data.path().join(class).join("a.png"))
            .unwrap();
    }
    let mut harness = harness_for(root.path());

    harness.get_by_label("New project…").click();
    harness.run_steps(6);
    harness
        .get_by_role_and_label(Role::TextInput, "Name")
        .focus();
    harness.run_steps(1);
    harness
        .get_by_role_and_label(Role::TextInput, "Name")
        .type_text("Pets");
    harness
        .get_by_role_and_label(Role::TextInput, "Data folder")
        .focus();
    harness.run_steps(1);
    harness
        .get_by_role_and_label(Role::TextInput, "Data folder")
        .type_text(&data.path().display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Create").click();
    settle(&mut harness, |app| {
        project_names(app) == vec!["Pets".to_owned()]
    });

    let dir = root.path().join("pets");
    let saved = transfer_workbench::project::load_project(&dir).unwrap();
    assert_eq!(saved.name, "Pets");
    assert_eq!(
        saved.data.resolve(&dir),
        data.path().canonicalize().unwrap()
    );
    harness.get_by_label_contains("Created project 'Pets'");

    harness.get_by_label("Rename").click();
    harness.run_steps(2);
    let field = harness.get_by_role(Role::TextInput);
    field.focus();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_role(Role::TextInput)
        .type_text("Cats and dogs");
    harness.run_steps(1);
    harness.get_by_label("Save name").click();
    settle(&mut harness, |app| {
        project_names(app) == vec!["Cats and dogs".to_owned()]
    });
    assert_eq!(
        transfer_workbench::project::load_project(&dir)
            .unwrap()
            .name,
        "Cats and dogs"
    );

    harness.get_by_label("Delete…").click();
    harness.run_steps(2);
    harness.get_by_label("Move to trash").click();
    settle(
        &mut harness,
        |app| matches!(app.projects(), ProjectsState::Ready(rows) if rows.is_empty()),
    );
    assert!(!dir.exists());
    assert!(root.path().join(".trash/pets/project.ron").is_file());
}

#[test]
fn creating_a_project_on_a_missing_folder_says_so() {
    let root = tempfile::tempdir().unwrap();
    let mut harness = harness_for(root.path());
    harness.get_by_label("New project…").click();
    harness.run_steps(6);
    harness
        .get_by_role_and_label(Role::TextInput, "Name")
        .focus();
    harness
        .get_by_role_and_label(Role::TextInput, "Name")
        .type_text("Ghost");
    harness
        .get_by_role_and_label(Role::TextInput, "Data folder")
        .focus();
    harness
        .get_by_role_and_label(Role::TextInput, "Data folder")
        .type_text("/no/such/folder");
    harness.run_steps(2);
    harness.get_by_label("Create").click();
    settle(&mut harness, |app| app.status().is_some_and(|s| s.is_err()));
    harness.get_by_label_contains("the data folder does not exist: /no/such/folder");
    assert!(project_names(harness.state()).is_empty());
}
