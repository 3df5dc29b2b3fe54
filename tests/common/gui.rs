//! Helpers of the GUI tests: the real app in an egui_kittest
//! harness, stepped until its state reaches a condition (bounded loops, no timing checks).
//! Included with `#[path = "common/gui.rs"] mod gui;` by the tests that need it.
#![allow(dead_code)] // Each test crate uses a part.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::{Harness, kittest::Queryable};
use transfer_workbench::app::{ProjectsState, WorkbenchApp};
use transfer_workbench::project::{
    DataLocation, Project, TaskKind, TrainingSettings, create_project,
};
use transfer_workbench::train::{Control, JobSpec, ProjectSource, TrainConfig, VecSink, train};

/// The app in a harness.
pub type App = Harness<'static, WorkbenchApp>;

/// Steps frames until `done` holds (at most `timeout_secs`), without extra frames after;
/// a timeout fails with the app's status and the live run's log.
pub fn wait_for(
    app: &mut App,
    what: &str,
    timeout_secs: u64,
    done: impl Fn(&WorkbenchApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    while !done(app.state()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {:?}, live: {:?}",
            app.state().status(),
            app.state()
                .training()
                .live
                .as_ref()
                .map(|l| (&l.status, &l.log))
        );
        app.step();
        // Yields the core to the workers between frames; no assertion depends on it.
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The app over the projects folder `projects`, with training defaults `template` when
/// given, once its project list is read (and not empty).
pub fn open_app(projects: &Path, template: Option<TrainConfig>) -> App {
    let dir = projects.to_owned();
    let mut app = Harness::builder()
        .with_size(egui::vec2(1400.0, 1000.0))
        .build_eframe(move |cc| {
            let app = WorkbenchApp::new(&cc.egui_ctx, dir);
            match template {
                Some(template) => app.with_training_defaults(template),
                None => app,
            }
        });
    wait_for(
        &mut app,
        "the project list",
        60,
        |app| matches!(app.projects(), ProjectsState::Ready(rows) if !rows.is_empty()),
    );
    app
}

/// The app over the projects folder `projects` (one project) with training defaults
/// `template`, on the Training tab of its project once the run list is read.
pub fn open_training_tab(projects: &Path, template: TrainConfig) -> (App, PathBuf) {
    let mut app = open_app(projects, Some(template));
    let project_dir = match app.state().projects() {
        ProjectsState::Ready(rows) => rows[0].dir.clone(),
        _ => unreachable!(),
    };
    app.get_by_label("Training").click();
    let listed = project_dir.clone();
    wait_for(&mut app, "the run list", 60, move |app| {
        app.runs().ready(&listed).is_some()
    });
    app.run_steps(2);
    (app, project_dir)
}

/// dark/ and light/: 12 images of 36 px each, with a little texture (brightness decides the
/// class).
pub fn make_brightness_data(root: &Path) {
    for (class, base) in [("dark", 40u8), ("light", 200u8)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for n in 0..12u32 {
            image::RgbImage::from_fn(36, 36, |x, y| {
                let v = base.wrapping_add(((x * 3 + y * 5 + n * 7) % 23) as u8);
                image::Rgb([v, v, v])
            })
            .save(root.join(class).join(format!("{class}_{n:02}.png")))
            .unwrap();
        }
    }
}

/// Makes a brightness folder in `data` and a 32 px "Brightness" classification project of
/// `backbone` over it in `projects`, with the saved training settings `training`.
pub fn make_brightness_project(
    projects: &Path,
    data: &Path,
    backbone: &str,
    training: Option<TrainingSettings>,
) {
    make_brightness_data(data);
    let project = Project {
        name: "Brightness".into(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.to_owned()),
        backbone: backbone.into(),
        input_size_px: 32,
        training,
        ..Project::default()
    };
    create_project(projects, &project).unwrap();
}

/// Trains one run of `config` on the project at `project` on the CPU, outside the window
/// (the set-up of tests that inspect a finished run).
pub fn train_headless(project: &Path, mut config: TrainConfig) {
    let mut source = ProjectSource::open_for_training(project, &mut config).unwrap();
    let spec = JobSpec {
        device: tch::Device::Cpu,
        ..JobSpec::new(project, config)
    };
    let sink = &mut VecSink::default();
    train(&spec, &mut source, sink, &mut Control::detached()).unwrap();
}
