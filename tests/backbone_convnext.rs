//! ConvNeXt-Tiny against torchvision: golden key list and parameter count, output parity and
//! multiply-adds, and a headless training-mode pass.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::build_backbone;

const NAME: &str = "convnext_tiny";

#[test]
fn keys_and_parameter_count_equal_torchvision() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone(NAME, vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys(NAME));
    // torchvision's `num_params` for this model.
    assert_eq!(common::trainable_params(&vs), 28_589_128);
}

#[test]
fn logits_and_embedding_match_torchvision() {
    let parity = common::parity(NAME, NAME);
    let gmacs = parity.macs_per_image / 1e9;
    println!(
        "{NAME}: logits differ by {:.3e}, embeddings by {:.3e}; {gmacs:.4} GMACs per image",
        parity.logits_diff, parity.embedding_diff
    );
    assert!(
        parity.logits_diff <= 1e-4,
        "logits differ by {}",
        parity.logits_diff
    );
    assert!(
        parity.embedding_diff <= 1e-4,
        "embeddings differ by {}",
        parity.embedding_diff
    );
    assert_eq!(parity.strides, vec![4, 8, 16, 32]);
    // torchvision reports 4.456 GFLOPS (multiply-adds) per 224 px image.
    assert!((gmacs / 4.456 - 1.0).abs() < 0.01, "{gmacs} GMACs");
}

#[test]
fn headless_training_pass_gives_embedding_and_features() {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(NAME, vs.root(), false).unwrap();
    let keys = common::store_keys(&vs);
    assert!(!keys.contains(&"classifier.2.weight".to_owned()));
    // classifier.0 (LayerNorm2d) belongs to the embedding.
    assert!(keys.contains(&"classifier.0.weight".to_owned()));
    let images = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let out = model.forward_t(&images, true).unwrap();
    assert!(out.logits.is_none());
    assert_eq!(out.embedding.size(), vec![2, model.info().embedding_dim]);
    assert_eq!(common::strides(&out.features, 64), vec![4, 8, 16, 32]);
    let sum = out.embedding.sum(Kind::Double).double_value(&[]);
    assert!(sum.is_finite());
}
