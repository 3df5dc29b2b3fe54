//! Vision Transformers (vit_b_16, vit_tiny_16) against torchvision: golden key lists, output
//! parity (also at another input size, with interpolated positional embeddings), the
//! multiply-add count and the feature map's use for Grad-CAM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::layers::flops;
use transfer_workbench::model::{ModelError, build_backbone, import_weights};

#[test]
fn keys_equal_torchvision_vit_b_16() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone("vit_b_16", vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys("vit_b_16"));
}

#[test]
fn keys_equal_torchvision_vit_tiny_16() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone("vit_tiny_16", vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys("vit_tiny_16"));
}

/// Runs the fixture, loads its weights strictly and compares logits, embedding and feature
/// map; returns the forward pass's multiply-adds.
fn check_parity(name: &str, input_size_px: i64) -> u64 {
    let size_arg = input_size_px.to_string();
    let fixture = common::run_parity_fixture("vit", &[name, &size_arg]);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(name, vs.root(), true).unwrap();
    let report = import_weights(&vs, &fixture.path().join("weights.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    let expected = common::read_tensors(&fixture.path().join("expected.safetensors"));
    let (out, macs) = flops::count(|| tch::no_grad(|| model.forward_t(&expected["input"], false)));
    let out = out.unwrap();
    let logits_diff = common::max_abs_diff(&out.logits.unwrap(), &expected["logits"]);
    let embedding_diff = common::max_abs_diff(&out.embedding, &expected["embedding"]);
    assert_eq!(out.features.len(), 1, "ViT has a single scale");
    let feature_diff = common::max_abs_diff(&out.features[0], &expected["feature_map"]);
    eprintln!(
        "{name} at {input_size_px} px: max abs diff logits {logits_diff:.3e}, embedding \
         {embedding_diff:.3e}, feature map {feature_diff:.3e}"
    );
    assert!(logits_diff <= 1e-4, "logits differ by {logits_diff}");
    assert!(
        embedding_diff <= 1e-4,
        "embeddings differ by {embedding_diff}"
    );
    assert!(
        feature_diff <= 1e-4,
        "feature maps differ by {feature_diff}"
    );
    assert_eq!(input_size_px / out.features[0].size()[2], 16, "stride 16");
    macs
}

#[test]
fn vit_b_16_matches_torchvision() {
    let macs = check_parity("vit_b_16", 224);
    // torchvision's documented cost of ViT-B/16 is 17.564 GFLOPS (multiply-adds) per image;
    // the fixture's batch has 2 images.
    let gmacs_per_image = macs as f64 / 2.0 / 1e9;
    assert!(
        (gmacs_per_image - 17.564).abs() < 0.005,
        "{gmacs_per_image} GMACs per image"
    );
}

#[test]
fn vit_tiny_16_matches_torchvision() {
    let macs = check_parity("vit_tiny_16", 224);
    assert!(
        macs > 2 * 1_000_000_000,
        "{macs} multiply-adds for 2 images"
    );
}

#[test]
fn vit_tiny_16_interpolates_positions_like_torchvision() {
    check_parity("vit_tiny_16", 160);
}

#[test]
fn other_input_sizes_give_maps_or_clear_errors() {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("vit_tiny_16", vs.root(), false).unwrap();
    let images = Tensor::randn([1, 3, 64, 96], (Kind::Float, Device::Cpu));
    let out = tch::no_grad(|| model.forward_t(&images, false)).unwrap();
    assert_eq!(out.features[0].size(), vec![1, 192, 4, 6]);
    assert!(out.logits.is_none());
    let images = Tensor::zeros([1, 3, 225, 225], (Kind::Float, Device::Cpu));
    let err = model.forward_t(&images, false).unwrap_err();
    assert!(matches!(err, ModelError::InputSize { .. }), "{err}");
    assert!(err.to_string().contains("vit_tiny_16"), "{err}");
}

#[test]
fn embedding_depends_on_the_feature_map_for_grad_cam() {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("vit_tiny_16", vs.root(), false).unwrap();
    let images = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
    let out = model.forward_t(&images, false).unwrap();
    let direction = Tensor::randn([1, 192], (Kind::Float, Device::Cpu));
    let score = (&out.embedding * direction).sum(Kind::Float);
    let grads = Tensor::run_backward(&[score], &[&out.features[0]], false, false);
    let grad_norm = grads[0].abs().sum(Kind::Double).double_value(&[]);
    assert!(grad_norm > 0.0, "no gradient reaches the feature map");
}
