//! A trained run is inspected, evaluated, exported and resumed on the split it froze: after
//! images (and a whole new class) are added to the data folder, the GUI's inspection job,
//! the CLI's `inspect` and `eval`, the export and `train --resume` all see the run's own
//! validation ids and class names, and none of them rewrites the project's `split.ron`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Device;
use transfer_workbench::export::{ExportOptions, export_run};
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::run::RunDir;
use transfer_workbench::train::{
    BatchSource, Control, JobSpec, ProjectSource, Split, TrainConfig, VecSink, WeightsSpec, train,
};

use common::workbench_ok as workbench;

fn add_images(data: &Path, class: &str, level: f32, range: std::ops::Range<u32>, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    std::fs::create_dir_all(data.join(class)).unwrap();
    for n in range {
        RgbImage::from_fn(40, 40, |_, _| {
            let v = (level + rng.gen_range(-40.0f32..40.0)).clamp(0.0, 255.0) as u8;
            Rgb([v, v, v])
        })
        .save(data.join(class).join(format!("{class} {n}.png")))
        .unwrap();
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_old_run_is_inspected_evaluated_and_exported_on_its_frozen_split() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    add_images(&data, "dark", 60.0, 0..12, 1);
    add_images(&data, "light", 190.0, 0..12, 2);
    let project = Project {
        name: "Frozen".into(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.clone()),
        backbone: "resnet18".into(),
        ..Project::default()
    };
    let dir = create_project(temp.path(), &project).unwrap();
    let mut config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let mut source = ProjectSource::open_for_training(&dir, &mut config).unwrap();
    let spec = JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(&dir, config)
    };
    let summary = train(
        &spec,
        &mut source,
        &mut VecSink::default(),
        &mut Control::detached(),
    )
    .unwrap();
    let run_id = summary.run_id;
    let (run, run_config) = RunDir::open(&dir, &run_id).unwrap();
    let frozen = run.read_split().unwrap();
    let frozen_ids = strings(&frozen["validation"]["ids"]);
    let frozen_classes = strings(&frozen["classes"]);
    assert!(!frozen_ids.is_empty());
    assert_eq!(frozen_classes, ["dark", "light"]);

    // The folder grows: more images of each class and a class the run never saw.
    add_images(&data, "dark", 60.0, 12..20, 3);
    add_images(&data, "light", 190.0, 12..20, 4);
    add_images(&data, "medium", 125.0, 0..8, 5);
    let split_ron = dir.join("split.ron");
    let split_before = std::fs::read(&split_ron).unwrap();

    // The run's data as it froze it.
    let source = ProjectSource::open_run(&dir, &run, &run_config, None).unwrap();
    assert_eq!(source.sample_ids(Split::Validation), frozen_ids);
    assert_eq!(
        source.sample_ids(Split::Train),
        strings(&frozen["train"]["ids"])
    );
    assert_eq!(source.class_names(), frozen_classes);

    // The GUI's inspection job.
    let inspection = transfer_workbench::app::inspect_jobs::load_run(
        &dir,
        &run_id,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(inspection.predictions.ids, frozen_ids);
    assert_eq!(inspection.predictions.classes, frozen_classes);
    assert_eq!(std::fs::read(&split_ron).unwrap(), split_before);

    // The CLI's inspect and eval.
    let p = dir.to_str().unwrap();
    let out = workbench(&["inspect", p, "--run", &run_id, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["samples"].as_u64(), Some(frozen_ids.len() as u64));
    assert_eq!(strings(&report["classes"]), frozen_classes);
    let out = workbench(&["eval", p, "--run", &run_id, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let confusion = &report["validation"]["classification"]["confusion"];
    assert_eq!(confusion["classes"].as_u64(), Some(2));
    let counted: u64 = confusion["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counted, frozen_ids.len() as u64);
    assert_eq!(std::fs::read(&split_ron).unwrap(), split_before);

    // The export verifies on the run's validation images, with the run's classes.
    let exported = export_run(&dir, &run_id, &ExportOptions::default(), None).unwrap();
    assert_eq!(exported.metadata.classes, frozen_classes);
    assert_eq!(std::fs::read(&split_ron).unwrap(), split_before);

    // Resuming the run reads its frozen data too (nothing is added to split.ron).
    workbench(&["train", p, "--resume", &run_id, "--json"]);
    assert_eq!(std::fs::read(&split_ron).unwrap(), split_before);
}
