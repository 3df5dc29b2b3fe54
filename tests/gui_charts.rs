//! Charts and colours as users read them, driven with egui_kittest on a tiny project (dark
//! against light images) with one run trained headlessly in the set-up: the confusion
//! matrix's row-normalised toggle, ✔/✖ beside the colours of right and wrong, class swatches
//! beside (not over) the class names, the mouse wheel over a chart scrolling the page
//! unless the chart was clicked, labels before their widgets, and the main tabs at
//! 1024 × 700.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;

use std::path::{Path, PathBuf};

use egui_kittest::kittest::{NodeT, Queryable};
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::{Strategy, TrainConfig, WeightsSpec};

/// The window size the layouts must survive.
const SMALL: egui::Vec2 = egui::vec2(1024.0, 700.0);

/// A "Shades" project of ten dark and ten light images with one trained run (run-001).
fn project_with_a_run(projects: &Path, data: &Path) -> PathBuf {
    for (class, level) in [("dark", 50u8), ("light", 200u8)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for n in 0..10u32 {
            image::RgbImage::from_fn(36, 36, |x, y| {
                let v = level.wrapping_add(((x * 3 + y * 5 + n * 7) % 29) as u8);
                image::Rgb([v, v, v])
            })
            .save(data.join(class).join(format!("{class}_{n}.png")))
            .unwrap();
        }
    }
    let project = Project {
        name: "Shades".to_owned(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.to_owned()),
        backbone: "resnet18".to_owned(),
        input_size_px: 32,
        ..Project::default()
    };
    let dir = create_project(projects, &project).unwrap();
    let config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy: Strategy::FineTune,
        epochs: 3,
        batch_size: 4,
        threads: Some(1),
        ..TrainConfig::default()
    };
    gui::train_headless(&dir, config);
    dir
}

/// Whether `rect` lies inside the window of size `size`.
fn inside(rect: egui::Rect, size: egui::Vec2) -> bool {
    rect.min.x >= 0.0 && rect.min.y >= 0.0 && rect.max.x <= size.x && rect.max.y <= size.y
}

/// The node labelled `label` of role `role`, scrolled into view; fails when it is not
/// wholly inside the window.
fn reachable(app: &mut gui::App, role: egui::accesskit::Role, label: &str) -> egui::Rect {
    app.get_by_role_and_label(role, label).scroll_to_me();
    app.run_steps(4);
    let rect = app.get_by_role_and_label(role, label).rect();
    assert!(inside(rect, SMALL), "{label} at {rect:?} is cut off");
    rect
}

#[test]
fn charts_read_without_colour_and_the_tabs_fit_a_small_window() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = project_with_a_run(projects.path(), data.path());
    let mut app = gui::open_app(projects.path(), None);
    app.set_size(SMALL);
    app.run_steps(2);
    use egui::accesskit::Role;

    // The top bar: the theme's label before its box, every control inside the window.
    let theme = app.get_by_role_and_label(Role::ComboBox, "Theme").rect();
    let theme_label = app.get_by_role_and_label(Role::Label, "Theme").rect();
    assert!(theme_label.max.x <= theme.min.x, "the label comes first");
    for button in ["New project…", "Rescan"] {
        reachable(&mut app, Role::Button, button);
    }
    assert!(inside(theme, SMALL));

    // Inspector: the run's predictions load.
    app.get_by_label("Inspector").click();
    let key = dir.clone();
    gui::wait_for(&mut app, "the inspection", 120, move |a| {
        a.inspect().data.inspection(&key, "run-001").is_some()
    });
    app.run_steps(4);
    let predictions = app
        .state()
        .inspect()
        .data
        .inspection(&dir, "run-001")
        .unwrap()
        .predictions
        .clone();
    let run = app.get_by_role_and_label(Role::ComboBox, "Run").rect();
    let filter = app.get_by_role_and_label(Role::ComboBox, "Filter").rect();
    assert!(app.get_by_role_and_label(Role::Label, "Run").rect().max.x <= run.min.x);
    assert!(
        app.get_by_role_and_label(Role::Label, "Filter")
            .rect()
            .max
            .x
            <= filter.min.x
    );
    reachable(&mut app, Role::Button, "Next");

    // The first image's prediction carries its mark, not only a colour.
    let (truth, predicted) = (predictions.labels[0], predictions.predicted[0]);
    let (mark, word) = if truth == predicted {
        ("✔", "right")
    } else {
        ("✖", "wrong")
    };
    app.get_by_label(&format!(
        "{mark} Prediction: {} ({word})",
        predictions.classes[predicted]
    ));
    app.get_by_label(&format!("{mark} predicted"));

    // Each class's colour swatch sits before its name, never over it.
    for name in &predictions.classes {
        let swatch = app.get_by_label(&format!("Colour of {name}")).rect();
        let names: Vec<egui::Rect> = app
            .query_all_by_label(name)
            .filter(|n| n.accesskit_node().role() == Role::Label)
            .map(|n| n.rect())
            .collect();
        let beside = names
            .iter()
            .find(|r| (r.center().y - swatch.center().y).abs() < 4.0)
            .unwrap_or_else(|| panic!("no name of {name} beside its swatch"));
        assert!(
            swatch.max.x <= beside.min.x,
            "{name}: {swatch:?} over {beside:?}"
        );
    }

    // The confusion matrix counts by default; row-normalised, it shows each row's shares.
    let counts = predictions.confusion_counts();
    let cell = |t: usize, p: usize| {
        let (a, b) = (&predictions.classes[t], &predictions.classes[p]);
        format!("Cell {a} to {b}: ")
    };
    for (t, row) in counts.iter().enumerate() {
        for (p, count) in row.iter().enumerate() {
            app.get_by_label(&format!("{}{count}", cell(t, p)));
        }
    }
    reachable(&mut app, Role::CheckBox, "Row-normalised").center();
    app.get_by_role_and_label(Role::CheckBox, "Row-normalised")
        .click();
    app.run_steps(3);
    for (t, row) in counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let share = (count as f64 * 100.0 / total.max(1) as f64).round();
            let shown = app
                .get_by_label_contains(&cell(t, p))
                .accesskit_node()
                .label();
            let shown = shown.unwrap_or_default();
            assert!(
                shown.ends_with('%') || shown.ends_with("<1%"),
                "{shown}: a share once row-normalised"
            );
            if count > 0 && share >= 1.0 {
                assert_eq!(shown, format!("{}{share:.0}%", cell(t, p)));
            }
        }
    }

    // Dataset: the filters' labels come first and fit.
    app.get_by_label("Dataset").click();
    let scanned = dir.clone();
    gui::wait_for(&mut app, "the scan", 60, move |a| {
        a.dataset_scan(&scanned)
            .is_some_and(|scan| !scan.state.is_running())
    });
    app.run_steps(4);
    let issues = reachable(&mut app, Role::ComboBox, "Issues");
    assert!(
        app.get_by_role_and_label(Role::Label, "Issues")
            .rect()
            .max
            .x
            <= issues.min.x
    );

    // Training: the controls fit; the stored run's charts are shown.
    app.get_by_label("Training").click();
    app.run_steps(6);
    for button in ["Start training", "Find learning rate", "Export run-001…"] {
        reachable(&mut app, Role::Button, button);
    }
}

