//! Swin Transformers (V1 swin_t/s/b, V2 swin_v2_t/s/b) against torchvision: golden key lists
//! (with the relative position index buffers) and parameter counts, logits and pooled
//! embeddings on the same random weights at the native size and at sizes that need padding
//! and skipped shifts (also non-square), multiply-adds against torchvision's GFLOPS, the four
//! feature strides, a training step without the head, and the catalogue offering the weights
//! (its installer on torchvision's files: `tests/weights_catalogue_fixtures.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::OptimizerConfig, nn::VarStore};
use transfer_workbench::model::backbone::known_backbones;
use transfer_workbench::model::build_backbone;
use transfer_workbench::model::catalogue::{self, WeightStatus};

const SWIN_STRIDES: &[i64] = &[4, 8, 16, 32];

/// Name, torchvision's `num_params` (with the 1000-class head), torchvision's GFLOPS
/// (multiply-adds) at the native size.
const SPECS: [(&str, i64, f64); 6] = [
    ("swin_t", 28_288_354, 4.491),
    ("swin_s", 49_606_258, 8.741),
    ("swin_b", 87_768_224, 15.431),
    ("swin_v2_t", 28_351_570, 5.94),
    ("swin_v2_s", 49_737_442, 11.546),
    ("swin_v2_b", 87_930_848, 20.325),
];

#[test]
fn keys_and_parameter_counts_equal_torchvision() {
    for (name, params, _) in SPECS {
        let vs = VarStore::new(Device::Cpu);
        let _model = build_backbone(name, vs.root(), true).unwrap();
        assert_eq!(common::store_keys(&vs), common::golden_keys(name), "{name}");
        // The relative position index (and V2's coordinate table) are buffers, not counted.
        assert_eq!(common::trainable_params(&vs), params, "{name}");
    }
}

/// Parity of `name` at `size` (`S` or `HxW`; native when empty); returns GMACs per image.
fn check(name: &str, size: &str) -> f64 {
    let args: Vec<&str> = [name, size].into_iter().filter(|a| !a.is_empty()).collect();
    let parity = common::parity(name, "swin", &args);
    let gmacs = parity.macs_per_image / 1e9;
    println!(
        "{name} at {size:?}: logits differ by {:.3e}, embeddings by {:.3e}; {gmacs:.4} GMACs \
         per image",
        parity.logits_diff, parity.embedding_diff
    );
    assert!(parity.logits_diff <= 1e-4, "{name}: {}", parity.logits_diff);
    assert!(
        parity.embedding_diff <= 1e-4,
        "{name}: {}",
        parity.embedding_diff
    );
    if !size.contains('x') {
        assert_eq!(parity.strides, SWIN_STRIDES, "{name}");
    }
    gmacs
}

fn native_parity(index: usize) {
    let (name, _, torchvision_gmacs) = SPECS[index];
    let gmacs = check(name, "");
    assert!(
        (gmacs / torchvision_gmacs - 1.0).abs() < 0.01,
        "{name}: {gmacs} GMACs against torchvision's {torchvision_gmacs}"
    );
}

#[test]
fn swin_t_matches_torchvision() {
    native_parity(0);
}

#[test]
fn swin_s_matches_torchvision() {
    native_parity(1);
}

#[test]
fn swin_b_matches_torchvision() {
    native_parity(2);
}

#[test]
fn swin_v2_t_matches_torchvision() {
    native_parity(3);
}

#[test]
fn swin_v2_s_matches_torchvision() {
    native_parity(4);
}

#[test]
fn swin_v2_b_matches_torchvision() {
    native_parity(5);
}

/// 160 px: the 5 x 5 last stage is padded to one 7 x 7 window and not shifted, the 10 x 10
/// third stage is padded to 14 x 14 and shifted; 256 px: the 8 x 8 last stage is padded to
/// 14 x 14 and shifted; 160 x 224: a shift along one axis only in the last stage.
#[test]
fn swin_t_matches_torchvision_at_other_sizes() {
    for size in ["160", "256", "160x224"] {
        check("swin_t", size);
    }
}

/// 224 px with windows of 8: every stage padded, the 7 x 7 last stage not shifted.
#[test]
fn swin_v2_t_matches_torchvision_at_224_px() {
    check("swin_v2_t", "224");
}

#[test]
fn a_training_step_without_the_imagenet_head_changes_the_weights() {
    for name in ["swin_t", "swin_v2_t"] {
        let vs = VarStore::new(Device::Cpu);
        let model = build_backbone(name, vs.root(), false).unwrap();
        let keys = common::store_keys(&vs);
        assert!(!keys.contains(&"head.weight".to_owned()), "{name}");
        let index_key = "features.1.0.attn.relative_position_index";
        let index_before = vs.variables()[index_key].copy();
        let images = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, true).unwrap();
        assert!(out.logits.is_none());
        assert_eq!(out.embedding.size(), vec![2, model.info().embedding_dim]);
        assert_eq!(common::strides(&out.features, 64), SWIN_STRIDES);
        let before = vs.variables()["features.0.0.weight"].copy();
        let mut opt = tch::nn::Sgd::default().build(&vs, 0.1).unwrap();
        let loss = out.embedding.square().mean(Kind::Float);
        opt.backward_step(&loss);
        let after = &vs.variables()["features.0.0.weight"];
        assert!(loss.double_value(&[]).is_finite(), "{name}");
        assert!(
            !after.equal(&before),
            "{name}: the patch embedding did not train"
        );
        assert!(vs.variables()[index_key].equal(&index_before), "{name}");
    }
}

#[test]
fn the_catalogue_offers_torchvision_weights_for_every_swin() {
    for (name, _, _) in SPECS {
        let info = known_backbones()
            .into_iter()
            .find(|b| b.name == name)
            .unwrap();
        assert_eq!(info.family, "Swin");
        assert!(info.pretrained.is_none());
        assert!(catalogue::find_usable(name).is_ok(), "{name}");
        let options = catalogue::weight_options(&info);
        assert!(
            options
                .iter()
                .any(|o| o.name == format!("{name}.IMAGENET1K_V1")
                    && !matches!(o.status, WeightStatus::UserSupplied)),
            "{name}: {options:?}"
        );
    }
}
