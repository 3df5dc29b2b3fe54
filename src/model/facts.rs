//! Measured facts of a backbone: parameter count and multiply-adds at its input size.

use tch::{Device, Kind, Tensor, nn::VarStore};

use super::layers::flops;
use super::{BackboneInfo, ModelError, build_backbone};

/// A backbone's facts with its measured size and cost.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BackboneFacts {
    /// The static facts.
    #[serde(flatten)]
    pub info: BackboneInfo,
    /// Parameters of the encoder (without the ImageNet head).
    pub parameters: i64,
    /// Giga multiply-adds of one encoder forward pass at `input_size_px` (torchvision's
    /// "GFLOPS" convention).
    pub gflops: f64,
    /// The precision of its frozen passes (the linear probe's embeddings) on this CPU, with
    /// the layers kept in float32 ([`super::cpu_bf16`], [`super::precision`]).
    pub frozen_pass_precision: String,
}

/// Builds the encoder on the CPU with random weights and runs one image through it,
/// counting parameters and multiply-adds. Call from a worker or the CLI, never the UI thread.
pub fn measure_facts(info: &BackboneInfo) -> Result<BackboneFacts, ModelError> {
    let vs = VarStore::new(Device::Cpu);
    let model = super::with_init_lock(None, || build_backbone(info.name, vs.root(), false))?;
    let parameters = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let side = i64::from(info.input_size_px);
    let input = Tensor::f_zeros([1, 3, side, side], (Kind::Float, Device::Cpu))?;
    let (output, macs) = flops::count(|| tch::no_grad(|| model.forward_t(&input, false)));
    output?;
    Ok(BackboneFacts {
        info: info.clone(),
        parameters,
        gflops: macs as f64 * 1e-9,
        frozen_pass_precision: frozen_pass_precision(info.name),
    })
}

/// "float32", "bfloat16" or "bfloat16, float32 for ..." for `backbone`'s CPU frozen passes
/// on this machine.
pub fn frozen_pass_precision(backbone: &str) -> String {
    if !super::cpu_bf16::bf16_by_default() {
        return "float32".to_owned();
    }
    let kept: Vec<String> = super::precision::f32_paths(backbone)
        .iter()
        .map(|path| path.join("."))
        .collect();
    if kept.is_empty() {
        "bfloat16".to_owned()
    } else {
        format!("bfloat16, float32 for {}", kept.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::backbone::known_backbones;

    #[test]
    fn mobilenet_v2_matches_the_published_size_and_cost() {
        let info = known_backbones()
            .into_iter()
            .find(|b| b.name == "mobilenet_v2")
            .unwrap();
        let facts = measure_facts(&info).unwrap();
        // torchvision: 3,504,872 parameters with the 1000-class head (1280 x 1000 + 1000),
        // 0.30 GFLOPS at 224 px.
        assert_eq!(facts.parameters, 3_504_872 - 1_281_000);
        assert!((facts.gflops - 0.30).abs() < 0.02, "{}", facts.gflops);
    }
}
