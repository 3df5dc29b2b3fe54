//! The Inspector's thumbnail grid and its back stack, driven through AccessKit with
//! egui_kittest over the real app on a generated two-class folder with one run trained
//! headlessly in the set-up: the grid shows exactly the filtered images with prediction and
//! truth, a click opens one in the single view, following a neighbour keeps the filter (or
//! is a detour outside it) and Back returns to the same filter, position and view. The test
//! steps frames until each state is reached (bounded loops on the app's state).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::{Path, PathBuf};

use egui::accesskit::{Role, Toggled};
use egui_kittest::kittest::{NodeT, Queryable};
use gui::{App, wait_for};
use transfer_workbench::inspect::predictions::Predictions;
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::{Strategy, TrainConfig, WeightsSpec};
use transfer_workbench::ui::inspector::InspectFilter;
use transfer_workbench::ui::inspector_nav::InspectorMode;
use transfer_workbench::ui::palette::Outcome;

/// A "Brightness" project over a fresh two-class folder, with one short run trained.
fn trained_project(projects: &Path, data: &Path) -> PathBuf {
    gui::make_brightness_data(data);
    let project = Project {
        name: "Brightness".into(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.to_owned()),
        backbone: "resnet18".into(),
        input_size_px: 32,
        ..Project::default()
    };
    let dir = create_project(projects, &project).unwrap();
    let config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy: Strategy::FineTune,
        epochs: 2,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    gui::train_headless(&dir, config);
    dir
}

/// The grid cell's name of sample `i`, as the Inspector gives it.
fn cell_name(p: &Predictions, i: usize) -> String {
    let (truth, predicted) = (p.labels[i], p.predicted[i]);
    format!(
        "{}: predicted {} ({}), true {}",
        p.ids[i],
        p.classes[predicted],
        Outcome::of(truth, predicted).word(),
        p.classes[truth]
    )
}

/// The names of the grid's cells, in the order drawn.
fn grid_cells(app: &App) -> Vec<String> {
    app.query_all_by_label_contains(": predicted ")
        .filter(|n| n.accesskit_node().role() == Role::Button)
        .filter_map(|n| n.accesskit_node().label())
        .collect()
}

fn inspector(app: &App) -> &transfer_workbench::ui::inspector::InspectorView {
    &app.state().inspect().inspector
}

/// Clicks the first neighbour of the shown sample `index` for which `pick` holds (once the
/// neighbours are found); returns its sample index, or `None` when none qualifies.
fn follow_neighbour(
    app: &mut App,
    dir: &Path,
    index: usize,
    p: &Predictions,
    pick: impl Fn(usize) -> bool,
) -> Option<usize> {
    let key = ((dir.to_owned(), "run-001".to_owned()), index);
    let wanted = key.clone();
    wait_for(app, "the neighbours", 120, move |app| {
        app.inspect()
            .data
            .neighbours
            .get(&wanted)
            .is_some_and(|n| n.ready().is_some())
    });
    app.run_steps(3);
    let found = app.state().inspect().data.neighbours[&key]
        .ready()
        .unwrap()
        .clone();
    let neighbour = found
        .iter()
        .map(|n| n.index)
        .find(|&i| i != index && pick(i))?;
    app.get_by_label(&format!("Neighbour {}", p.ids[neighbour]))
        .click();
    app.run_steps(4);
    Some(neighbour)
}

