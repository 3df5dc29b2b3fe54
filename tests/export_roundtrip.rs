//! TorchScript export end to end: tiny trained classification (resnet18) and segmentation
//! runs are exported with and without baked-in preprocessing; the set-up's Python loads each
//! file with `torch.jit.load` and reproduces the app's outputs within 1e-5 (also at a batch
//! size never traced), and a script that knows only `model.pt` + `model.json` reproduces the
//! app's predictions from PNG files. A missing or damaged checkpoint writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Device, Tensor};
use transfer_workbench::data::window::WindowSetting;
use transfer_workbench::export::trace::raw_inputs;
use transfer_workbench::export::verify::app_images;
use transfer_workbench::export::{
    BatchOrigin, ExportError, ExportOptions, InputFormat, VerificationBatch, export_run,
};
use transfer_workbench::train::project_source::{
    EvalTransform, LoadedImages, load_images_with, normalization_of,
};
use transfer_workbench::train::{
    BatchSource, CheckpointChoice, Control, JobSpec, Monitor, Schedule, Split, Strategy,
    SyntheticDisks, SyntheticSource, TaskKind, TrainConfig, TrainedModel, VecSink, WeightsSpec,
    train,
};

fn config(task: TaskKind) -> TrainConfig {
    TrainConfig {
        backbone: "resnet18".into(),
        weights: WeightsSpec::Random,
        input_size_px: 32,
        strategy: Strategy::FineTune,
        schedule: Schedule::Constant,
        epochs: 1,
        batch_size: 8,
        threads: Some(1),
        monitor: Monitor::default(),
        task,
        ..TrainConfig::default()
    }
}

/// Trains one epoch and returns the run id and 8 validation images.
fn trained_run(project: &Path, task: TaskKind, source: &mut dyn BatchSource) -> (String, Tensor) {
    let spec = JobSpec::new(project, config(task));
    train(
        &spec,
        source,
        &mut VecSink::default(),
        &mut Control::detached(),
    )
    .unwrap();
    let images = source
        .batches(Split::Validation, vec![(0..8).collect()], false, 0)
        .next()
        .unwrap()
        .unwrap()
        .images;
    (
        transfer_workbench::train::run::RunDir::latest_id(project).unwrap(),
        images,
    )
}

fn python(script: &str, args: &[&Path]) {
    let script = common::fixtures_dir().join("export").join(script);
    let output = Command::new(common::venv_python())
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Exports with `input`, checks the files, and compares Python's outputs with the app's on
/// the same inputs. Returns the export folder.
fn export_and_compare(project: &Path, id: &str, images: &Tensor, input: InputFormat) -> PathBuf {
    let out = project.join(format!("export-{input:?}"));
    let options = ExportOptions {
        out_dir: Some(out.clone()),
        input,
        ..ExportOptions::default()
    };
    let batch = VerificationBatch {
        images,
        origin: BatchOrigin::Caller("synthetic validation images".into()),
    };
    let report = export_run(project, id, &options, Some(batch)).unwrap();
    let verification = &report.metadata.verification;
    assert!(verification.passed, "{verification:?}");
    assert!(verification.max_abs_diff.unwrap() <= 1e-5);
    assert_eq!(verification.batch_sizes, vec![8, 1]);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["model.json", "model.pt"]);

    let mut model =
        TrainedModel::load(project, id, CheckpointChoice::BestOrLast, Device::Cpu).unwrap();
    let norm = normalization_of(&model.config.backbone);
    let raw = raw_inputs(images, input, norm).unwrap();
    let expected = model
        .logits(&app_images(&raw, input, norm).unwrap())
        .unwrap();
    let inputs = out.join("inputs.safetensors");
    let outputs = out.join("outputs.safetensors");
    Tensor::write_safetensors(&[("input", &raw)], &inputs).unwrap();
    python("check_export.py", &[&report.model_path, &inputs, &outputs]);
    let got = common::read_tensors(&outputs);
    let diff = common::max_abs_diff(&got["output"], &expected);
    let diff3 = common::max_abs_diff(&got["output_first3"], &expected.narrow(0, 0, 3));
    eprintln!("{input:?}: python vs app max abs diff {diff:.2e} (batch 8), {diff3:.2e} (batch 3)");
    assert!(diff <= 1e-5 && diff3 <= 1e-5, "{diff} {diff3}");
    std::fs::remove_file(&inputs).unwrap();
    std::fs::remove_file(&outputs).unwrap();
    out
}

