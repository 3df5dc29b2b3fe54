//! Embedding-extraction benchmark (not a timed test): pooled embeddings of pretrained
//! MobileNetV2 and EfficientNet-Lite0 at 224 px, batch 32, on fixed random normalised
//! images. Ours: the frozen bfloat16 copy of the backbone the linear probe uses
//! (`Classifier::bf16_backbone`: bf16 but for its first layers, `model::precision`) in
//! channels-last, inputs made channels-last (and bf16 from the first bf16 layer on) per
//! batch, embeddings cast back to f32; PyTorch (`torch_embed_speed.py`): eager under
//! `torch.inference_mode()` with `torch.autocast("cpu", dtype=torch.bfloat16)` and
//! channels-last. Interleaved for `ROUNDS` rounds; prints images/s (median) of both and the
//! ratio. Then the top-1 agreement of bf16 with float32 on real images (the ImageNet head,
//! the eval transform; 500 Fashion-MNIST PNGs replicated to RGB plus the sample photos)
//! for both sides, and the agreement of our float32 top-1 with PyTorch's.
//!
//! Run: `cargo bench --bench embed_speed`. Environment: `TW_THREADS` (default: physical
//! cores), `TW_BATCHES` timed batches per measurement (default 4, after one warm-up),
//! `TW_ROUNDS` (default 3), `TW_AGREEMENT_IMAGES` (default 500), `TW_PYTHON`.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use common::probe_agreement::{Probe, fashion_mnist, share_equal};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use transfer_workbench::data::window::WindowSetting;
use transfer_workbench::model::{
    Backbone, BackboneOutput, WeightsChoice, load_backbone, precision,
};
use transfer_workbench::train::classifier::{Classifier, channels_last, to_channels_last};
use transfer_workbench::train::project_source::{EvalTransform, load_images_with};
use transfer_workbench::train::{TrainConfig, WeightsSpec};

const BATCH: i64 = 32;
const SIZE_PX: i64 = 224;
const MODELS: [&str; 2] = ["mobilenet_v2", "efficientnet_lite0"];

fn main() -> Result<()> {
    let threads = common::threads();
    let batches = common::env_count("TW_BATCHES", 4);
    let rounds = common::env_count("TW_ROUNDS", 3);
    let tuned = common::prepare_ours(threads);
    println!(
        "embedding extraction at {SIZE_PX} px, batch {BATCH}, {threads} intra-op thread(s) on \
         both sides, {batches} timed batches after 1 warm-up, median of {rounds} interleaved \
         rounds; our allocator tuning {}",
        if tuned { "on" } else { "off" }
    );
    let scratch = tempfile::tempdir()?;
    let paths = agreement_paths(common::env_count("TW_AGREEMENT_IMAGES", 500))?;
    let probe_train = common::env_count("TW_PROBE_TRAIN", 1000);
    let probe_test = common::env_count("TW_PROBE_TEST", 1000);
    let mut summary = Vec::new();
    for name in MODELS {
        let speed = speed(name, batches, rounds, threads)?;
        let agreement = agreement(name, &paths, scratch.path(), threads)?;
        let probe = probe_agreement(name, probe_train, probe_test)?;
        let line = format!("{name}: {speed}; {agreement}; {probe}");
        println!("{line}");
        summary.push(line);
    }
    println!("summary ({threads} threads):");
    for line in summary {
        println!("  {line}");
    }
    Ok(())
}

