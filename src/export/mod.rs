//! Export of a trained run to TorchScript: the checkpoint's network traced on the CPU with
//! frozen weights and a free batch dimension (logits, per-pixel logits, or the pooled
//! embedding), optionally with the preprocessing baked in, a JSON metadata file beside it that
//! tells a deploying user everything needed to feed it, and a verification of every export
//! (the saved file reloaded and compared with the in-app model). Shared by the CLI's `export`
//! and the GUI's export dialog.
//!
//! Files: `<out>/model.pt` + `<out>/model.json` (`embedding.*` for an embedding-only model),
//! by default `<project>/runs/<id>/export/`. The model is written under a temp name and only
//! renamed once verification passed; a failed verification leaves `model.FAILED.pt` and
//! `model.FAILED.json` (with `"verification": {"passed": false, ...}`) and nothing that looks
//! complete. A missing or damaged checkpoint fails before anything is written.

pub mod metadata;
pub mod trace;
pub mod verify;

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use crate::train::project_source::ProjectSource;
use crate::train::run::EpochRecord;
use crate::train::{BatchSource, CheckpointChoice, Split, TrainError, TrainedModel};
pub use metadata::ExportMetadata;
pub use trace::{InputFormat, OutputKind};
pub use verify::Verification;

/// Largest difference tolerated between the exported and the in-app model's logits or
/// embeddings: absolute for outputs within ±1, else relative to their largest magnitude.
pub const TOLERANCE: f64 = 1e-5;

/// The largest difference allowed for decoded detections: scores, and box coordinates in
/// input pixels, of every row the app scores at least [`DETECTION_ROW_SCORE`] (the
/// exported module runs contiguous, the app channels-last: pixel coordinates carry that
/// rounding scaled by the output stride).
pub const DETECTION_TOLERANCE: f64 = 1e-3;

/// Rows of decoded detections scored below this are padding: not compared.
pub const DETECTION_ROW_SCORE: f64 = 0.01;

/// Images in a verification batch at most.
pub const MAX_VERIFICATION_IMAGES: usize = 8;

/// Failures of an export; file errors name the file last.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("could not load the run for export: {0}")]
    Run(#[from] TrainError),
    #[error("libtorch error while exporting: {0}")]
    Torch(#[from] tch::TchError),
    #[error("invalid export request: {0}")]
    Config(String),
    #[error("could not {action} ({source}): {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the export failed verification ({reason}); the files were kept as: {}", path.display())]
    VerificationFailed { reason: String, path: PathBuf },
}

impl ExportError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| ExportError::Io {
            action,
            path,
            source,
        }
    }
}

/// About the size of the traced network saved: its tensors' bytes (the trace keeps them as
/// constants), plus a tenth and a megabyte for code and the zip's own records.
fn saved_size_estimate(model: &TrainedModel) -> u64 {
    let tensors: u64 = model
        .net
        .model_tensors()
        .iter()
        .map(|(_, t)| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
        .sum();
    tensors + tensors / 10 + (1 << 20)
}

/// What to export and where.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportOptions {
    /// Which checkpoint (default: the best, else the last).
    pub checkpoint: CheckpointChoice,
    /// The output folder (default: `<project>/runs/<id>/export/`).
    pub out_dir: Option<PathBuf>,
    /// What the exported model takes: normalised images, or raw pixels with the
    /// preprocessing baked in.
    pub input: InputFormat,
    /// Logits, or the pooled embedding (classification runs).
    pub output: OutputKind,
}

/// Where a verification batch came from (recorded in the metadata).
#[derive(Clone, Debug, PartialEq)]
pub enum BatchOrigin {
    /// Images of the run's validation split.
    Validation,
    /// A batch the caller passed.
    Caller(String),
    /// Seeded random pixels, and why no images were available.
    Random { seed: u64, reason: String },
}

/// A batch of normalised images `[N, 3, S, S]` at the run's input size to verify with.
pub struct VerificationBatch<'a> {
    /// The images, normalised as the model expects them.
    pub images: &'a Tensor,
    /// Where they came from.
    pub origin: BatchOrigin,
}

/// A finished, verified export.
#[derive(Clone, Debug)]
pub struct ExportReport {
    /// The TorchScript file.
    pub model_path: PathBuf,
    /// The metadata file.
    pub metadata_path: PathBuf,
    /// What was written into the metadata file.
    pub metadata: ExportMetadata,
}

/// The default output folder of a run's export.
pub fn default_out_dir(project_dir: &Path, run_id: &str) -> PathBuf {
    crate::train::run::runs_dir(project_dir)
        .join(run_id)
        .join("export")
}

/// Exports run `run_id` of the project at `project_dir`, verifying the file on `batch` (or
/// on seeded random pixels without one). Returns the report of a passed export; a failed
/// verification keeps its files under `*.FAILED.*` names and returns
/// [`ExportError::VerificationFailed`].
pub fn export_run(
    project_dir: &Path,
    run_id: &str,
    options: &ExportOptions,
    batch: Option<VerificationBatch<'_>>,
) -> Result<ExportReport, ExportError> {
    export_run_with_progress(project_dir, run_id, options, batch, &mut |_| {})
}