#[test]
fn the_grid_shows_the_filtered_images_and_back_returns_after_a_neighbour() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = trained_project(projects.path(), data.path());
    let mut app = gui::open_app(projects.path(), None);

    app.get_by_label("Inspector").click();
    let loaded = dir.clone();
    wait_for(&mut app, "the run's predictions", 120, move |app| {
        app.inspect().data.inspection(&loaded, "run-001").is_some()
    });
    app.run_steps(3);
    let p = app
        .state()
        .inspect()
        .data
        .inspection(&dir, "run-001")
        .unwrap()
        .predictions
        .clone();
    let light = p.classes.iter().position(|c| c == "light").unwrap();
    let filtered: Vec<usize> = (0..p.len()).filter(|&i| p.labels[i] == light).collect();
    assert!(
        filtered.len() >= 2,
        "{} light validation images",
        filtered.len()
    );

    // The filter "Class light", then the grid: exactly the light images, in order, each
    // with its prediction and truth.
    app.get_by_role_and_label(Role::ComboBox, "Filter").click();
    app.run_steps(2);
    app.get_by_label("Class light").click();
    app.run_steps(2);
    app.get_by_label("Grid").click();
    app.run_steps(3);
    assert_eq!(inspector(&app).mode(), InspectorMode::Grid);
    assert_eq!(inspector(&app).shown(), None, "no single image in the grid");
    let expected: Vec<String> = filtered.iter().map(|&i| cell_name(&p, i)).collect();
    assert_eq!(grid_cells(&app), expected);
    app.get_by_label(&format!("{} images", filtered.len()));

    // A click on the second cell opens that image in the single view, in the filter.
    app.get_by_label(&expected[1]).click();
    app.run_steps(3);
    assert_eq!(inspector(&app).mode(), InspectorMode::Single);
    assert_eq!(inspector(&app).shown(), Some(filtered[1]));
    assert_eq!(inspector(&app).filter(), InspectFilter::Class(light));
    app.get_by_label(&format!("Image 2 of {}", filtered.len()));
    assert!(grid_cells(&app).is_empty(), "the grid is gone");

    // A neighbour in the filter is shown at its place in the filtered list; Alt+Left
    // returns to the image, filter, position and view left.
    let in_filter = |i: usize| p.labels[i] == light;
    let mut followed = 0;
    if let Some(n) = follow_neighbour(&mut app, &dir, filtered[1], &p, in_filter) {
        followed += 1;
        let view = inspector(&app);
        assert_eq!(view.shown(), Some(n));
        assert_eq!(
            view.filter(),
            InspectFilter::Class(light),
            "the filter stays"
        );
        assert_eq!(view.detour(), None);
        assert_eq!(
            view.position(),
            filtered.iter().position(|&i| i == n).unwrap()
        );
        assert_eq!(view.back_depth(), 1);
        app.key_press_modifiers(egui::Modifiers::ALT, egui::Key::ArrowLeft);
        app.run_steps(3);
        let view = inspector(&app);
        assert_eq!(view.shown(), Some(filtered[1]));
        assert_eq!(view.filter(), InspectFilter::Class(light));
        assert_eq!((view.position(), view.mode()), (1, InspectorMode::Single));
        assert_eq!(view.back_depth(), 0);
    }

    // A neighbour outside the filter is a detour: the filter is kept, and "◀ Back"
    // returns to the same place.
    if let Some(n) = follow_neighbour(&mut app, &dir, filtered[1], &p, |i| !in_filter(i)) {
        followed += 1;
        let view = inspector(&app);
        assert_eq!((view.shown(), view.detour()), (Some(n), Some(n)));
        assert_eq!(
            view.filter(),
            InspectFilter::Class(light),
            "the filter stays"
        );
        app.get_by_label_contains("A detour outside the filter");
        app.get_by_label("◀ Back").click();
        app.run_steps(3);
        let view = inspector(&app);
        assert_eq!(view.shown(), Some(filtered[1]));
        assert_eq!((view.detour(), view.position()), (None, 1));
        assert_eq!(view.filter(), InspectFilter::Class(light));
    }
    // Eight neighbours are every other image of this small validation split: both kinds.
    assert_eq!(followed, 2, "a neighbour in the filter and one outside it");

    // Back in the grid, the image left is the highlighted cell.
    app.get_by_label("Grid").click();
    app.run_steps(3);
    assert_eq!(inspector(&app).position(), 1);
    let highlighted = app.get_by_label(&expected[1]);
    assert_eq!(highlighted.accesskit_node().toggled(), Some(Toggled::True));
}