/// The interleaved throughput measurement of one model, as a report line.
fn speed(name: &str, batches: usize, rounds: usize, threads: usize) -> Result<String> {
    let config = TrainConfig {
        backbone: name.into(),
        weights: WeightsSpec::Pretrained,
        ..TrainConfig::default()
    };
    let classifier = Classifier::build(&config, 10, Device::Cpu)?;
    let (vs, backbone) = classifier.bf16_backbone()?;
    to_channels_last(&vs)?;
    let images = Tensor::f_randn([BATCH, 3, SIZE_PX, SIZE_PX], (Kind::Float, Device::Cpu))?;
    let _warm_up = embed_batch(backbone.as_ref(), &images)?;
    let (mut ours, mut torch, mut torch_same) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        ours.push(ours_images_per_s(backbone.as_ref(), &images, batches)?);
        torch.push(torch_images_per_s(name, batches, threads, &[])?);
        let same = &common::SAME_ALLOCATOR_ENV;
        torch_same.push(torch_images_per_s(name, batches, threads, same)?);
        println!(
            "  {name} round {round}: ours {:.1}, PyTorch {:.1}, PyTorch with our allocator \
             settings {:.1} images/s",
            ours[round - 1],
            torch[round - 1],
            torch_same[round - 1]
        );
    }
    let (o, t, s) = (
        common::median(&ours),
        common::median(&torch),
        common::median(&torch_same),
    );
    Ok(format!(
        "ours (bf16 copy, channels-last) {o:.1} images/s, PyTorch (autocast bf16, \
         channels-last) {t:.1} images/s, ratio {:.2}x (target >= 1.0x); for reference PyTorch \
         with our allocator settings {s:.1} ({:.2}x)",
        o / t,
        o / s
    ))
}

/// One batch as the probe runs it: the loader's contiguous f32 batch made channels-last and
/// bf16, the frozen copy's pooled embedding, back to f32.
fn embed_batch(backbone: &dyn Backbone, images: &Tensor) -> Result<Tensor> {
    let images = channels_last(images)?;
    let images = precision::inference_input(&images, backbone.info().name)?;
    let out = tch::no_grad(|| backbone.forward_t(&images, false))?;
    Ok(out.embedding.f_to_kind(Kind::Float)?)
}

