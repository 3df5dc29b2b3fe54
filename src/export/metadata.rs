//! The JSON file beside an exported model: everything a deploying user needs to feed it and
//! read its output (task, class names in index order, input size and layout, channel order,
//! the evaluation transform with its resize filter, normalisation, windowing of 16-bit and
//! DICOM images), where it came from (backbone, run, checkpoint, training data, validation
//! metrics) and the export's own verification result.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::trace::{InputFormat, OutputKind, normalization_of};
use super::verify::Verification;
use super::{ExportError, ExportOptions};
use crate::data::targets::{EvalFit, data_targets};
use crate::data::window::WindowSetting;
use crate::train::config::DetectorHead;
use crate::train::run::EpochRecord;
use crate::train::{EpochMetrics, TrainConfig, TrainedModel, train_task};

/// Version of the metadata layout.
pub const METADATA_VERSION: u32 = 1;

/// The metadata file's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportMetadata {
    /// Always `transfer-workbench export`.
    pub format: String,
    /// [`METADATA_VERSION`].
    pub version: u32,
    /// The app version that wrote it.
    pub app_version: String,
    /// `classification`, `segmentation` or `detection`.
    pub task: String,
    /// Class names in index order (segmentation: background first).
    pub classes: Vec<String>,
    /// What the module takes.
    pub input: InputSpec,
    /// What the module returns.
    pub output: OutputSpec,
    /// How an image file becomes the module's input.
    pub preprocessing: PreprocessingSpec,
    /// The backbone's name.
    pub backbone: String,
    /// The run and checkpoint exported.
    pub run: RunSpec,
    /// The run's frozen split summary (sample counts, fingerprints, class names).
    pub training_data: serde_json::Value,
    /// The validation metrics of the checkpoint's epoch, if the history has them.
    pub validation_metrics: Option<ValidationSpec>,
    /// The export's verification result.
    pub verification: Verification,
}

/// The module's input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// `normalized`, `uint8_nhwc` or `float01_nchw`.
    pub format: InputFormat,
    /// `float32` or `uint8`.
    pub dtype: String,
    /// The shape, `N` free: `["N", 3, S, S]` or `["N", S, S, 3]`.
    pub shape: Vec<serde_json::Value>,
    /// Height and width in pixels.
    pub size_px: [u32; 2],
    /// Always `RGB`.
    pub channel_order: String,
    /// What the values are: normalised, `[0, 1]`, or `0..255`.
    pub value_range: String,
}

/// The module's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// `logits` or `embedding`.
    pub kind: OutputKind,
    /// The shape, `N` free.
    pub shape: Vec<serde_json::Value>,
    /// How to turn it into probabilities: `softmax over dim 1`, `sigmoid (one foreground
    /// channel; background = 1 - p)`, or `none`.
    pub probabilities: String,
}

/// How an image file becomes the module's input (the app's evaluation transform).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreprocessingSpec {
    /// Whether scaling and normalisation are inside the module.
    pub baked_in: bool,
    /// Decoding: greyscale replicated to RGB, alpha dropped, EXIF orientation applied.
    pub decode: String,
    /// `shorter_side` (classification) or `exact` (segmentation).
    pub resize_mode: String,
    /// The resize target: shorter side `[s]` or `[width, height]`.
    pub resize_px: Vec<u32>,
    /// The resize filter.
    pub resize_filter: String,
    /// Centre crop side after resizing (classification), the offsets rounded down.
    pub center_crop_px: Option<u32>,
    /// Pixel values are divided by this before normalising.
    pub scale: f32,
    /// Per-channel mean and std (R, G, B): `(value / scale - mean) / std`.
    pub mean: [f32; 3],
    /// See `mean`.
    pub std: [f32; 3],
    /// The intensity window of 16-bit and DICOM images (the project's setting; absent when
    /// the project file could not be read).
    pub window: Option<WindowSetting>,
    /// How the window is applied.
    pub window_note: String,
}

/// The run and checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The run id.
    pub id: String,
    /// The checkpoint file name.
    pub checkpoint: String,
    /// Epochs completed at the checkpoint.
    pub epochs_done: usize,
    /// The run's frozen config.
    pub config: TrainConfig,
}

/// Validation metrics of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationSpec {
    /// The 0-based epoch.
    pub epoch: usize,
    /// The metrics.
    pub metrics: EpochMetrics,
}

fn input_spec(format: InputFormat, size_px: u32) -> InputSpec {
    let s = serde_json::Value::from(size_px);
    let n = serde_json::Value::from("N");
    let (dtype, shape, value_range) = match format {
        InputFormat::Normalized => (
            "float32",
            vec![n, 3.into(), s.clone(), s],
            "normalised: (pixel / 255 - mean) / std",
        ),
        InputFormat::Float01Nchw => (
            "float32",
            vec![n, 3.into(), s.clone(), s],
            "[0, 1]: pixel / 255",
        ),
        InputFormat::Uint8Nhwc => ("uint8", vec![n, s.clone(), s, 3.into()], "0..255"),
    };
    InputSpec {
        format,
        dtype: dtype.into(),
        shape,
        size_px: [size_px, size_px],
        channel_order: "RGB".into(),
        value_range: value_range.into(),
    }
}

