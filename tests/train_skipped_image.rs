//! A training image that breaks after the data set was scanned is left out of its batch and
//! reported as a `TrainEvent::ImageSkipped` naming the file; the run still finishes.

use tch::Device;
use transfer_workbench::project::{DataLocation, Project, TaskKind, create_project};
use transfer_workbench::train::{
    Control, JobSpec, ProjectSource, Split, TrainConfig, TrainEvent, VecSink, WeightsSpec, train,
};

#[test]
fn a_training_image_broken_after_the_scan_is_skipped_and_reported() {
    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    for (class, level) in [("dark", 40u8), ("light", 210u8)] {
        std::fs::create_dir_all(data.path().join(class)).unwrap();
        for n in 0..8u32 {
            image::RgbImage::from_fn(24, 24, |x, y| {
                let v = level.wrapping_add(((x + 2 * y + n) % 17) as u8);
                image::Rgb([v, v, v])
            })
            .save(data.path().join(class).join(format!("{class} {n}.png")))
            .unwrap();
        }
    }
    let project = Project {
        name: "Broken later".into(),
        task: TaskKind::Classification,
        data: DataLocation::Path(data.path().to_owned()),
        backbone: "resnet18".into(),
        ..Project::default()
    };
    let dir = create_project(projects.path(), &project).unwrap();
    let mut config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 24,
        epochs: 1,
        batch_size: 4,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let mut source = ProjectSource::open_for_training(&dir, &mut config).unwrap();
    let victim = source.sample_path(Split::Train, 0).unwrap();
    std::fs::write(&victim, b"\x89PNG truncated").unwrap();

    let mut sink = VecSink::default();
    let spec = JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(&dir, config)
    };
    let summary = train(&spec, &mut source, &mut sink, &mut Control::detached()).unwrap();
    assert_eq!(summary.epochs_done, 1);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let events = sink.events();
    let skipped: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::ImageSkipped { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 1, "{events:?}");
    assert!(skipped[0].contains(&name), "{}", skipped[0]);
}