/// A smooth RGB (or grey) test image with a bright square: `(width, height)`.
fn write_png(path: &Path, width: u32, height: u32, grey: bool, shift: u32) {
    let pixel = |x: u32, y: u32, c: u32| -> u8 {
        let square =
            x.abs_diff(width / 3 + shift) < width / 5 && y.abs_diff(height / 2) < height / 5;
        let base = (x * 97 / width + y * 61 / height + c * 40) as u8;
        if square { 230 } else { base }
    };
    if grey {
        image::GrayImage::from_fn(width, height, |x, y| image::Luma([pixel(x, y, 0)]))
            .save(path)
            .unwrap();
    } else {
        image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([pixel(x, y, 0), pixel(x, y, 1), pixel(x, y, 2)])
        })
        .save(path)
        .unwrap();
    }
}

/// The app's probabilities for `files` and Python's from the exported files alone.
fn app_and_python(project: &Path, id: &str, out: &Path, files: &[PathBuf]) -> (Tensor, Tensor) {
    let mut model =
        TrainedModel::load(project, id, CheckpointChoice::BestOrLast, Device::Cpu).unwrap();
    let c = &model.config;
    let LoadedImages {
        images,
        loaded,
        failed,
        ..
    } = load_images_with(files, &EvalTransform::of(c, WindowSetting::Auto)).unwrap();
    assert!(
        failed.is_empty() && loaded.len() == files.len(),
        "{failed:?}"
    );
    let app = model.probabilities(&images).unwrap();
    let json = out.join("predictions.json");
    let (model_pt, model_json) = (out.join("model.pt"), out.join("model.json"));
    let mut args: Vec<&Path> = vec![&model_pt, &model_json, &json];
    args.extend(files.iter().map(PathBuf::as_path));
    python("predict_files.py", &args);
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let flat: Vec<f32> = flatten(&value["probabilities"]);
    let py = Tensor::from_slice(&flat).view(app.size().as_slice());
    (app, py)
}

fn flatten(value: &serde_json::Value) -> Vec<f32> {
    match value {
        serde_json::Value::Array(items) => items.iter().flat_map(flatten).collect(),
        v => vec![v.as_f64().unwrap() as f32],
    }
}

#[test]
fn classification_export_round_trips_through_python() {
    let project = tempfile::tempdir().unwrap();
    let mut source = SyntheticSource::two_class(16, 8, 32, 5);
    let (id, images) = trained_run(project.path(), TaskKind::Classification, &mut source);
    for input in [InputFormat::Normalized, InputFormat::Uint8Nhwc] {
        let out = export_and_compare(project.path(), &id, &images, input);
        // 37 px is the working size of 32 px (no resize): a.png and b.png are reproduced
        // exactly; c.png and d.png (grey) are resized by PIL instead of the app's resizer.
        let files: Vec<PathBuf> = [
            ("a", 37, 37, false),
            ("b", 45, 37, false),
            ("c", 60, 50, false),
            ("d", 40, 44, true),
        ]
        .iter()
        .map(|&(name, w, h, grey)| {
            let path = project.path().join(format!("{name}.png"));
            write_png(&path, w, h, grey, w % 7);
            path
        })
        .collect();
        let (app, py) = app_and_python(project.path(), &id, &out, &files);
        let exact = common::max_abs_diff(&app.narrow(0, 0, 2), &py.narrow(0, 0, 2));
        let resized = common::max_abs_diff(&app, &py);
        eprintln!(
            "{input:?}: probabilities from files, max abs diff {exact:.2e} (no resize), {resized:.2e} (all)"
        );
        assert!(exact <= 1e-5, "{exact}");
        // PIL and the app's resizer round some pixels differently: measured 5e-5
        // (classification) and 1.4e-4 (segmentation); 1e-3 leaves a margin of seven.
        assert!(resized <= 1e-3, "{resized}");
        assert_eq!(
            Vec::<i64>::try_from(app.argmax(1, false)).unwrap(),
            Vec::<i64>::try_from(py.argmax(1, false)).unwrap()
        );
    }
}