/// A turn of the mouse wheel at the pointer, `modifiers` held: `down` scrolls down (the
/// content moves up), else up.
fn wheel(app: &mut gui::App, down: bool, modifiers: egui::Modifiers) {
    app.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, if down { -120.0 } else { 120.0 }),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers,
    });
    // The wheel is smoothed over a few frames.
    app.run_steps(20);
}

/// A click of the primary button at `pos`.
fn click_at(app: &mut gui::App, pos: egui::Pos2) {
    for pressed in [true, false] {
        app.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        app.run_steps(1);
    }
    app.run_steps(2);
}

#[test]
fn the_wheel_over_a_chart_scrolls_the_page_until_the_chart_is_clicked() {
    use transfer_workbench::runtime::Loading;
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    project_with_a_run(projects.path(), data.path());
    let mut app = gui::open_app(projects.path(), None);
    // Short, so the Training tab's page scrolls.
    app.set_size(egui::vec2(1024.0, 560.0));
    app.get_by_label("Training").click();
    gui::wait_for(&mut app, "the stored history", 60, |a| {
        matches!(a.training().history, Some((_, _, Loading::Ready(_))))
    });
    app.run_steps(4);
    let title = |app: &gui::App| app.get_by_label("Loss per epoch").rect().center();
    // Inside the chart below the title, clear of its legend (top right).
    let over_chart = |app: &gui::App| title(app) + egui::vec2(40.0, 90.0);

    // Over a chart, the wheel scrolls the page: the chart's title moves up.
    let before = title(&app);
    app.hover_at(over_chart(&app));
    app.run_steps(2);
    wheel(&mut app, true, egui::Modifiers::NONE);
    let after = title(&app);
    assert!(
        after.y < before.y - 20.0,
        "the page scrolled: {before:?} → {after:?}"
    );

    // Once the chart is clicked, the wheel pans the chart and the page stays.
    let pos = over_chart(&app);
    app.hover_at(pos);
    click_at(&mut app, pos);
    let before = title(&app);
    wheel(&mut app, false, egui::Modifiers::NONE);
    assert_eq!(title(&app), before, "the clicked chart took the wheel");

    // When the pointer leaves, the page has the wheel again; Ctrl+wheel zooms the chart
    // and leaves the page where it is.
    app.hover_at(egui::pos2(5.0, 5.0));
    app.run_steps(2);
    app.hover_at(over_chart(&app));
    app.run_steps(2);
    let before = title(&app);
    wheel(&mut app, false, egui::Modifiers::COMMAND);
    assert_eq!(title(&app), before, "Ctrl+wheel zooms, it does not scroll");
    wheel(&mut app, false, egui::Modifiers::NONE);
    assert!(
        title(&app).y > before.y + 20.0,
        "the page has the wheel again"
    );
}
