//! EfficientNet-Lite0/1/2 against `efficientnet_lite_pytorch` 0.1.0: golden key lists, output
//! parity with the real pretrained weights, batch-norm momentum and "SAME" padding in
//! training, and ImageNet classification of the sample photos through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::process::Command;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::imagenet::sample_photo;
use transfer_workbench::model::{WeightsChoice, build_backbone, load_backbone};

const VARIANTS: [&str; 3] = [
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
];

#[test]
fn keys_equal_the_reference() {
    for name in VARIANTS {
        let vs = VarStore::new(Device::Cpu);
        let _model = build_backbone(name, vs.root(), true).unwrap();
        assert_eq!(common::store_keys(&vs), common::golden_keys(name), "{name}");
    }
}

/// Loads the shipped weights strictly, runs the reference fixture on the same file and
/// compares logits and embedding at the native size, and logits at an odd size.
fn assert_parity(variant: u8) {
    let name = format!("efficientnet_lite{variant}");
    let loaded = load_backbone(&name, true, &WeightsChoice::Pretrained, Device::Cpu).unwrap();
    let report = loaded.report.as_ref().unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    let weights = report.source.display().to_string();
    let fixture =
        common::run_parity_fixture("efficientnet_lite", &[&variant.to_string(), &weights]);
    let expected = common::read_tensors(&fixture.path().join("expected.safetensors"));
    let model = loaded.model;

    let out = tch::no_grad(|| model.forward_t(&expected["input"], false)).unwrap();
    let logits_diff = common::max_abs_diff(&out.logits.unwrap(), &expected["logits"]);
    let embedding_diff = common::max_abs_diff(&out.embedding, &expected["embedding"]);
    println!("{name}: logits max abs diff {logits_diff:e}, embedding {embedding_diff:e}");
    assert!(
        logits_diff <= 1e-4,
        "{name}: logits differ by {logits_diff}"
    );
    assert!(
        embedding_diff <= 1e-4,
        "{name}: embeddings differ by {embedding_diff}"
    );
    // "SAME" convolutions give ceil(size / stride) pixels at strides 2, 4, 8, 16 and 32.
    let size = i64::from(model.info().input_size_px);
    let sides: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
    let expected_sides: Vec<i64> = [2, 4, 8, 16, 32]
        .iter()
        .map(|s| (size + s - 1) / s)
        .collect();
    assert_eq!(sides, expected_sides, "{name}");

    let odd = tch::no_grad(|| model.forward_t(&expected["input_odd"], false)).unwrap();
    let odd_diff = common::max_abs_diff(&odd.logits.unwrap(), &expected["logits_odd"]);
    println!("{name}: odd-size logits max abs diff {odd_diff:e}");
    assert!(
        odd_diff <= 1e-4,
        "{name}: odd-size logits differ by {odd_diff}"
    );
}

#[test]
fn lite0_matches_the_reference_with_pretrained_weights() {
    assert_parity(0);
}

#[test]
fn lite1_matches_the_reference_with_pretrained_weights() {
    assert_parity(1);
}

#[test]
fn lite2_matches_the_reference_with_pretrained_weights() {
    assert_parity(2);
}

#[test]
fn training_updates_the_stem_norm_with_momentum_0_01_and_same_padding() {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("efficientnet_lite0", vs.root(), true).unwrap();
    let images = Tensor::randn([2, 3, 224, 224], (Kind::Float, Device::Cpu));
    let out = model.forward_t(&images, true).unwrap();
    assert_eq!(out.embedding.size(), vec![2, 1280]);
    assert_eq!(out.logits.unwrap().size(), vec![2, 1000]);

    let variables = vs.variables();
    // TF "SAME" at stride 2 on 224 pads 0 before and 1 after.
    let stem = images.constant_pad_nd([0, 1, 0, 1]).conv2d::<Tensor>(
        &variables["_conv_stem.weight"],
        None,
        [2, 2],
        [0, 0],
        [1, 1],
        1,
    );
    let batch_mean = stem.mean_dim([0, 2, 3].as_slice(), false, Kind::Float);
    let diff = common::max_abs_diff(&variables["_bn0.running_mean"], &(batch_mean * 0.01));
    assert!(diff <= 1e-6, "running mean differs by {diff}");
}

fn top3(entry: &serde_json::Value) -> Vec<i64> {
    entry["top"]
        .as_array()
        .expect("a top list")
        .iter()
        .take(3)
        .map(|c| c["index"].as_i64().expect("an index"))
        .collect()
}

/// Runs `imagenet-classify` of the real binary on the cat and the espresso photos.
fn assert_classifies_the_samples(name: &str) {
    let cat = sample_photo("chelsea.png").expect("run ./workbench.sh setup first");
    let coffee = sample_photo("coffee.png").expect("run ./workbench.sh setup first");
    let output = Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(["imagenet-classify", "--backbone", name, "--json"])
        .arg(&cat)
        .arg(&coffee)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("the binary starts");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let cat_top = top3(&json[0]);
    let coffee_top = top3(&json[1]);
    println!("{name}: cat top 3 {cat_top:?}, coffee top 3 {coffee_top:?}");
    assert!(
        cat_top.iter().any(|i| [281, 282, 285].contains(i)),
        "{name}: no cat class in the top 3: {cat_top:?}"
    );
    assert!(
        coffee_top.contains(&967),
        "{name}: espresso not in the top 3: {coffee_top:?}"
    );
}

#[test]
fn lite0_knows_the_cat_and_the_espresso() {
    assert_classifies_the_samples("efficientnet_lite0");
}

#[test]
fn lite1_knows_the_cat_and_the_espresso() {
    assert_classifies_the_samples("efficientnet_lite1");
}

#[test]
fn lite2_knows_the_cat_and_the_espresso() {
    assert_classifies_the_samples("efficientnet_lite2");
}
