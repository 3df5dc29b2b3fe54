//! The before-training scores of one backbone on a project: its frozen embeddings of the
//! training split (from the embedding cache a linear-probe run of the same settings reads,
//! else computed and stored there), scored by LogME, leave-one-out k-NN and a k-fold linear
//! probe, and the data-mismatch figure of its batch-norm layers. Estimates, not results.

use std::path::Path;
use std::time::Instant;

use tch::{Device, Kind};

use super::StudyError;
use super::knn::{DEFAULT_K, knn_accuracy};
use super::logme::logme;
use super::mismatch::{Mismatch, mismatch};
use super::probe_cv::{DEFAULT_FOLDS, probe_accuracy};
use crate::train::frozen_pass::FrozenPass;
use crate::train::net::Net;
use crate::train::sampler::fixed_plan;
use crate::train::source::{BatchSource, Split};
use crate::train::{ProjectSource, Strategy, TrainConfig, WeightsSpec};

/// Training images the mismatch figure looks at, at most.
const MISMATCH_IMAGES: usize = 256;

/// One backbone's scores before training.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackboneScores {
    /// The backbone.
    pub backbone: String,
    /// Training images scored.
    pub images: usize,
    /// LogME (higher is better; comparable between backbones on the same images).
    pub logme: f64,
    /// Leave-one-out k-NN accuracy on cosine similarity.
    pub knn_accuracy: f64,
    /// Stratified k-fold linear-probe accuracy.
    pub probe_accuracy: f64,
    /// The data-mismatch figure (`None`: the backbone has no batch norm).
    pub mismatch: Option<Mismatch>,
    /// Whether the embeddings came from the cache.
    pub cached: bool,
    /// The precision of the frozen pass ("bfloat16" or "float32").
    pub precision: String,
    /// Seconds for the embeddings (reading or computing) and for the scores.
    pub embedding_secs: f64,
    /// See `embedding_secs`.
    pub scoring_secs: f64,
}

/// The config a study's linear-probe run of `backbone` would have, from the project's
/// next-run settings `base`.
pub fn probe_config(base: &TrainConfig, backbone: &str) -> TrainConfig {
    TrainConfig {
        backbone: backbone.to_owned(),
        strategy: Strategy::LinearProbe,
        weights: WeightsSpec::Pretrained,
        ..base.clone()
    }
}

/// Scores `backbone` on the training split of the project at `project_dir`, with the
/// project's next-run settings `base` (classification projects).
pub fn score_backbone(
    project_dir: &Path,
    base: &TrainConfig,
    backbone: &str,
    device: Device,
) -> Result<BackboneScores, StudyError> {
    if base.task != crate::task::TaskKind::Classification {
        return Err(StudyError::Invalid(format!(
            "scores before training are made for classification projects; this is a {} \
             project",
            base.task.label()
        )));
    }
    let mut config = probe_config(base, backbone);
    config.validate()?;
    crate::train::cpu_runtime::prepare_cpu(config.threads());
    let mut source = ProjectSource::open_for_training(project_dir, &mut config)?;
    let classes = source.num_classes();
    let channels_last = config.use_channels_last(device == Device::Cpu);
    let mut model = Net::build(&config, classes, device, channels_last)?;
    let started = Instant::now();
    let dir = project_dir.join("cache").join("embeddings");
    let (cached, precision) = {
        let mut pass = FrozenPass::new(&config, device, channels_last, &mut model);
        let precision = pass.precision().to_owned();
        let cached = pass.split(&dir, &mut source, Split::Train, &mut || false)?;
        (cached, precision)
    };
    let cached = cached.ok_or_else(|| StudyError::Invalid("the embedding pass stopped".into()))?;
    let embedding_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let labels = Vec::<i64>::try_from(&cached.labels.f_to_kind(Kind::Int64)?)?;
    let features = &cached.embeddings;
    let logme = logme(features, &labels, classes)?;
    let knn_accuracy = knn_accuracy(features, &labels, classes, DEFAULT_K)?;
    let probe_accuracy = probe_accuracy(features, &labels, classes, DEFAULT_FOLDS, config.seed)?;
    let mismatch = training_mismatch(&mut model, &mut source, &config, device, channels_last)?;
    Ok(BackboneScores {
        backbone: backbone.to_owned(),
        images: labels.len(),
        logme,
        knn_accuracy,
        probe_accuracy,
        mismatch,
        cached: cached.reused,
        precision,
        embedding_secs,
        scoring_secs: started.elapsed().as_secs_f64(),
    })
}

/// The mismatch figure over the first [`MISMATCH_IMAGES`] training images.
fn training_mismatch(
    model: &mut Net,
    source: &mut ProjectSource,
    config: &TrainConfig,
    device: Device,
    channels_last: bool,
) -> Result<Option<Mismatch>, StudyError> {
    let Some(classifier) = model.as_classifier() else {
        return Ok(None);
    };
    let samples = source.labels(Split::Train).len().min(MISMATCH_IMAGES);
    let plan = fixed_plan(samples, config.batch_size);
    let batches = source.batches(Split::Train, plan, false, 0).map(|batch| {
        let images = batch?.images.f_to_device(device)?;
        Ok(if channels_last {
            crate::train::classifier::channels_last(&images)?
        } else {
            images
        })
    });
    mismatch(classifier.backbone(), batches)
}
