//! What a backbone costs to run, measured on this machine: parameters and multiply-adds at
//! the study's input size, inference latency at batch 1 and throughput at batch 32 in
//! float32 (and in bfloat16 where the CPU has it natively, converted as the frozen passes
//! are), and the peak memory a batch of 32 adds. Random weights: speed does not depend on
//! their values.

use std::time::Instant;

use tch::{Device, Kind, Tensor};

use super::StudyError;
use crate::model::backbone::known_backbones;
use crate::model::{Backbone, WeightsChoice, load_backbone};

/// Timed passes at batch 1 (the median is kept).
const LATENCY_RUNS: usize = 5;
/// The throughput batch.
const BATCH: i64 = 32;

/// Speed in one precision.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Speed {
    /// Median time of one image alone, in milliseconds.
    pub latency_ms_batch1: f64,
    /// Images per second in batches of 32.
    pub images_per_s_batch32: f64,
}

/// A backbone's cost at one input size on one device.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cost {
    /// Parameters of the encoder.
    pub params: i64,
    /// Giga multiply-adds of one image (torchvision's "GFLOPS").
    pub gflops: f64,
    /// Float32 speed.
    pub float32: Speed,
    /// Bfloat16 speed, where the CPU has native bfloat16.
    pub bfloat16: Option<Speed>,
    /// Resident memory a float32 batch of 32 adds at its peak, in MiB (`None`: not Linux, or
    /// the batch reused memory the process already held).
    pub peak_memory_mib: Option<f64>,
    /// The device measured ("cpu", "cuda:0").
    pub device: String,
}

/// Measures `backbone` at `input_px` on `device`. Seconds to minutes (a batch of 32 of a
/// large network on two cores); call from a worker or the CLI.
pub fn measure_cost(backbone: &str, input_px: u32, device: Device) -> Result<Cost, StudyError> {
    let mut info = known_backbones()
        .into_iter()
        .find(|b| b.name == backbone)
        .ok_or_else(|| StudyError::Invalid(format!("no backbone called {backbone}")))?;
    info.input_size_px = input_px;
    let facts = crate::model::facts::backbone_facts(&info)?;
    let mut loaded = crate::model::with_init_lock(None, || {
        load_backbone(backbone, false, &WeightsChoice::Random, device)
    })?;
    let side = i64::from(input_px);
    let images = |n: i64| Tensor::f_randn([n, 3, side, side], (Kind::Float, device));
    let (one, batch) = (images(1)?, images(BATCH)?);
    let float32 = speed(loaded.model.as_ref(), &one, &batch, device)?;
    let peak_memory_mib = peak_memory(loaded.model.as_ref(), &batch)?;
    let bfloat16 = if device == Device::Cpu && crate::model::cpu_bf16::bf16_by_default() {
        crate::model::precision::to_inference_bf16(&mut loaded.vs, backbone)?;
        let one = crate::model::precision::inference_input(&one, backbone)?;
        let batch = crate::model::precision::inference_input(&batch, backbone)?;
        Some(speed(loaded.model.as_ref(), &one, &batch, device)?)
    } else {
        None
    };
    Ok(Cost {
        params: facts.parameters,
        gflops: facts.gflops,
        float32,
        bfloat16,
        peak_memory_mib,
        device: format!("{device:?}").to_lowercase(),
    })
}

fn forward(model: &dyn Backbone, images: &Tensor, device: Device) -> Result<f64, StudyError> {
    let started = Instant::now();
    tch::no_grad(|| model.forward_t(images, false))?;
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
    Ok(started.elapsed().as_secs_f64())
}

fn speed(
    model: &dyn Backbone,
    one: &Tensor,
    batch: &Tensor,
    device: Device,
) -> Result<Speed, StudyError> {
    forward(model, one, device)?;
    let mut times = (0..LATENCY_RUNS)
        .map(|_| forward(model, one, device))
        .collect::<Result<Vec<f64>, _>>()?;
    times.sort_by(f64::total_cmp);
    forward(model, batch, device)?;
    let batch_secs = forward(model, batch, device)?;
    Ok(Speed {
        latency_ms_batch1: times[LATENCY_RUNS / 2] * 1e3,
        images_per_s_batch32: BATCH as f64 / batch_secs,
    })
}

/// The growth of the peak resident memory over one batch pass (Linux; `None` elsewhere).
fn peak_memory(model: &dyn Backbone, batch: &Tensor) -> Result<Option<f64>, StudyError> {
    use crate::process_memory::{reset_peak, status_mib};
    if !reset_peak() {
        return Ok(None);
    }
    let before = status_mib("VmRSS");
    forward(model, batch, batch.device())?;
    // Under 1 MiB of growth the pass reused memory the process already held (earlier
    // passes, the allocator's cache): no figure rather than a false zero.
    Ok(before
        .zip(status_mib("VmHWM"))
        .map(|(b, p)| p - b)
        .filter(|growth| *growth >= 1.0))
}