/// The stages of an export, in order, as [`export_run_with_progress`] reports them.
pub const EXPORT_STAGES: [&str; 5] = [
    "loading the checkpoint",
    "reading the verification images",
    "computing the reference outputs",
    "tracing the model",
    "writing and verifying the file",
];

/// [`export_run`], calling `stage` with the index into [`EXPORT_STAGES`] of each stage as
/// it starts.
pub fn export_run_with_progress(
    project_dir: &Path,
    run_id: &str,
    options: &ExportOptions,
    batch: Option<VerificationBatch<'_>>,
    stage: &mut dyn FnMut(usize),
) -> Result<ExportReport, ExportError> {
    stage(0);
    let mut model = TrainedModel::load(project_dir, run_id, options.checkpoint, Device::Cpu)?;
    if options.output == OutputKind::Embedding && model.net.as_classifier().is_none() {
        return Err(ExportError::Config(
            "an embedding-only model can be exported from classification runs".into(),
        ));
    }
    // A detector's export decodes its boxes (no NMS op needed in plain libtorch).
    let detections;
    let options = if options.output == OutputKind::Logits
        && crate::data::targets::data_targets(model.config.task).boxes()
    {
        detections = ExportOptions {
            output: OutputKind::Detections,
            ..options.clone()
        };
        &detections
    } else {
        options
    };
    let size_px = i64::from(model.config.input_size_px);
    let normalization = trace::normalization_of(&model);
    let random;
    stage(1);
    let (images, origin) = match batch {
        Some(b) => (b.images, b.origin),
        None => match validation_images(project_dir, &model) {
            Ok(images) => {
                random = images;
                (&random, BatchOrigin::Validation)
            }
            Err(reason) => {
                let seed = model.config.seed;
                random =
                    trace::random_batch(MAX_VERIFICATION_IMAGES, size_px, seed, normalization)?;
                (&random, BatchOrigin::Random { seed, reason })
            }
        },
    };
    let images = trace::check_batch(images, size_px)?;
    let inputs = trace::raw_inputs(&images, options.input, normalization)?;
    stage(2);
    let probes = verify::reference_outputs(&mut model, &inputs, options, normalization)?;
    stage(3);
    let module = trace::trace(&mut model, options, normalization, size_px)?;
    stage(4);

    let out_dir = options
        .out_dir
        .clone()
        .unwrap_or_else(|| default_out_dir(project_dir, run_id));
    std::fs::create_dir_all(&out_dir)
        .map_err(ExportError::io("create the export folder", &out_dir))?;
    let stem = options.output.file_stem();
    let tmp = out_dir.join(format!(".{stem}.pt.{}.tmp", std::process::id()));
    // libtorch aborts the process when the disk fills during `save`: check the room first.
    let needed = crate::disk_space::ensure_room(&out_dir, saved_size_estimate(&model));
    if let Err(e) = needed {
        let model_path = out_dir.join(format!("{stem}.pt"));
        return Err(ExportError::io("write the exported model", &model_path)(e));
    }
    if let Err(e) = module.save(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        let model_path = out_dir.join(format!("{stem}.pt"));
        return Err(ExportError::io("write the exported model", &model_path)(
            std::io::Error::other(e.to_string()),
        ));
    }
    let verification = verify::verify_file(&tmp, &probes, &origin, options.output);
    let history = model.run.read_history()?;
    let record = checkpoint_record(&history, &model);
    let embedding_dim = probes
        .first()
        .and_then(|p| p.expected.size().get(1).copied())
        .filter(|_| options.output == OutputKind::Embedding);
    let metadata = metadata::build(
        project_dir,
        &model,
        options,
        record,
        embedding_dim,
        &verification,
    )?;
    let json = serde_json::to_vec_pretty(&metadata)
        .map_err(|e| ExportError::Config(format!("the metadata does not serialise: {e}")))?;
    let (model_path, metadata_path) = if verification.passed {
        (
            out_dir.join(format!("{stem}.pt")),
            out_dir.join(format!("{stem}.json")),
        )
    } else {
        (
            out_dir.join(format!("{stem}.FAILED.pt")),
            out_dir.join(format!("{stem}.FAILED.json")),
        )
    };
    // A failed metadata write leaves the previous export's pair as it was; a failed rename
    // after it removes the new metadata, which would describe a model that is not there.
    if let Err(e) = crate::atomic_file::write(&metadata_path, &json) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ExportError::io("write the export metadata", &metadata_path)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, &model_path) {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&metadata_path);
        return Err(ExportError::io("write the exported model", &model_path)(e));
    }
    if !verification.passed {
        return Err(ExportError::VerificationFailed {
            reason: verification.message,
            path: model_path,
        });
    }
    Ok(ExportReport {
        model_path,
        metadata_path,
        metadata,
    })
}