#[test]
fn segmentation_export_round_trips_through_python() {
    let project = tempfile::tempdir().unwrap();
    let mut source = SyntheticDisks::new(8, 8, 32, 3);
    let (id, images) = trained_run(project.path(), TaskKind::Segmentation, &mut source);
    for input in [InputFormat::Normalized, InputFormat::Float01Nchw] {
        let out = export_and_compare(project.path(), &id, &images, input);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
        assert_eq!(meta["task"], "segmentation");
        assert_eq!(meta["output"]["shape"], serde_json::json!(["N", 1, 32, 32]));
        let files: Vec<PathBuf> = [
            ("s1", 32, 32, false),
            ("s2", 32, 32, true),
            ("s3", 48, 40, false),
        ]
        .iter()
        .map(|&(name, w, h, grey)| {
            let path = project.path().join(format!("{name}.png"));
            write_png(&path, w, h, grey, 2);
            path
        })
        .collect();
        let (app, py) = app_and_python(project.path(), &id, &out, &files);
        let exact = common::max_abs_diff(&app.narrow(0, 0, 2), &py.narrow(0, 0, 2));
        let resized = common::max_abs_diff(&app, &py);
        eprintln!(
            "{input:?}: per-pixel probabilities from files, max abs diff {exact:.2e} (no resize), {resized:.2e} (all)"
        );
        assert!(exact <= 1e-5, "{exact}");
        // PIL and the app's resizer round some pixels differently: measured 5e-5
        // (classification) and 1.4e-4 (segmentation); 1e-3 leaves a margin of seven.
        assert!(resized <= 1e-3, "{resized}");
        // Labels agree wherever the app is not within the tolerance of a tie.
        let margin = (app.select(1, 1) - 0.5).abs().gt(1e-3);
        let same = app.argmax(1, false).eq_tensor(&py.argmax(1, false));
        assert!(bool::try_from(same.logical_or(&margin.logical_not()).all()).unwrap());
    }
}

#[test]
fn missing_or_damaged_checkpoints_write_nothing() {
    use transfer_workbench::train::events::CheckpointKind;
    use transfer_workbench::train::run::RunDir;
    let project = tempfile::tempdir().unwrap();
    let split = serde_json::json!({"classes": ["a", "b"]});
    let run = RunDir::create(project.path(), &config(TaskKind::Classification), &split).unwrap();
    let out = project.path().join("out");
    let options = ExportOptions {
        out_dir: Some(out.clone()),
        ..ExportOptions::default()
    };
    let missing = export_run(project.path(), &run.id, &options, None).unwrap_err();
    assert!(matches!(missing, ExportError::Run(_)));
    assert!(
        missing.to_string().ends_with("last.safetensors"),
        "{missing}"
    );
    assert!(!out.exists());
    assert!(!run.dir.join("export").exists());

    std::fs::write(
        run.checkpoint_path(CheckpointKind::Best),
        b"not a checkpoint",
    )
    .unwrap();
    let options = ExportOptions {
        checkpoint: CheckpointChoice::Exactly(CheckpointKind::Best),
        ..options
    };
    let damaged = export_run(project.path(), &run.id, &options, None).unwrap_err();
    let message = damaged.to_string();
    assert!(
        message.contains("damaged") && message.ends_with("best.safetensors"),
        "{message}"
    );
    assert!(!out.exists());
}

/// A ViT export keeps the batch dimension free: traced at one batch size, verified at 8
/// and 1 (its reshapes and class token used to bake the traced batch size in).
#[test]
fn a_vit_export_verifies_at_other_batch_sizes() {
    let project = tempfile::tempdir().unwrap();
    let mut source = SyntheticSource::two_class(16, 8, 32, 6);
    let spec = JobSpec::new(
        project.path(),
        TrainConfig {
            backbone: "vit_tiny_16".into(),
            ..config(TaskKind::Classification)
        },
    );
    train(
        &spec,
        &mut source,
        &mut VecSink::default(),
        &mut Control::detached(),
    )
    .unwrap();
    let images = source
        .batches(Split::Validation, vec![(0..8).collect()], false, 0)
        .next()
        .unwrap()
        .unwrap()
        .images;
    let id = transfer_workbench::train::run::RunDir::latest_id(project.path()).unwrap();
    export_and_compare(project.path(), &id, &images, InputFormat::Normalized);
}
