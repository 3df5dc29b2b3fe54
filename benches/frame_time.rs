//! Frame-time harness of the workbench window (issue #6, "never blocks"): the real app
//! driven headlessly with egui_kittest over a generated 10,000-image project. It measures
//! the wall time of each frame (the app's update: event draining, layout, the virtualised
//! thumbnail grid) while the dataset grid scrolls, first idle and then while a training run
//! goes on in the background, and prints the percentiles against the 16 ms budget of a
//! 60 Hz display. A report, not a pass/fail test.
//!
//! `cargo bench --bench frame_time` (or `cargo run --release --bench frame_time`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark may panic on failure.

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::{Harness, kittest::Queryable};
use transfer_workbench::app::{CentralTab, ProjectsState, WorkbenchApp};
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::{TrainConfig, WeightsSpec};

const IMAGES: usize = 10_000;
const FRAMES: usize = 300;
const BUDGET_MS: f64 = 16.0;

/// Two class folders of 24 px PNGs, 10,000 in all.
fn make_data(root: &Path) {
    for (class, base) in [("dark", 50u8), ("light", 190u8)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for n in 0..IMAGES / 2 {
            image::GrayImage::from_fn(24, 24, |x, y| {
                image::Luma([base.wrapping_add(((x * 7 + y * 3 + n as u32) % 31) as u8)])
            })
            .save(root.join(class).join(format!("{class}_{n:05}.png")))
            .unwrap();
        }
    }
}

fn step_until(
    harness: &mut Harness<'static, WorkbenchApp>,
    what: &str,
    done: impl Fn(&WorkbenchApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Scrolls the grid for `FRAMES` frames and returns each frame's time in ms.
fn scroll_frames(harness: &mut Harness<'static, WorkbenchApp>) -> Vec<f64> {
    let centre = egui::pos2(800.0, 500.0);
    let mut times = Vec::with_capacity(FRAMES);
    for frame in 0..FRAMES {
        harness.hover_at(centre);
        // Down for two thirds of the frames, then back up.
        let delta = if frame < FRAMES * 2 / 3 { -60.0 } else { 90.0 };
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, delta),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        let start = Instant::now();
        harness.step();
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times
}

fn report(name: &str, times: &[f64]) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let over = sorted.iter().filter(|&&t| t > BUDGET_MS).count();
    println!(
        "{name:<34} frames {:>4}  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  \
         over {BUDGET_MS} ms: {over}  (p99 / budget = {:.2})",
        sorted.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        sorted[sorted.len() - 1],
        at(0.99) / BUDGET_MS
    );
}

fn main() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    make_data(data.path());
    println!(
        "generated {IMAGES} images in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let project = Project {
        name: "Frames".into(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "resnet18".into(),
        input_size_px: 32,
        ..Project::default()
    };
    create_project(projects.path(), &project).unwrap();
    let dir = projects.path().to_owned();
    let template = TrainConfig {
        weights: WeightsSpec::Random,
        epochs: 50,
        batch_size: 32,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_eframe(move |cc| {
            WorkbenchApp::new(&cc.egui_ctx, dir)
                .with_training_defaults(template)
                .with_start(Some(CentralTab::Dataset), Some("Frames".into()))
        });
    step_until(
        &mut harness,
        "the project list",
        |app| matches!(app.projects(), ProjectsState::Ready(rows) if !rows.is_empty()),
    );
    let project_dir = match harness.state().projects() {
        ProjectsState::Ready(rows) => rows[0].dir.clone(),
        _ => unreachable!(),
    };
    let scanned = Instant::now();
    let settled = project_dir.clone();
    step_until(&mut harness, "the dataset scan", move |app| {
        app.dataset_settled(&settled)
    });
    println!(
        "scan of {IMAGES} images settled in {:.1} s",
        scanned.elapsed().as_secs_f64()
    );
    report("dataset grid, scrolling", &scroll_frames(&mut harness));

    harness.get_by_label("Training").click();
    harness.run_steps(6);
    harness.get_by_label("Start training").click();
    step_until(&mut harness, "the first loss point", |app| {
        app.training()
            .live
            .as_ref()
            .is_some_and(|l| !l.curves.step_loss.is_empty())
    });
    let mut plots = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES / 3 {
        let start = Instant::now();
        harness.step();
        plots.push(start.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(5));
    }
    report("training tab, live charts", &plots);
    harness.get_by_label("Dataset").click();
    harness.run_steps(6);
    report(
        "dataset grid, scrolling, training",
        &scroll_frames(&mut harness),
    );
    let busy = harness.state().training().busy();
    println!("training still running at the end: {busy}");
    if busy {
        harness.get_by_label("Training").click();
        harness.run_steps(6);
        harness.get_by_label("Stop").click();
    }
    step_until(&mut harness, "the run to stop", |app| {
        !app.training().busy()
    });
}
