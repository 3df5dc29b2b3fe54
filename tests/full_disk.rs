//! A full disk: the project file, a checkpoint, an export and the frozen-backbone embedding
//! cache written onto a small tmpfs (mounted by the test; it runs as root here) that runs
//! out of space. Each write must fail with a message naming the file, leave the previous
//! good file as it was and leave no temp file; the cache, which only saves time, is skipped
//! and the work carries on. (Thumbnails have no disk cache: they live in a bounded in-memory
//! texture cache.) Where mounting is not allowed the tests print why and pass without
//! checking.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Device, Tensor};
use transfer_workbench::export::{ExportOptions, export_run};
use transfer_workbench::project::{Project, load_project, save_project};
use transfer_workbench::train::cache::load_or_compute;
use transfer_workbench::train::events::CheckpointKind;
use transfer_workbench::train::run::{CheckpointState, RunDir};
use transfer_workbench::train::{
    Control, JobSpec, SyntheticSource, TrainConfig, VecSink, WeightsSpec, train,
};

const PAGE: u64 = 4096;

/// A tmpfs mounted on a temp folder for the test's life.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes`; `None` (after printing why) where that is not allowed.
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let result = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match result {
            Ok(output) if output.status.success() => Some(Self { dir }),
            Ok(output) => {
                println!(
                    "skipped: could not mount a tmpfs ({})",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped: could not run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk, then frees `pages` whole pages: exactly that much room is left.
    fn fill_leaving(&self, pages: u64) -> File {
        let mut filler = File::create(self.path().join("filler")).unwrap();
        let chunk = vec![7u8; PAGE as usize];
        loop {
            match filler.write(&chunk) {
                Ok(n) if n == chunk.len() => {}
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let len = filler.metadata().unwrap().len() / PAGE * PAGE;
        filler.set_len(len.saturating_sub(pages * PAGE)).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Files whose name ends with `.tmp` under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

#[test]
fn a_project_save_on_a_full_disk_names_the_file_and_keeps_the_previous_one() {
    let Some(disk) = SmallDisk::mount(64 * PAGE) else {
        return;
    };
    let dir = disk.path().join("project");
    let good = Project {
        name: "good".into(),
        ..Project::default()
    };
    save_project(&dir, &good).unwrap();
    let before = std::fs::read(dir.join("project.ron")).unwrap();
    let _filler = disk.fill_leaving(0);
    let bigger = Project {
        name: "bigger".into(),
        description: "x".repeat(3 * PAGE as usize),
        ..Project::default()
    };
    let err = save_project(&dir, &bigger).unwrap_err().to_string();
    assert!(err.contains("project.ron"), "{err}");
    assert!(err.to_lowercase().contains("space"), "{err}");
    assert_eq!(std::fs::read(dir.join("project.ron")).unwrap(), before);
    assert_eq!(load_project(&dir).unwrap().name, "good");
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
}

#[test]
fn a_checkpoint_on_a_full_disk_names_the_file_and_keeps_the_previous_one() {
    let Some(disk) = SmallDisk::mount(256 * PAGE) else {
        return;
    };
    let run = RunDir::create(disk.path(), &TrainConfig::default(), &serde_json::json!({})).unwrap();
    let weights = vec![("w".to_owned(), Tensor::ones([64, 64], tch::kind::FLOAT_CPU))];
    let first = CheckpointState {
        epochs_done: 1,
        ..CheckpointState::default()
    };
    run.save_checkpoint(CheckpointKind::Last, &weights, &first)
        .unwrap();
    let path = run.checkpoint_path(CheckpointKind::Last);
    let before = std::fs::read(&path).unwrap();
    let _filler = disk.fill_leaving(1);
    let second = CheckpointState {
        epochs_done: 2,
        ..CheckpointState::default()
    };
    let err = run
        .save_checkpoint(CheckpointKind::Last, &weights, &second)
        .unwrap_err()
        .to_string();
    assert!(err.contains("last.safetensors"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let (_, state) = run.load_checkpoint(CheckpointKind::Last).unwrap();
    assert_eq!(state, first);
    assert_eq!(
        run.load_checkpoint_state(CheckpointKind::Last).unwrap(),
        first
    );
    assert!(temp_files(&run.checkpoints()).is_empty());
}

/// A trained (1 epoch, synthetic) resnet18 run in `project`; returns its id.
fn trained_run(project: &Path) -> String {
    let config = TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        epochs: 1,
        batch_size: 16,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let spec = JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project, config)
    };
    let mut source = SyntheticSource::two_class(32, 16, 32, 3);
    train(
        &spec,
        &mut source,
        &mut VecSink::new(),
        &mut Control::detached(),
    )
    .unwrap()
    .run_id
}

#[test]
fn an_export_on_a_full_disk_names_the_file_and_keeps_the_previous_export() {
    let project = tempfile::tempdir().unwrap();
    let id = trained_run(project.path());
    let export = |out: &Path| {
        let options = ExportOptions {
            out_dir: Some(out.to_owned()),
            ..ExportOptions::default()
        };
        export_run(project.path(), &id, &options, None)
    };
    // The size of one export, measured on the normal disk.
    let measured = project.path().join("measured");
    export(&measured).unwrap();
    let model_bytes = std::fs::metadata(measured.join("model.pt")).unwrap().len();
    let model_pages = model_bytes.div_ceil(PAGE);
    let Some(disk) = SmallDisk::mount((2 * model_pages + 16) * PAGE) else {
        return;
    };
    let out = disk.path().join("export");
    export(&out).unwrap();
    let model = std::fs::read(out.join("model.pt")).unwrap();
    let metadata = std::fs::read(out.join("model.json")).unwrap();

    // No room at all; then room for exactly the model file and nothing more. libtorch
    // aborts the process when its save runs out of space, so the export must refuse both
    // before it starts (this test process would die otherwise).
    for pages in [0, model_pages] {
        let filler = disk.fill_leaving(pages);
        let err = format!("{:#}", anyhow::Error::from(export(&out).unwrap_err()));
        assert!(err.contains("model.pt"), "{pages}: {err}");
        assert!(err.contains("not enough free space"), "{pages}: {err}");
        assert_eq!(std::fs::read(out.join("model.pt")).unwrap(), model, "{err}");
        assert_eq!(
            std::fs::read(out.join("model.json")).unwrap(),
            metadata,
            "{err}"
        );
        assert!(temp_files(&out).is_empty(), "{:?}", temp_files(&out));
        drop(filler);
        std::fs::remove_file(disk.path().join("filler")).unwrap();
    }
}

#[test]
fn an_embedding_cache_on_a_full_disk_is_skipped_with_a_message_naming_it() {
    let Some(disk) = SmallDisk::mount(256 * PAGE) else {
        return;
    };
    let dir = disk.path().join("cache");
    let labels = || Tensor::arange(16, tch::kind::INT64_CPU);
    let first = load_or_compute(&dir, "first", || {
        Ok(Some((
            Tensor::ones([16, 8], tch::kind::FLOAT_CPU),
            labels(),
        )))
    })
    .unwrap()
    .unwrap();
    assert_eq!(first.not_stored, None);
    let before = std::fs::read(&first.path).unwrap();
    let _filler = disk.fill_leaving(1);
    // 16 x 1024 floats: 64 KiB, far more than the one page left.
    let embeddings = Tensor::rand([16, 1024], tch::kind::FLOAT_CPU);
    let second = load_or_compute(&dir, "second", || {
        Ok(Some((embeddings.shallow_clone(), labels())))
    })
    .unwrap()
    .unwrap();
    let why = second.not_stored.clone().expect("a message saying why");
    assert!(why.contains("second.safetensors"), "{why}");
    assert!(why.to_lowercase().contains("space"), "{why}");
    assert!(!second.reused && !second.path.exists());
    assert!(second.embeddings.equal(&embeddings), "the work carries on");
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    assert_eq!(std::fs::read(&first.path).unwrap(), before);
    let again = load_or_compute(&dir, "first", || panic!("must be read from the cache"))
        .unwrap()
        .unwrap();
    assert!(again.reused && again.embeddings.equal(&first.embeddings));
}
