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
        "Brain MRI: tumour type",
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

/// Steps frames until a node labelled `label` exists (listings arrive from a worker).
fn wait_for_label(harness: &mut Harness<'static, WorkbenchApp>, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.query_by_label(label).is_none() {
        assert!(Instant::now() < deadline, "{label} never appeared");
        harness.step();
        std::thread::sleep(Duration::from_millis(5));
    }
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
    settle(&mut harness, |app| app.new_project().preview().is_some());
    harness.get_by_label("cats 1 · dogs 1");
    harness.get_by_label_contains("2 images, 2 classes (classification)");
    assert!(
        harness
            .query_all_by_value("32 px (fits the images)")
            .next()
            .is_some()
    );
    harness.get_by_label("Create").click();
    settle(&mut harness, |app| {
        project_names(app) == vec!["Pets".to_owned()]
    });

    let dir = root.path().join("pets");
    let saved = transfer_workbench::project::load_project(&dir).unwrap();
    assert_eq!(saved.name, "Pets");
    assert_eq!(
        saved.input_size_px, 32,
        "8 px images get the smallest input size"
    );
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

/// Opens the dialog and types a name and a data folder, then waits for the preview.
fn type_new_project(harness: &mut Harness<'static, WorkbenchApp>, name: &str, folder: &str) {
    harness.get_by_label("New project…").click();
    harness.run_steps(6);
    harness
        .get_by_role_and_label(Role::TextInput, "Name")
        .focus();
    harness
        .get_by_role_and_label(Role::TextInput, "Name")
        .type_text(name);
    harness
        .get_by_role_and_label(Role::TextInput, "Data folder")
        .focus();
    harness
        .get_by_role_and_label(Role::TextInput, "Data folder")
        .type_text(folder);
    // The typing is taken in the next frame; the preview runs on a worker once the path
    // stops changing, and Create waits for it.
    harness.run_steps(1);
    settle(harness, |app| app.new_project().looked());
}

#[test]
fn creating_a_project_on_a_missing_folder_says_so_in_the_dialog() {
    let root = tempfile::tempdir().unwrap();
    let mut harness = harness_for(root.path());
    type_new_project(&mut harness, "Ghost", "/no/such/folder");
    harness.get_by_label_contains("the folder does not exist): /no/such/folder");
    harness.get_by_label("Create").click();
    harness.run_steps(3);
    assert!(
        harness.state().new_project().is_open(),
        "the dialog stays open"
    );
    assert_eq!(
        harness
            .query_all_by_label_contains("the folder does not exist): /no/such/folder")
            .count(),
        2,
        "the preview and the refusal both name the folder"
    );
    assert!(
        harness.query_all_by_value("Ghost").next().is_some(),
        "the name is kept"
    );
    assert!(project_names(harness.state()).is_empty());

    // Escape closes the dialog.
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert!(!harness.state().new_project().is_open());
}

#[test]
fn empty_and_one_class_folders_are_refused_in_the_dialog() {
    let root = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let one = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(one.path().join("cats")).unwrap();
    for n in 0..3 {
        image::RgbImage::new(40, 30)
            .save(one.path().join("cats").join(format!("{n}.png")))
            .unwrap();
    }
    let mut harness = harness_for(root.path());
    type_new_project(&mut harness, "Empty", &empty.path().display().to_string());
    harness.get_by_label_contains("no class subfolders found");
    harness.get_by_label("Create").click();
    harness.run_steps(3);
    assert!(harness.state().new_project().is_open());
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);

    // Class folders without images.
    std::fs::create_dir_all(empty.path().join("cats")).unwrap();
    std::fs::create_dir_all(empty.path().join("dogs")).unwrap();
    type_new_project(&mut harness, "Empty", &empty.path().display().to_string());
    harness.get_by_label_contains("holds no images");
    harness.get_by_label("Create").click();
    harness.run_steps(3);
    assert!(harness.state().new_project().is_open());
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);

    type_new_project(&mut harness, "Cats", &one.path().display().to_string());
    harness.get_by_label("cats 3");
    harness.get_by_label("Images of about 40×30 px.");
    harness.get_by_label("Create").click();
    harness.run_steps(3);
    assert!(harness.state().new_project().is_open());
    assert_eq!(
        harness
            .query_all_by_label_contains("needs at least two classes with images")
            .count(),
        2
    );
    assert!(
        harness.query_all_by_value("Cats").next().is_some(),
        "the name is kept"
    );
    assert!(project_names(harness.state()).is_empty());
}

#[test]
fn the_folder_browser_in_the_window_picks_the_data_folder() {
    let root = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("pets");
    for class in ["cats", "dogs"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        image::RgbImage::new(64, 64)
            .save(data.join(class).join("a.png"))
            .unwrap();
    }
    let mut harness = harness_for(root.path());
    type_new_project(&mut harness, "", &parent.path().display().to_string());
    harness.get_by_label("Browse here…").click();
    wait_for_label(&mut harness, "pets/");
    harness.get_by_label("pets/").click();
    wait_for_label(&mut harness, "cats/");
    harness.get_by_label("Use this folder").click();
    // The click is taken in the next frame; then the chosen folder is looked at.
    harness.run_steps(1);
    settle(&mut harness, |app| app.new_project().looked());
    assert_eq!(
        harness
            .state()
            .new_project()
            .preview()
            .map(|p| p.classes.len()),
        Some(2),
        "{:?}",
        harness.state().new_project()
    );
    harness.get_by_label("cats 1 · dogs 1");
    assert!(
        harness.query_all_by_value("pets").next().is_some(),
        "named after the folder"
    );
}