fn output_spec(model: &TrainedModel, kind: OutputKind, embedding_dim: Option<i64>) -> OutputSpec {
    let n = serde_json::Value::from("N");
    let s = serde_json::Value::from(model.config.input_size_px);
    let classes = model.classes.len();
    let layout = train_task(model.config.task).output_layout(classes);
    let (shape, probabilities) = match kind {
        OutputKind::Embedding => (vec![n, embedding_dim.unwrap_or(-1).into()], "none"),
        OutputKind::Logits if layout.per_pixel => (
            vec![n, layout.channels.into(), s.clone(), s],
            layout.probabilities,
        ),
        OutputKind::Logits => (vec![n, layout.channels.into()], layout.probabilities),
        OutputKind::Detections => (
            vec![
                n,
                crate::train::detection::TOP_K.into(),
                crate::train::detection::PACKED_FIELDS.into(),
            ],
            match model.config.detector {
                DetectorHead::CenterNet => {
                    "each row: x0, y0, x1, y1 in pixels of the S x S input (multiply x by the \
                     image's width / S and y by its height / S for the image's own pixels), \
                     score in [0, 1] (sigmoid of the class heatmap at the object's centre), \
                     class index (float); rows best first, always K of them: keep rows whose \
                     score is at least the threshold (the app shows 0.3); no NMS is needed"
                }
                DetectorHead::Yolo => {
                    "each row: x0, y0, x1, y1 in pixels of the S x S input (multiply x by the \
                     image's width / S and y by its height / S for the image's own pixels), \
                     score in [0, 1] (objectness x class probability), class index (float); \
                     rows best first, always K of them, same-class boxes overlapping a better \
                     one by IoU > 0.45 already suppressed (score 0): keep rows whose score is \
                     at least the threshold (the app shows 0.3)"
                }
            },
        ),
    };
    OutputSpec {
        kind,
        shape,
        probabilities: probabilities.into(),
    }
}

fn preprocessing_spec(
    model: &TrainedModel,
    options: &ExportOptions,
    window: Option<WindowSetting>,
) -> Result<PreprocessingSpec, ExportError> {
    let size = model.config.input_size_px;
    let normalization = normalization_of(model);
    // `LoaderConfig::working_size` of the evaluation transform.
    let (resize_mode, resize_px, center_crop_px) = match data_targets(model.config.task).eval_fit()
    {
        EvalFit::Stretch => ("exact", vec![size, size], None),
        EvalFit::CentreCrop => {
            let fraction = model.config.eval_crop_fraction;
            let shorter = crate::data::loader::eval_resize_px(size, fraction);
            ("shorter_side", vec![shorter], Some(size))
        }
    };
    Ok(PreprocessingSpec {
        baked_in: options.input.has_preprocessing(),
        decode: "8-bit RGB; greyscale replicated to 3 channels; alpha dropped; JPEG EXIF orientation applied".into(),
        resize_mode: resize_mode.into(),
        resize_px,
        resize_filter: "bilinear with antialiasing (triangle filter widened by the scale factor, as PIL Image.BILINEAR / torchvision Resize on PIL images); the other side rounded to nearest; no resize when the size already matches".into(),
        center_crop_px,
        scale: 255.0,
        mean: normalization.mean,
        std: normalization.std,
        window,
        window_note: "16-bit and DICOM images: values (after the DICOM rescale) are mapped linearly from [center - width/2, center + width/2] to 0..255, clamped; Auto uses the DICOM window tags, else the 0.5 and 99.5 percentiles of the image".into(),
    })
}

/// The metadata of an export of `model` with `options` and its `verification`.
pub fn build(
    project_dir: &Path,
    model: &TrainedModel,
    options: &ExportOptions,
    record: Option<&EpochRecord>,
    embedding_dim: Option<i64>,
    verification: &Verification,
) -> Result<ExportMetadata, ExportError> {
    let window = crate::project::load_project(project_dir)
        .ok()
        .map(|p| p.dataset.window);
    let task = model.config.task.label();
    Ok(ExportMetadata {
        format: "transfer-workbench export".into(),
        version: METADATA_VERSION,
        app_version: env!("CARGO_PKG_VERSION").into(),
        task: task.into(),
        classes: model.classes.clone(),
        input: input_spec(options.input, model.config.input_size_px),
        output: output_spec(model, options.output, embedding_dim),
        preprocessing: preprocessing_spec(model, options, window)?,
        backbone: model.config.backbone.clone(),
        run: RunSpec {
            id: model.run.id.clone(),
            checkpoint: model
                .checkpoint
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            epochs_done: model.state.epochs_done,
            config: model.config.clone(),
        },
        training_data: model.run.read_split()?,
        validation_metrics: record.map(|r| ValidationSpec {
            epoch: r.epoch,
            metrics: r.validation.clone(),
        }),
        verification: verification.clone(),
    })
}
