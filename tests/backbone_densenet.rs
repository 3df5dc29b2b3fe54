//! DenseNet-121 against torchvision: golden key list and output parity.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, nn::VarStore};
use transfer_workbench::model::{build_backbone, import_weights};

#[test]
fn keys_equal_torchvision() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone("densenet121", vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys("densenet121"));
}

#[test]
fn logits_and_embedding_match_torchvision() {
    let fixture = common::run_parity_fixture("densenet", &[]);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("densenet121", vs.root(), true).unwrap();
    let report = import_weights(&vs, &fixture.path().join("weights.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    let expected = common::read_tensors(&fixture.path().join("expected.safetensors"));
    let out = tch::no_grad(|| model.forward_t(&expected["input"], false)).unwrap();
    let logits_diff = common::max_abs_diff(&out.logits.unwrap(), &expected["logits"]);
    let embedding_diff = common::max_abs_diff(&out.embedding, &expected["embedding"]);
    println!("densenet121: logits differ by {logits_diff:e}, embeddings by {embedding_diff:e}");
    assert!(logits_diff <= 1e-4, "logits differ by {logits_diff}");
    assert!(
        embedding_diff <= 1e-4,
        "embeddings differ by {embedding_diff}"
    );
    let strides: Vec<i64> = out.features.iter().map(|f| 224 / f.size()[2]).collect();
    assert_eq!(strides, vec![2, 4, 8, 16, 32]);
    let channels: Vec<i64> = out.features.iter().map(|f| f.size()[1]).collect();
    assert_eq!(channels, vec![64, 256, 512, 1024, 1024]);
}
