//! Mixed precision for frozen-backbone inference in bfloat16: which layers stay in float32.
//!
//! Running a whole mobile network in bfloat16 moves its embeddings by 7–9% (relative L2 on
//! Fashion-MNIST at 224 px) and changes the top-1 of a linear probe on 2–3% of the test
//! images. Most of that comes from the first layers at full resolution (the stem and the
//! first inverted-residual block, whose weights and 16-channel linear output lose most to
//! 8 mantissa bits). Keeping them in float32, with their float32 weights, cut the embedding
//! error from 8.6% to 2.7% (MobileNetV2: `features.0`, `features.1`) and from 7.0% to 4.4%
//! (EfficientNet-Lite0: stem and `_blocks.0`); `cargo bench --bench embed_speed` measured the
//! probe's top-1 agreement with float32 at 99.4% and 99.0% (was 97.0% and 98.0%), its test
//! accuracy unchanged (0.843, 0.834 vs 0.835), for under a tenth of the multiply-adds, still
//! 1.7–1.9x PyTorch's autocast. Adding more Lite0 blocks or its head conv did not help.
//! The layers of the model pick their input's precision from their weights
//! ([`crate::model::layers::conv2d`] casts), so a partly converted store just works.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// Identifies the recipe in cache keys: embeddings computed with another recipe differ.
pub const BF16_RECIPE: &str = "bf16-mixed-1";

/// Variable paths (components of the reference key names) of `backbone` kept in float32
/// when the rest runs in bfloat16: the precision-sensitive first layers and the ImageNet
/// head. Empty for families where it was not measured (they run wholly in bfloat16).
pub fn f32_paths(backbone: &str) -> &'static [&'static [&'static str]] {
    match backbone {
        "mobilenet_v2" => &[&["features", "0"], &["features", "1"], &["classifier"]],
        name if name.starts_with("efficientnet_lite") => {
            &[&["_conv_stem"], &["_bn0"], &["_blocks", "0"], &["_fc"]]
        }
        _ => &[],
    }
}

/// Converts the float variables of `vs` (the frozen copy of `backbone`) to bfloat16, except
/// those under [`f32_paths`], which stay float32.
pub fn to_inference_bf16(vs: &mut VarStore, backbone: &str) -> Result<(), tch::TchError> {
    // Prefixes end in a dot so that `features.1` does not take `features.10` along (tch's
    // `Path::set_kind` matches without it).
    let prefixes: Vec<String> = f32_paths(backbone)
        .iter()
        .map(|components| format!("{}.", components.join(".")))
        .collect();
    // The kept variables' float32 values, taken before the conversion rounds them.
    let mut kept = Vec::new();
    for (name, var) in vs.variables() {
        if var.is_floating_point() && prefixes.iter().any(|p| name.starts_with(p)) {
            kept.push((
                var.shallow_clone(),
                var.f_to_kind(Kind::Float)?.f_detach_copy()?,
            ));
        }
    }
    vs.bfloat16();
    for (mut var, f32) in kept {
        tch::no_grad(|| var.f_set_data(&f32))?;
    }
    Ok(())
}

/// `images` (float32) in the precision the bfloat16 copy of `backbone` takes: float32 when
/// its first layers stay float32 (rounding the input would undo that), else bfloat16.
pub fn inference_input(images: &Tensor, backbone: &str) -> Result<Tensor, tch::TchError> {
    if f32_paths(backbone).is_empty() {
        images.f_to_kind(Kind::BFloat16)
    } else {
        images.f_to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use super::*;
    use crate::model::{WeightsChoice, load_backbone};

    /// The kept layers really stay f32 (and `features.1` does not catch `features.10`),
    /// the rest is bf16, and the mixed model runs on bf16 input.
    #[test]
    fn mobilenet_v2_keeps_its_first_blocks_in_f32_and_runs() {
        let mut loaded =
            load_backbone("mobilenet_v2", true, &WeightsChoice::Random, Device::Cpu).unwrap();
        let stem = loaded.vs.variables()["features.0.0.weight"].copy();
        to_inference_bf16(&mut loaded.vs, "mobilenet_v2").unwrap();
        // Kept exactly, not rounded through bf16 on the way.
        let kept = &loaded.vs.variables()["features.0.0.weight"];
        assert!(kept.equal(&stem));
        assert!(
            !kept
                .to_kind(Kind::BFloat16)
                .to_kind(Kind::Float)
                .equal(&stem)
        );
        let vars = loaded.vs.variables();
        for (name, var) in &vars {
            let keep = ["features.0.", "features.1.", "classifier."]
                .iter()
                .any(|p| name.starts_with(p));
            if var.is_floating_point() {
                let want = if keep { Kind::Float } else { Kind::BFloat16 };
                assert_eq!(var.kind(), want, "{name}");
            }
        }
        assert_eq!(vars["features.10.conv.0.0.weight"].kind(), Kind::BFloat16);
        let images = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let input = inference_input(&images, "mobilenet_v2").unwrap();
        assert_eq!(input.kind(), Kind::Float);
        let out = tch::no_grad(|| loaded.model.forward_t(&input, false)).unwrap();
        assert_eq!(out.embedding.kind(), Kind::BFloat16);
        assert_eq!(out.embedding.size(), [2, 1280]);
        assert_eq!(out.logits.unwrap().kind(), Kind::Float);
    }
}
