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
}

/// Builds the encoder on the CPU with random weights and runs one image through it,
/// counting parameters and multiply-adds. Call from a worker or the CLI, never the UI thread.
pub fn measure_facts(info: &BackboneInfo) -> Result<BackboneFacts, ModelError> {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(info.name, vs.root(), false)?;
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
    })
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
