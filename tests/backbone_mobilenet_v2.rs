//! MobileNetV2 against torchvision: golden key list and output parity.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, nn::VarStore};
use transfer_workbench::model::{build_backbone, import_weights};

#[test]
fn keys_equal_torchvision() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone("mobilenet_v2", vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys("mobilenet_v2"));
}

#[test]
fn logits_and_embedding_match_torchvision() {
    let fixture = common::run_parity_fixture("mobilenet_v2", &[]);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("mobilenet_v2", vs.root(), true).unwrap();
    let report = import_weights(&vs, &fixture.path().join("weights.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    let expected = common::read_tensors(&fixture.path().join("expected.safetensors"));
    // The fixture must make the output depend on the input, or parity proves little.
    let spread = common::max_abs_diff(&expected["embedding"].get(0), &expected["embedding"].get(1));
    assert!(
        spread > 1e-2,
        "the two test images give the same embedding ({spread})"
    );
    let out = tch::no_grad(|| model.forward_t(&expected["input"], false)).unwrap();
    let logits_diff = common::max_abs_diff(&out.logits.unwrap(), &expected["logits"]);
    let embedding_diff = common::max_abs_diff(&out.embedding, &expected["embedding"]);
    assert!(logits_diff <= 1e-4, "logits differ by {logits_diff}");
    assert!(
        embedding_diff <= 1e-4,
        "embeddings differ by {embedding_diff}"
    );
    let strides: Vec<i64> = out.features.iter().map(|f| 224 / f.size()[2]).collect();
    assert_eq!(strides, vec![2, 4, 8, 16, 32]);
}
