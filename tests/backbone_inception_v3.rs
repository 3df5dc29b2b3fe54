//! Inception-v3 against torchvision's pretrained-style model (`aux_logits=True`,
//! `transform_input=True`): golden key list and parameter count with the auxiliary
//! classifier, logits and pooled embedding on the same random weights, multiply-adds against
//! torchvision's GFLOPS, the five nominal feature strides, a training step without the head, and
//! the catalogue offering the weights (its installer on torchvision's files:
//! `tests/weights_catalogue_fixtures.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::OptimizerConfig, nn::VarStore};
use transfer_workbench::model::backbone::known_backbones;
use transfer_workbench::model::build_backbone;
use transfer_workbench::model::catalogue::{self, WeightStatus};

/// torchvision's `num_params`, counting the auxiliary classifier.
const PARAMS: i64 = 27_161_264;
/// torchvision's GFLOPS (multiply-adds) at 299 px.
const GMACS: f64 = 5.713;

/// Unpadded convolutions make map sizes fall short of exact multiples (299 px gives 147, 71,
/// 35, 17, 8): the stride of each map is the power of two nearest to input / map size.
fn nominal_strides(features: &[Tensor], size_px: i64) -> Vec<i64> {
    features
        .iter()
        .map(|f| {
            let ratio = size_px as f64 / f.size()[2] as f64;
            1i64 << ratio.log2().round() as u32
        })
        .collect()
}

#[test]
fn keys_and_parameter_count_equal_torchvision() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone("inception_v3", vs.root(), true).unwrap();
    let keys = common::store_keys(&vs);
    assert_eq!(keys, common::golden_keys("inception_v3"));
    assert!(keys.contains(&"AuxLogits.fc.weight".to_owned()));
    assert_eq!(common::trainable_params(&vs), PARAMS);
}

#[test]
fn logits_embedding_and_cost_match_torchvision() {
    let parity = common::parity("inception_v3", "inception_v3", &[]);
    let gmacs = parity.macs_per_image / 1e9;
    println!(
        "inception_v3: logits differ by {:.3e}, embeddings by {:.3e}; {gmacs:.4} GMACs per image",
        parity.logits_diff, parity.embedding_diff
    );
    assert!(parity.logits_diff <= 1e-4, "{}", parity.logits_diff);
    assert!(parity.embedding_diff <= 1e-4, "{}", parity.embedding_diff);
    assert!((gmacs / GMACS - 1.0).abs() < 0.01, "{gmacs} GMACs");
}

#[test]
fn five_feature_maps_at_nominal_strides_2_to_32() {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("inception_v3", vs.root(), false).unwrap();
    let images = Tensor::randn([1, 3, 299, 299], (Kind::Float, Device::Cpu));
    let out = tch::no_grad(|| model.forward_t(&images, false)).unwrap();
    let sides: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
    assert_eq!(sides, [147, 71, 35, 17, 8]);
    let channels: Vec<i64> = out.features.iter().map(|f| f.size()[1]).collect();
    assert_eq!(channels, [64, 192, 288, 768, 2048]);
    assert_eq!(nominal_strides(&out.features, 299), [2, 4, 8, 16, 32]);
}

#[test]
fn a_training_step_without_the_imagenet_head_changes_the_weights() {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("inception_v3", vs.root(), false).unwrap();
    let keys = common::store_keys(&vs);
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("AuxLogits") || k.starts_with("fc."))
    );
    let before = vs.variables()["Conv2d_1a_3x3.conv.weight"].copy();
    let mean_before = vs.variables()["Mixed_7c.branch_pool.bn.running_mean"].copy();
    let images = Tensor::randn([2, 3, 128, 128], (Kind::Float, Device::Cpu));
    let out = model.forward_t(&images, true).unwrap();
    assert!(out.logits.is_none());
    assert_eq!(out.embedding.size(), vec![2, 2048]);
    // At 128 px the unpadded convolutions leave maps of 61, 28, 13, 6 and 2 px.
    let sides: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
    assert_eq!(sides, [61, 28, 13, 6, 2]);
    let mut opt = tch::nn::Sgd::default().build(&vs, 0.01).unwrap();
    let loss = out.embedding.square().mean(Kind::Float);
    opt.backward_step(&loss);
    assert!(loss.double_value(&[]).is_finite());
    assert!(!vs.variables()["Conv2d_1a_3x3.conv.weight"].equal(&before));
    assert!(!vs.variables()["Mixed_7c.branch_pool.bn.running_mean"].equal(&mean_before));
}

#[test]
fn the_catalogue_offers_torchvision_weights() {
    let info = known_backbones()
        .into_iter()
        .find(|b| b.name == "inception_v3")
        .unwrap();
    assert_eq!((info.family, info.input_size_px), ("Inception-v3", 299));
    assert!(catalogue::find_usable("inception_v3").is_ok());
    let options = catalogue::weight_options(&info);
    assert_eq!(options.len(), 1, "{options:?}");
    assert_eq!(options[0].name, "inception_v3.IMAGENET1K_V1");
    assert!(!matches!(options[0].status, WeightStatus::UserSupplied));
}