fn ours_images_per_s(backbone: &dyn Backbone, images: &Tensor, batches: usize) -> Result<f64> {
    let cpu_start = common::process_cpu_seconds();
    let start = Instant::now();
    let mut checksum = 0.0;
    for _ in 0..batches {
        checksum += embed_batch(backbone, images)?.f_double_value(&[0, 0])?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let count = batches as f64 * BATCH as f64;
    println!(
        "    ours: {:.1} ms CPU per image (checksum {checksum:.3})",
        1000.0 * (common::process_cpu_seconds() - cpu_start) / count
    );
    Ok(count / seconds)
}

fn torch_images_per_s(
    name: &str,
    batches: usize,
    threads: usize,
    env: &[(&str, &str)],
) -> Result<f64> {
    let args = torch_args(name, batches, threads);
    let out = common::run_python_with_env("torch_embed_speed.py", &args, env)?;
    anyhow::ensure!(
        common::field(&out, "threads")? as usize == threads,
        "PyTorch used another thread count: {out}"
    );
    println!(
        "    PyTorch: {:.1} ms CPU per image",
        common::field(&out, "cpu_ms_per_image")?
    );
    common::field(&out, "images_per_s")
}

fn torch_args(name: &str, batches: usize, threads: usize) -> Vec<String> {
    [
        name,
        "--batch",
        &BATCH.to_string(),
        "--size",
        &SIZE_PX.to_string(),
        "--batches",
        &batches.to_string(),
        "--threads",
        &threads.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The first `count` Fashion-MNIST PNGs of the asset cache (sorted) and the sample photos.
fn agreement_paths(count: usize) -> Result<Vec<PathBuf>> {
    let assets = common::home().join(".cache/transfer-workbench/assets");
    let root = assets.join("data/fashion_mnist");
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("no Fashion-MNIST images: {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    pngs.truncate(count);
    let photos = assets.join("samples/photos");
    let mut extra: Vec<PathBuf> = std::fs::read_dir(&photos)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    extra.sort();
    pngs.extend(extra);
    Ok(pngs)
}

/// Top-1 agreement (ImageNet head) of the bf16 copy with float32 on the real images, ours
/// and PyTorch's, and of our float32 top-1 with PyTorch's, as a report fragment.
fn agreement(name: &str, paths: &[PathBuf], scratch: &Path, threads: usize) -> Result<String> {
    let fp32 = load_backbone(name, true, &WeightsChoice::Pretrained, Device::Cpu)?;
    let transform = EvalTransform {
        size_px: SIZE_PX as u32,
        normalization: fp32.model.info().normalization,
        window: WindowSetting::Auto,
        fit: transfer_workbench::data::targets::EvalFit::CentreCrop,
        crop_fraction: TrainConfig::default().eval_crop_fraction,
    };
    let loaded = load_images_with(paths, &transform)?;
    anyhow::ensure!(
        loaded.failed.is_empty(),
        "images failed: {:?}",
        loaded.failed
    );
    let bf16 = bf16_copy(&fp32.vs, name, true)?;
    let ours_fp32 = top1(fp32.model.as_ref(), &loaded.images, Kind::Float)?;
    let ours_bf16 = top1(bf16.1.as_ref(), &loaded.images, Kind::BFloat16)?;
    let probe_path = top1_f32_head(bf16.1.as_ref(), &fp32.vs, &loaded.images)?;
    let file = scratch.join(format!("{name}.safetensors"));
    Tensor::write_safetensors(&[("images", &loaded.images)], &file)?;
    let mut args = torch_args(name, 1, threads);
    args.extend(["--images".to_string(), file.display().to_string()]);
    let out = common::run_python("torch_embed_speed.py", &args)?;
    let torch_fp32: Vec<i64> = out["top1_fp32"]
        .as_array()
        .context("no top1_fp32")?
        .iter()
        .filter_map(|v| v.as_i64())
        .collect();
    Ok(format!(
        "top-1 agreement bf16 vs fp32 on {} real images: ours {:.1}% (target >= 99%), ours with \
         the bf16 embedding through an fp32 head (the probe's path) {:.1}%, PyTorch autocast \
         {:.1}%; our fp32 top-1 = PyTorch's fp32 top-1 on {:.1}%",
        ours_fp32.len(),
        100.0 * share_equal(&ours_fp32, &ours_bf16),
        100.0 * share_equal(&ours_fp32, &probe_path),
        100.0 * common::field(&out, "agreement")?,
        100.0 * share_equal(&ours_fp32, &torch_fp32)
    ))
}

/// A bf16 channels-last copy of a backbone with its ImageNet head, made as
/// `Classifier::bf16_backbone` makes the probe's copy.
fn bf16_copy(
    source: &VarStore,
    name: &str,
    imagenet_head: bool,
) -> Result<(VarStore, Box<dyn Backbone>)> {
    let mut copy = load_backbone(name, imagenet_head, &WeightsChoice::Random, Device::Cpu)?;
    copy.vs.copy(source)?;
    precision::to_inference_bf16(&mut copy.vs, name)?;
    copy.vs.freeze();
    to_channels_last(&copy.vs)?;
    Ok((copy.vs, copy.model))
}

/// The ImageNet top-1 class of every image, run in `kind` and channels-last by batches.
fn top1(model: &dyn Backbone, images: &Tensor, kind: Kind) -> Result<Vec<i64>> {
    let mut classes = Vec::new();
    by_batches(model, images, kind, |out| {
        let logits = out.logits.context("the model has no ImageNet head")?;
        let best = logits.f_to_kind(Kind::Float)?.f_argmax(1, false)?;
        classes.extend(Vec::<i64>::try_from(&best)?);
        Ok(())
    })?;
    Ok(classes)
}

/// The ImageNet top-1 class from the bf16 backbone's embedding cast to f32 and passed
/// through the float32 head of `fp32` (its one 2-D variable with 1000 rows, and the bias).
fn top1_f32_head(bf16: &dyn Backbone, fp32: &VarStore, images: &Tensor) -> Result<Vec<i64>> {
    let vars = fp32.variables();
    let (key, weight) = vars
        .iter()
        .find(|(_, v)| v.dim() == 2 && v.size()[0] == 1000)
        .context("no ImageNet head")?;
    let bias = vars.get(&key.replace("weight", "bias"));
    let n = images.size()[0];
    let mut classes = Vec::new();
    for start in (0..n).step_by(BATCH as usize) {
        let batch = images.f_narrow(0, start, BATCH.min(n - start))?;
        let embedding = embed_batch(bf16, &batch)?;
        let logits = tch::no_grad(|| embedding.f_linear(weight, bias))?;
        classes.extend(Vec::<i64>::try_from(&logits.f_argmax(1, false)?)?);
    }
    Ok(classes)
}

/// The task-level check: a linear probe on Fashion-MNIST embeddings (the eval transform at
/// 224 px), float32 backbone against the bf16 copy, as a report fragment.
fn probe_agreement(name: &str, train: usize, test: usize) -> Result<String> {
    let fp32 = load_backbone(name, false, &WeightsChoice::Pretrained, Device::Cpu)?;
    let transform = EvalTransform {
        size_px: SIZE_PX as u32,
        normalization: fp32.model.info().normalization,
        window: WindowSetting::Auto,
        fit: transfer_workbench::data::targets::EvalFit::CentreCrop,
        crop_fraction: 1.0,
    };
    let (train_set, test_set) = fashion_mnist(train, test)?;
    let bf16 = bf16_copy(&fp32.vs, name, false)?;
    let mut embeddings = Vec::new();
    for set in [&train_set, &test_set] {
        let loaded = load_images_with(&set.paths, &transform)?;
        anyhow::ensure!(loaded.failed.is_empty(), "failed: {:?}", loaded.failed);
        embeddings.push((
            embed_all(fp32.model.as_ref(), &loaded.images, Kind::Float)?,
            embed_all(bf16.1.as_ref(), &loaded.images, Kind::BFloat16)?,
        ));
    }
    let [(train_fp32, train_bf16), (test_fp32, test_bf16)] =
        <[(Tensor, Tensor); 2]>::try_from(embeddings).map_err(|_| anyhow::anyhow!("two sets"))?;
    let probe = Probe::fit(&train_fp32, &train_set.labels, 10)?;
    let on_fp32 = probe.predict(&test_fp32)?;
    let on_bf16 = probe.predict(&test_bf16)?;
    let bf16_probe = Probe::fit(&train_bf16, &train_set.labels, 10)?;
    let bf16_on_bf16 = bf16_probe.predict(&test_bf16)?;
    Ok(format!(
        "linear probe on Fashion-MNIST ({} train / {} test images): top-1 agreement of the \
         fp32-trained probe on bf16 vs fp32 test embeddings {:.1}% (target >= 99%); test \
         accuracy fp32 embeddings {:.3}, bf16 embeddings (probe trained on bf16, as the app \
         caches them) {:.3}",
        train_set.paths.len(),
        test_set.paths.len(),
        100.0 * share_equal(&on_fp32, &on_bf16),
        share_equal(&on_fp32, &test_set.labels),
        share_equal(&bf16_on_bf16, &test_set.labels),
    ))
}

/// Pooled embeddings `[N, D]` (f32) of `images` run in `kind` and channels-last by batches.
fn embed_all(model: &dyn Backbone, images: &Tensor, kind: Kind) -> Result<Tensor> {
    let mut rows = Vec::new();
    by_batches(model, images, kind, |out| {
        rows.push(out.embedding.f_to_kind(Kind::Float)?);
        Ok(())
    })?;
    Ok(Tensor::f_cat(&rows, 0)?)
}

/// Runs `model` over `images` by batches of [`BATCH`] in `kind` (bf16: as the probe's copy
/// takes its input) and channels-last, handing each output to `each`.
fn by_batches(
    model: &dyn Backbone,
    images: &Tensor,
    kind: Kind,
    mut each: impl FnMut(BackboneOutput) -> Result<()>,
) -> Result<()> {
    let n = images.size()[0];
    for start in (0..n).step_by(BATCH as usize) {
        let batch = images.f_narrow(0, start, BATCH.min(n - start))?;
        let batch = match kind {
            Kind::BFloat16 => precision::inference_input(&batch, model.info().name)?,
            _ => batch.f_to_kind(kind)?,
        };
        let batch = channels_last(&batch)?;
        each(tch::no_grad(|| model.forward_t(&batch, false))?)?;
    }
    Ok(())
}
