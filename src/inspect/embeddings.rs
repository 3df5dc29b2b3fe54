//! One forward pass of a run's model over a split, giving each sample's pooled backbone
//! embedding and its logits; cached under `runs/<id>/inspect/<split>-<key>.safetensors`,
//! keyed by the split's fingerprint and the checkpoint's content, so reopening the
//! inspector costs nothing while neither changes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Device, Kind, Tensor};

use super::predictions::Predictions;
use super::{InspectError, Progress};
use crate::train::sampler::fixed_plan;
use crate::train::{BatchSource, CheckpointChoice, Split, TrainedModel};

/// Embeddings and logits of every sample of a split, in sample order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitOutputs {
    /// Row-major `[len x dim]` pooled backbone embeddings.
    pub embeddings: Vec<f32>,
    /// Embedding width.
    pub dim: usize,
    /// Row-major `[len x classes]` logits.
    pub logits: Vec<f32>,
    /// Number of classes.
    pub classes: usize,
    /// True class per sample.
    pub labels: Vec<i64>,
    /// The cache file.
    pub cache_path: PathBuf,
    /// Whether the cache file already existed.
    pub reused: bool,
    /// Why the computed outputs could not be stored in the cache (naming the file): the
    /// cache only saves time, so a full disk costs a recomputation next time, nothing more.
    pub not_stored: Option<String>,
}

impl SplitOutputs {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The embedding of sample `index`.
    pub fn embedding(&self, index: usize) -> Option<&[f32]> {
        self.embeddings
            .get(index * self.dim..(index + 1) * self.dim)
    }
}

/// A run's predictions on a split, with the embeddings they came from.
#[derive(Clone, Debug)]
pub struct SplitInspection {
    /// Per-sample predictions.
    pub predictions: Predictions,
    /// Embeddings and logits.
    pub outputs: SplitOutputs,
}