/// Up to [`MAX_VERIFICATION_IMAGES`] images of the run's frozen validation split through the
/// app's evaluation transform, or why there are none.
fn validation_images(project_dir: &Path, model: &TrainedModel) -> Result<Tensor, String> {
    let mut source = ProjectSource::open_run(project_dir, &model.run, &model.config, None)
        .map_err(|e| e.to_string())?;
    let n = source
        .labels(Split::Validation)
        .len()
        .min(MAX_VERIFICATION_IMAGES);
    if n == 0 {
        return Err("the project has no validation images".into());
    }
    let batch = source
        .batches(Split::Validation, vec![(0..n).collect()], false, 0)
        .next()
        .ok_or_else(|| "the validation images did not load".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(batch.images)
}

/// The history record of the epoch the checkpoint was saved at (the best epoch for the
/// best checkpoint), else the last one.
fn checkpoint_record<'a>(
    history: &'a [EpochRecord],
    model: &TrainedModel,
) -> Option<&'a EpochRecord> {
    let best_epoch = model
        .checkpoint
        .file_stem()
        .is_some_and(|s| s == "best")
        .then_some(model.state.best.map(|(epoch, _)| epoch))
        .flatten();
    let epoch = best_epoch.or_else(|| model.state.epochs_done.checked_sub(1));
    epoch
        .and_then(|e| history.iter().rev().find(|r| r.epoch == e))
        .or_else(|| history.last())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::events::CheckpointKind;
    use crate::train::net::Net;
    use crate::train::run::{CheckpointState, RunDir};
    use crate::train::{TrainConfig, WeightsSpec};

    /// A run with a best checkpoint of a freshly initialised resnet18 classifier (no training).
    fn untrained_run(project: &Path) -> String {
        let config = TrainConfig {
            backbone: "resnet18".into(),
            weights: WeightsSpec::Random,
            input_size_px: 32,
            threads: Some(1),
            ..TrainConfig::default()
        };
        let split = serde_json::json!({"classes": ["cat", "dog", "eel"], "train": {"samples": 0}});
        let run = RunDir::create(project, &config, &split).unwrap();
        let net = Net::build(&config, 3, Device::Cpu, true).unwrap();
        run.save_checkpoint(
            CheckpointKind::Best,
            &net.model_tensors(),
            &CheckpointState::default(),
        )
        .unwrap();
        run.id
    }

    #[test]
    fn a_traced_model_accepts_other_batch_sizes_and_matches_the_app() {
        let project = tempfile::tempdir().unwrap();
        let id = untrained_run(project.path());
        let mut model = TrainedModel::load(
            project.path(),
            &id,
            CheckpointChoice::BestOrLast,
            Device::Cpu,
        )
        .unwrap();
        let norm = trace::normalization_of(&model);
        let images = trace::random_batch(5, 32, 1, norm).unwrap();
        let expected = model.logits(&images).unwrap();
        let options = ExportOptions::default();
        let module = trace::trace(&mut model, &options, norm, 32).unwrap();
        // Traced at batch size 2; run at 1 and 5.
        for n in [1, 5] {
            let out = module.forward_ts(&[images.narrow(0, 0, n)]).unwrap();
            let diff = (&out - expected.narrow(0, 0, n))
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff <= TOLERANCE, "batch {n}: {diff}");
        }
        // The weights are constants of the graph: the module has no parameters to train.
        assert!(module.named_parameters().unwrap().is_empty());
    }

    #[test]
    fn a_verification_against_wrong_outputs_fails_and_names_the_difference() {
        let project = tempfile::tempdir().unwrap();
        let id = untrained_run(project.path());
        let mut model = TrainedModel::load(
            project.path(),
            &id,
            CheckpointChoice::BestOrLast,
            Device::Cpu,
        )
        .unwrap();
        let norm = trace::normalization_of(&model);
        let images = trace::random_batch(3, 32, 2, norm).unwrap();
        let options = ExportOptions::default();
        let mut probes = verify::reference_outputs(&mut model, &images, &options, norm).unwrap();
        let module = trace::trace(&mut model, &options, norm, 32).unwrap();
        let path = project.path().join("m.pt");
        module.save(&path).unwrap();
        let origin = BatchOrigin::Random {
            seed: 2,
            reason: "test".into(),
        };
        let good = verify::verify_file(&path, &probes, &origin, OutputKind::Logits);
        assert!(good.passed, "{good:?}");
        assert_eq!(good.batch_sizes, vec![3, 1]);
        probes[1].expected = &probes[1].expected + 1e-3;
        let bad = verify::verify_file(&path, &probes, &origin, OutputKind::Logits);
        assert!(!bad.passed);
        assert!(bad.max_abs_diff.unwrap() > TOLERANCE, "{bad:?}");
    }
}
