//! VGG-16 against torchvision: golden key lists and parameter counts, logits and pooled
//! embeddings on the same weights (random for `vgg16` / `vgg16_bn`, the shipped Keras
//! ImageNet base for `vgg16_keras` on two photos), multiply-adds against torchvision's
//! GFLOPS, feature strides, a training pass without the head, and the shipped weights
//! loading strictly as an encoder.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::{ModelError, WeightsChoice, build_backbone, load_backbone};

/// torchvision's `num_params` with the 1000-class head.
const VGG16_PARAMS: i64 = 138_357_544;
const VGG16_BN_PARAMS: i64 = 138_365_992;
/// torchvision's GFLOPS (multiply-adds) at 224 px, both variants.
const VGG16_GMACS: f64 = 15.47;
const CNN_STRIDES: &[i64] = &[2, 4, 8, 16, 32];

#[test]
fn keys_and_parameter_counts_equal_torchvision() {
    for (name, golden, params) in [
        ("vgg16", "vgg16", VGG16_PARAMS),
        ("vgg16_bn", "vgg16_bn", VGG16_BN_PARAMS),
        ("vgg16_keras", "vgg16", VGG16_PARAMS),
    ] {
        let vs = VarStore::new(Device::Cpu);
        let _model = build_backbone(name, vs.root(), true).unwrap();
        assert_eq!(
            common::store_keys(&vs),
            common::golden_keys(golden),
            "{name}"
        );
        assert_eq!(common::trainable_params(&vs), params, "{name}");
    }
}

#[test]
fn random_vgg16_with_and_without_batch_norm_matches_torchvision() {
    for name in ["vgg16", "vgg16_bn"] {
        let parity = common::parity(name, "vgg", &[name]);
        let gmacs = parity.macs_per_image / 1e9;
        println!(
            "{name}: logits differ by {:.3e}, embeddings by {:.3e}; {gmacs:.4} GMACs per image",
            parity.logits_diff, parity.embedding_diff
        );
        assert!(parity.logits_diff <= 1e-4, "{name}: {}", parity.logits_diff);
        assert!(
            parity.embedding_diff <= 1e-4,
            "{name}: {}",
            parity.embedding_diff
        );
        assert_eq!(parity.strides, CNN_STRIDES);
        assert!(
            (gmacs / VGG16_GMACS - 1.0).abs() < 0.01,
            "{name}: {gmacs} GMACs"
        );
    }
}

/// The fixture itself checks the converted base against Keras' computation from the ONNX
/// file (BGR input); here the Rust network on the same weights and photos must equal
/// torchvision's. Caffe inputs are 0-255, so embeddings reach ~100: the bound is 1e-4 of the
/// largest value (fp32 round-off), and the absolute figures are printed.
#[test]
fn shipped_keras_base_matches_torchvision_on_two_photos() {
    let parity = common::parity("vgg16_keras", "vgg", &["vgg16_keras"]);
    println!(
        "vgg16_keras: logits differ by {:.3e}, embeddings by {:.3e}",
        parity.logits_diff, parity.embedding_diff
    );
    assert!(
        parity.embedding_diff <= 1e-4 * 120.0,
        "{}",
        parity.embedding_diff
    );
    assert!(parity.logits_diff <= 1e-4 * 20.0, "{}", parity.logits_diff);
    assert_eq!(parity.strides, CNN_STRIDES);
}

#[test]
fn trains_without_the_imagenet_head() {
    for name in ["vgg16", "vgg16_bn"] {
        let vs = VarStore::new(Device::Cpu);
        let model = build_backbone(name, vs.root(), false).unwrap();
        assert!(!common::store_keys(&vs).contains(&"classifier.6.weight".to_owned()));
        let images = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, true).unwrap();
        assert!(out.logits.is_none());
        assert_eq!(out.embedding.size(), vec![2, 512]);
        assert_eq!(common::strides(&out.features, 64), CNN_STRIDES);
        let sum = out.embedding.sum(Kind::Double).double_value(&[]);
        assert!(sum.is_finite(), "{name}");
    }
}

#[test]
fn shipped_weights_load_strictly_as_an_encoder_and_refuse_an_imagenet_head() {
    let loaded = load_backbone(
        "vgg16_keras",
        false,
        &WeightsChoice::Pretrained,
        Device::Cpu,
    )
    .expect("run ./workbench.sh setup: vgg16_keras.safetensors");
    let report = loaded.report.unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    assert_eq!(report.matched.len(), 26);
    let info = loaded.model.info();
    assert_eq!(info.normalization.std, [1.0 / 255.0; 3]);
    assert!(info.pretrained.as_ref().unwrap().origin.contains("BGR"));
    let err = load_backbone("vgg16_keras", true, &WeightsChoice::Pretrained, Device::Cpu)
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::NoPretrainedHead(_)), "{err}");
}
