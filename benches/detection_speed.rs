//! Detection training-speed benchmark (not a timed test): training steps (forward, the
//! "objects as points" loss from box targets, backward, AdamW step) of pretrained
//! MobileNetV2 with the detection head at 224 px, batch 16, 2 classes, five boxes per image,
//! on fixed random normalised images: this crate's engine sequence in channels-last against
//! the PyTorch reference of the same head (`torch_detection_speed.py`, built from
//! `tests/fixtures/parity/centernet_reference.py`) in channels-last and in PyTorch's default
//! layout, with the same intra-op thread count. Both sides draw the Gaussian targets from
//! the boxes inside every step. The measurements are interleaved for `ROUNDS` rounds so that
//! machine load affects all alike; prints images/s (the median over the rounds) and the
//! ratios.
//!
//! Run: `cargo bench --bench detection_speed`. Environment: `TW_THREADS` (default: physical
//! cores), `TW_STEPS` timed steps per measurement (default 3, after one warm-up step),
//! `TW_ROUNDS` (default 3), `TW_PYTHON` (default: the venv of the asset cache).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use anyhow::Result;
use tch::{Device, Kind, Tensor};
use transfer_workbench::data::loader::BOX_FIELDS;
use transfer_workbench::train::classifier::channels_last;
use transfer_workbench::train::net::Net;
use transfer_workbench::train::optim::Optimizer;
use transfer_workbench::train::{Strategy, TaskKind, TrainConfig, WeightsSpec, train_task};

const BATCH: i64 = 16;
const SIZE_PX: i64 = 224;
const CLASSES: usize = 2;
const BOXES_PER_IMAGE: usize = 5;

fn main() -> Result<()> {
    let threads = common::threads();
    let steps = common::env_count("TW_STEPS", 3);
    let rounds = common::env_count("TW_ROUNDS", 3);
    let tuned = common::prepare_ours(threads);
    println!(
        "detection training steps (mobilenet_v2 + objects-as-points head) at {SIZE_PX} px, \
         batch {BATCH}, {threads} intra-op thread(s) on both sides, {steps} timed steps after \
         1 warm-up, median of {rounds} interleaved rounds; our allocator tuning {}",
        if tuned { "on" } else { "off" }
    );
    let mut ours = OursTrainer::new()?;
    let (mut rust, mut torch_cl, mut torch_default) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        rust.push(ours.images_per_s(steps)?);
        torch_cl.push(torch_images_per_s("channels_last", steps, threads)?);
        torch_default.push(torch_images_per_s("default", steps, threads)?);
        println!(
            "  round {round}: ours {:.2}, PyTorch channels-last {:.2}, PyTorch default {:.2} \
             images/s",
            rust[round - 1],
            torch_cl[round - 1],
            torch_default[round - 1]
        );
    }
    let (r, c, d) = (
        common::median(&rust),
        common::median(&torch_cl),
        common::median(&torch_default),
    );
    println!(
        "summary ({threads} threads): ours (channels-last) {r:.2} images/s, PyTorch eager \
         channels-last {c:.2}, PyTorch eager default layout {d:.2}; ratio vs channels-last \
         {:.2}x, vs default layout {:.2}x (target >= 1.0x)",
        r / c,
        r / d
    );
    Ok(())
}

/// The boxes of `torch_detection_speed.py`'s `fixed_boxes` as the loader's padded targets
/// `[N, M, 6]` (x0, y0, x1, y1, class, 1).
fn fixed_targets() -> Result<Tensor> {
    let size = SIZE_PX as f64;
    let mut values = Vec::new();
    for i in 0..BATCH as usize {
        for j in 0..BOXES_PER_IMAGE {
            let side = size * (0.1 + 0.05 * j as f64);
            let x0 = (size * (0.1 + 0.15 * j as f64) + 7.0 * i as f64) % (size - side);
            let y0 = (size * (0.6 - 0.1 * j as f64) + 3.0 * i as f64) % (size - side);
            let class = ((i + j) % CLASSES) as f64;
            values.extend([x0, y0, x0 + side, y0 + side, class, 1.0].map(|v| v as f32));
        }
    }
    Ok(
        Tensor::f_from_slice(&values)?.f_view([
            BATCH,
            BOXES_PER_IMAGE as i64,
            BOX_FIELDS as i64,
        ])?,
    )
}

/// Our detector, optimiser and batch, built and warmed up once.
struct OursTrainer {
    net: Net,
    optimizer: Optimizer,
    images: Tensor,
    targets: Tensor,
}

impl OursTrainer {
    /// The network as the engine builds it for fine-tuning a detector on the CPU
    /// (channels-last), the engine's AdamW, one warm-up step.
    fn new() -> Result<Self> {
        let config = TrainConfig {
            task: TaskKind::Detection,
            backbone: "mobilenet_v2".into(),
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
            targets: fixed_targets()?,
        };
        trainer.step()?;
        Ok(trainer)
    }

    /// One step as the engine runs it: the batch made channels-last, the head's output, the
    /// task's loss (targets drawn from the boxes), zero_grad, backward, AdamW step, the loss
    /// read back.
    fn step(&mut self) -> Result<f64> {
        let images = channels_last(&self.images)?;
        let logits = self.net.logits(&images, true, true)?;
        let loss = train_task(TaskKind::Detection).loss(&logits, &self.targets, None, 0.0)?;
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
fn torch_images_per_s(layout: &str, steps: usize, threads: usize) -> Result<f64> {
    let args: Vec<String> = [
        "--layout",
        layout,
        "--batch",
        &BATCH.to_string(),
        "--size",
        &SIZE_PX.to_string(),
        "--classes",
        &CLASSES.to_string(),
        "--steps",
        &steps.to_string(),
        "--threads",
        &threads.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = common::run_python("torch_detection_speed.py", &args)?;
    anyhow::ensure!(
        common::field(&out, "threads")? as usize == threads,
        "PyTorch used another thread count: {out}"
    );
    println!(
        "    PyTorch {layout}: {:.2} s/step CPU",
        common::field(&out, "cpu_s_per_step")?
    );
    common::field(&out, "images_per_s")
}
