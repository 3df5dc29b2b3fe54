//! Training-speed benchmark (not a timed test): training steps (forward, cross-entropy,
//! backward, AdamW step) of pretrained MobileNetV2 and EfficientNet-Lite0 with a fresh
//! 10-class head at 224 px, batch 32, on fixed random normalised images: this crate's engine
//! sequence in channels-last against a PyTorch eager script (`torch_train_speed.py`) in
//! channels-last and in PyTorch's default layout, with the same intra-op thread count.
//! The three are interleaved for `ROUNDS` rounds so that machine load affects all alike;
//! prints images/s (the median over the rounds) for each and the two ratios.
//!
//! Our side runs with the engine's allocator tuning (`train::cpu_runtime`: freed memory is
//! kept for reuse instead of being unmapped and page-faulted in again every step). For
//! transparency a fourth measurement runs PyTorch's channels-last script with the same glibc
//! settings given as environment variables: that is the comparison of the kernels alone.
//!
//! Run: `cargo bench --bench train_speed`. Environment: `TW_THREADS` (default: physical
//! cores), `TW_STEPS` timed steps per measurement (default 3, after one warm-up step),
//! `TW_ROUNDS` (default 3), `TW_PYTHON` (default: the venv of the asset cache).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use anyhow::Result;
use tch::{Device, Kind, Tensor};
use transfer_workbench::train::classifier::channels_last;
use transfer_workbench::train::net::Net;
use transfer_workbench::train::optim::Optimizer;
use transfer_workbench::train::{Strategy, TaskKind, TrainConfig, WeightsSpec, train_task};

const BATCH: i64 = 32;
const SIZE_PX: i64 = 224;
const CLASSES: usize = 10;
const MODELS: [&str; 2] = ["mobilenet_v2", "efficientnet_lite0"];

fn main() -> Result<()> {
    let threads = common::threads();
    let steps = common::env_count("TW_STEPS", 3);
    let rounds = common::env_count("TW_ROUNDS", 3);
    let tuned = common::prepare_ours(threads);
    println!(
        "training steps at {SIZE_PX} px, batch {BATCH}, {threads} intra-op thread(s) on both \
         sides, {steps} timed steps after 1 warm-up, median of {rounds} interleaved rounds; \
         our allocator tuning {}",
        if tuned { "on" } else { "off" }
    );
    let mut summary = Vec::new();
    for name in MODELS {
        let mut ours = OursTrainer::new(name)?;
        let (mut rust, mut torch_cl, mut torch_default, mut torch_same) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let same = &common::SAME_ALLOCATOR_ENV;
        for round in 1..=rounds {
            rust.push(ours.images_per_s(steps)?);
            torch_cl.push(torch_images_per_s(
                name,
                "channels_last",
                steps,
                threads,
                &[],
            )?);
            torch_default.push(torch_images_per_s(name, "default", steps, threads, &[])?);
            torch_same.push(torch_images_per_s(
                name,
                "channels_last",
                steps,
                threads,
                same,
            )?);
            println!(
                "  {name} round {round}: ours {:.2}, PyTorch channels-last {:.2}, PyTorch \
                 default {:.2}, PyTorch channels-last with our allocator settings {:.2} \
                 images/s",
                rust[round - 1],
                torch_cl[round - 1],
                torch_default[round - 1],
                torch_same[round - 1]
            );
        }
        let (r, c, d, s) = (
            common::median(&rust),
            common::median(&torch_cl),
            common::median(&torch_default),
            common::median(&torch_same),
        );
        let line = format!(
            "{name}: ours (channels-last) {r:.2} images/s, PyTorch eager channels-last {c:.2}, \
             PyTorch eager default layout {d:.2}; ratio vs channels-last {:.2}x (target >= \
             1.0x), vs default layout {:.2}x (target >= 1.5x); for reference PyTorch \
             channels-last with our allocator settings {s:.2} ({:.2}x)",
            r / c,
            r / d,
            r / s
        );
        println!("{line}");
        summary.push(line);
    }
    println!("summary ({threads} threads):");
    for line in summary {
        println!("  {line}");
    }
    Ok(())
}

/// Our classifier, optimiser and batch, built and warmed up once per model.
struct OursTrainer {
    net: Net,
    optimizer: Optimizer,
    images: Tensor,
    targets: Tensor,
}

impl OursTrainer {
    /// The network as the engine builds it for fine-tuning on the CPU (channels-last), the
    /// engine's AdamW, one warm-up step.
    fn new(name: &str) -> Result<Self> {
        let config = TrainConfig {
            backbone: name.into(),
            weights: WeightsSpec::Pretrained,
            strategy: Strategy::FineTune,
            input_size_px: SIZE_PX as u32,
            batch_size: BATCH as usize,
            ..TrainConfig::default()
        };
        let nhwc = config.use_channels_last(true);
        anyhow::ensure!(
            nhwc,
            "the engine is expected to train in channels-last on the CPU"
        );
        let net = Net::build(&config, CLASSES, Device::Cpu, nhwc)?;
        let optimizer = Optimizer::new(config.optimizer, net.param_groups(Strategy::FineTune, 0));
        let mut trainer = Self {
            net,
            optimizer,
            images: Tensor::f_randn([BATCH, 3, SIZE_PX, SIZE_PX], (Kind::Float, Device::Cpu))?,
            targets: Tensor::f_randint(CLASSES as i64, [BATCH], (Kind::Int64, Device::Cpu))?,
        };
        trainer.step()?;
        Ok(trainer)
    }

    /// One step as the engine runs it: the loader's contiguous batch made channels-last,
    /// logits, loss, zero_grad, backward, AdamW step, the loss read back.
    fn step(&mut self) -> Result<f64> {
        let images = channels_last(&self.images)?;
        let logits = self.net.logits(&images, true, true)?;
        let loss = train_task(TaskKind::Classification).loss(&logits, &self.targets, None, 0.0)?;
        self.optimizer.zero_grad()?;
        loss.f_backward()?;
        self.optimizer.step(1e-3)?;
        Ok(loss.f_double_value(&[])?)
    }

    fn images_per_s(&mut self, steps: usize) -> Result<f64> {
        let cpu_start = common::process_cpu_seconds();
        let start = Instant::now();
        for _ in 0..steps {
            self.step()?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let cpu = common::process_cpu_seconds() - cpu_start;
        println!(
            "    ours: {:.2} s/step wall, {:.2} s/step CPU",
            seconds / steps as f64,
            cpu / steps as f64
        );
        Ok((steps as i64 * BATCH) as f64 / seconds)
    }
}

/// One run of the PyTorch script (a fresh process: model build, one warm-up step, `steps`
/// timed steps).
fn torch_images_per_s(
    name: &str,
    layout: &str,
    steps: usize,
    threads: usize,
    env: &[(&str, &str)],
) -> Result<f64> {
    let args: Vec<String> = [
        name,
        "--layout",
        layout,
        "--batch",
        &BATCH.to_string(),
        "--size",
        &SIZE_PX.to_string(),
        "--steps",
        &steps.to_string(),
        "--threads",
        &threads.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = common::run_python_with_env("torch_train_speed.py", &args, env)?;
    anyhow::ensure!(
        common::field(&out, "threads")? as usize == threads,
        "PyTorch used another thread count: {out}"
    );
    println!(
        "    PyTorch {layout}{}: {:.2} s/step CPU",
        if env.is_empty() {
            ""
        } else {
            " (our allocator settings)"
        },
        common::field(&out, "cpu_s_per_step")?
    );
    common::field(&out, "images_per_s")
}
