//! ResNet-18/34/50 against torchvision: golden key lists and output parity.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, nn::VarStore};
use transfer_workbench::model::{build_backbone, import_weights};

fn keys_equal_torchvision(name: &str) {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone(name, vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys(name));
}

/// Loads the fixture's weights strictly and compares logits, embedding and feature strides.
fn matches_torchvision(name: &str) {
    let fixture = common::run_parity_fixture("resnet", &[name]);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(name, vs.root(), true).unwrap();
    let report = import_weights(&vs, &fixture.path().join("weights.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    let expected = common::read_tensors(&fixture.path().join("expected.safetensors"));
    let out = tch::no_grad(|| model.forward_t(&expected["input"], false)).unwrap();
    let logits_diff = common::max_abs_diff(&out.logits.unwrap(), &expected["logits"]);
    let embedding_diff = common::max_abs_diff(&out.embedding, &expected["embedding"]);
    println!("{name}: logits differ by {logits_diff:e}, embeddings by {embedding_diff:e}");
    assert!(logits_diff <= 1e-4, "logits differ by {logits_diff}");
    assert!(
        embedding_diff <= 1e-4,
        "embeddings differ by {embedding_diff}"
    );
    let strides: Vec<i64> = out.features.iter().map(|f| 224 / f.size()[2]).collect();
    assert_eq!(strides, vec![2, 4, 8, 16, 32]);
}

#[test]
fn resnet18_keys_equal_torchvision() {
    keys_equal_torchvision("resnet18");
}

#[test]
fn resnet34_keys_equal_torchvision() {
    keys_equal_torchvision("resnet34");
}

#[test]
fn resnet50_keys_equal_torchvision() {
    keys_equal_torchvision("resnet50");
}

#[test]
fn resnet18_logits_and_embedding_match_torchvision() {
    matches_torchvision("resnet18");
}

#[test]
fn resnet34_logits_and_embedding_match_torchvision() {
    matches_torchvision("resnet34");
}

#[test]
fn resnet50_logits_and_embedding_match_torchvision() {
    matches_torchvision("resnet50");
}