/// Loads run `run_id`'s best (else last) checkpoint and inspects `split` of `source`;
/// `Ok(None)` when stopped. Progress counts images.
pub fn inspect_split(
    project_dir: &Path,
    run_id: &str,
    source: &mut dyn BatchSource,
    split: Split,
    device: Device,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<SplitInspection>, InspectError> {
    let mut model = TrainedModel::load(project_dir, run_id, CheckpointChoice::BestOrLast, device)?;
    let Some(outputs) = split_outputs(&mut model, source, split, progress, stop)? else {
        return Ok(None);
    };
    let paths = (0..outputs.len())
        .map(|i| source.sample_path(split, i))
        .collect();
    let predictions = Predictions::from_logits(
        model.classes.clone(),
        source.sample_ids(split),
        paths,
        &outputs.labels,
        &outputs.logits,
    )?;
    Ok(Some(SplitInspection {
        predictions,
        outputs,
    }))
}

/// The embeddings and logits of every sample of `split` under `model`, from the run's
/// cache when it matches, else computed in sample order and cached; `Ok(None)` when stopped.
pub fn split_outputs(
    model: &mut TrainedModel,
    source: &mut dyn BatchSource,
    split: Split,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<SplitOutputs>, InspectError> {
    let path = cache_path(model, source, split)?;
    if path.is_file() {
        match read_cache(&path) {
            Ok(outputs) if outputs.labels == source.labels(split) => {
                let total = outputs.len();
                progress(total, total);
                return Ok(Some(outputs));
            }
            // A damaged or stale cache file is recomputed, never trusted.
            _ => std::fs::remove_file(&path)
                .map_err(InspectError::io("remove a damaged cache file", &path))?,
        }
    }
    let Some((embeddings, logits, labels)) = compute(model, source, split, progress, stop)? else {
        return Ok(None);
    };
    let not_stored = write_cache(&path, &embeddings, &logits, &labels)
        .err()
        .map(|e| format!("{e}; the results are kept in memory only"));
    let mut outputs = outputs_of(&embeddings, &logits, &labels, path, false)?;
    outputs.not_stored = not_stored;
    Ok(Some(outputs))
}

/// Pooled embeddings `[N x dim]` (one row per image) of normalised images `[N, 3, H, W]`,
/// e.g. a query image from outside the data set prepared with the run's eval transform.
pub fn embed_images(
    model: &mut TrainedModel,
    images: &Tensor,
) -> Result<Vec<Vec<f32>>, InspectError> {
    let embeddings = model.embeddings(images)?;
    let dim = embeddings.size().get(1).copied().unwrap_or(0).max(1) as usize;
    let flat = to_vec(&embeddings)?;
    Ok(flat.chunks(dim).map(<[f32]>::to_vec).collect())
}

/// The cache file of `split`: keyed by the split's fingerprint and the checkpoint's bytes.
fn cache_path(
    model: &TrainedModel,
    source: &dyn BatchSource,
    split: Split,
) -> Result<PathBuf, InspectError> {
    let bytes = std::fs::read(&model.checkpoint)
        .map_err(InspectError::io("read the checkpoint", &model.checkpoint))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&bytes);
    hasher.update(source.fingerprint(split).as_bytes());
    hasher.update(split.name().as_bytes());
    let key = hasher.finalize().to_hex();
    Ok(model.run.dir.join("inspect").join(format!(
        "{}-{}.safetensors",
        split.name(),
        &key.as_str()[..16]
    )))
}

type Computed = (Tensor, Tensor, Tensor);

fn compute(
    model: &mut TrainedModel,
    source: &mut dyn BatchSource,
    split: Split,
    progress: Progress<'_>,
    stop: &AtomicBool,
) -> Result<Option<Computed>, InspectError> {
    let total = source.labels(split).len();
    let plan = fixed_plan(total, model.config.batch_size);
    let (mut embeddings, mut logits, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut done = 0;
    progress(0, total);
    for batch in source.batches(split, plan, false, 0) {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let batch = batch?;
        let embedding = model.embeddings(&batch.images)?;
        let logit = match model.net.as_classifier() {
            Some(c) => tch::no_grad(|| c.head_logits(&embedding, false))?,
            None => {
                return Err(InspectError::Invalid(
                    "inspection of embeddings needs a classification run".into(),
                ));
            }
        };
        done += batch.targets.size().first().copied().unwrap_or(0) as usize;
        embeddings.push(embedding.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?);
        logits.push(logit.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?);
        labels.push(batch.targets.f_to_kind(Kind::Int64)?);
        progress(done, total);
    }
    if embeddings.is_empty() {
        return Err(InspectError::Invalid(format!(
            "the {} split has no samples",
            split.name()
        )));
    }
    Ok(Some((
        Tensor::f_cat(&embeddings, 0)?,
        Tensor::f_cat(&logits, 0)?,
        Tensor::f_cat(&labels, 0)?,
    )))
}

fn to_vec(tensor: &Tensor) -> Result<Vec<f32>, InspectError> {
    let flat = tensor
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?
        .f_flatten(0, -1)?;
    Ok(Vec::<f32>::try_from(&flat)?)
}

fn outputs_of(
    embeddings: &Tensor,
    logits: &Tensor,
    labels: &Tensor,
    cache_path: PathBuf,
    reused: bool,
) -> Result<SplitOutputs, InspectError> {
    let width = |t: &Tensor| t.size().get(1).copied().unwrap_or(0) as usize;
    Ok(SplitOutputs {
        embeddings: to_vec(embeddings)?,
        dim: width(embeddings),
        logits: to_vec(logits)?,
        classes: width(logits),
        labels: Vec::<i64>::try_from(&labels.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?)?,
        cache_path,
        reused,
        not_stored: None,
    })
}

fn write_cache(
    path: &Path,
    embeddings: &Tensor,
    logits: &Tensor,
    labels: &Tensor,
) -> Result<(), InspectError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(InspectError::io("create the inspect folder", dir))?;
    let named = [
        ("embeddings", embeddings),
        ("logits", logits),
        ("labels", labels),
    ];
    crate::atomic_file::write_with(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(std::io::Error::other)
    })
    .map_err(InspectError::io("write the inspect cache", path))
}

fn read_cache(path: &Path) -> Result<SplitOutputs, InspectError> {
    let (mut embeddings, mut logits, mut labels) = (None, None, None);
    for (name, tensor) in Tensor::read_safetensors(path)? {
        match name.as_str() {
            "embeddings" => embeddings = Some(tensor),
            "logits" => logits = Some(tensor),
            "labels" => labels = Some(tensor),
            _ => {}
        }
    }
    match (embeddings, logits, labels) {
        (Some(e), Some(l), Some(t))
            if e.size().first() == t.size().first() && l.size().first() == t.size().first() =>
        {
            outputs_of(&e, &l, &t, path.to_owned(), true)
        }
        _ => Err(InspectError::Invalid(format!(
            "expected matching 'embeddings', 'logits' and 'labels' in {}",
            path.display()
        ))),
    }
}
