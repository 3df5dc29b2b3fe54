//! The torchvision CNN families against torchvision itself: golden key lists and parameter
//! counts, logits and pooled embeddings within 1e-4 on the same weights, feature strides,
//! multiply-adds against torchvision's published GFLOPS, and a training-mode pass without
//! the ImageNet head. (EfficientNet-Lite, ViT and TorchScript backbones have files of their own.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::build_backbone;

/// What torchvision says about one model.
struct Spec {
    name: &'static str,
    /// Parity fixture script in tests/fixtures/parity and its extra arguments.
    script: &'static str,
    args: &'static [&'static str],
    /// torchvision's `num_params` (with the 1000-class head).
    params: i64,
    /// torchvision's GFLOPS (multiply-adds) at 224 px, and the relative tolerance.
    gmacs: f64,
    gmacs_tolerance: f64,
    strides: &'static [i64],
    /// A key that belongs to the ImageNet head only.
    head_key: &'static str,
}

fn keys_and_params(spec: &Spec) {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone(spec.name, vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys(spec.name));
    assert_eq!(common::trainable_params(&vs), spec.params, "{}", spec.name);
}

fn matches_torchvision(spec: &Spec) {
    let parity = common::parity(spec.name, spec.script, spec.args);
    let gmacs = parity.macs_per_image / 1e9;
    println!(
        "{}: logits differ by {:.3e}, embeddings by {:.3e}; {gmacs:.4} GMACs per image",
        spec.name, parity.logits_diff, parity.embedding_diff
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
    assert_eq!(parity.strides, spec.strides);
    assert!(
        (gmacs / spec.gmacs - 1.0).abs() < spec.gmacs_tolerance,
        "{gmacs} GMACs against torchvision's {}",
        spec.gmacs
    );
}

fn headless_training_pass(spec: &Spec) {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(spec.name, vs.root(), false).unwrap();
    assert!(!common::store_keys(&vs).contains(&spec.head_key.to_owned()));
    let images = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let out = model.forward_t(&images, true).unwrap();
    assert!(out.logits.is_none());
    assert_eq!(out.embedding.size(), vec![2, model.info().embedding_dim]);
    assert_eq!(common::strides(&out.features, 64), spec.strides);
    assert!(
        out.embedding
            .sum(Kind::Double)
            .double_value(&[])
            .is_finite()
    );
}

macro_rules! torchvision_backbone {
    ($module:ident, $spec:expr) => {
        mod $module {
            use super::*;
            const SPEC: Spec = $spec;

            #[test]
            fn keys_and_parameter_count_equal_torchvision() {
                keys_and_params(&SPEC);
            }

            #[test]
            fn logits_embedding_and_cost_match_torchvision() {
                matches_torchvision(&SPEC);
            }

            #[test]
            fn trains_without_the_imagenet_head() {
                headless_training_pass(&SPEC);
            }
        }
    };
}

const CNN_STRIDES: &[i64] = &[2, 4, 8, 16, 32];

torchvision_backbone!(
    mobilenet_v2,
    Spec {
        name: "mobilenet_v2",
        script: "mobilenet_v2",
        args: &[],
        params: 3_504_872,
        // torchvision rounds this one to 0.3.
        gmacs: 0.3,
        gmacs_tolerance: 0.02,
        strides: CNN_STRIDES,
        head_key: "classifier.1.weight",
    }
);
torchvision_backbone!(
    mobilenet_v3_large,
    Spec {
        name: "mobilenet_v3_large",
        script: "mobilenet_v3_large",
        args: &[],
        params: 5_483_032,
        gmacs: 0.217,
        gmacs_tolerance: 0.01,
        strides: CNN_STRIDES,
        head_key: "classifier.3.weight",
    }
);
torchvision_backbone!(
    efficientnet_b0,
    Spec {
        name: "efficientnet_b0",
        script: "efficientnet_b0",
        args: &[],
        params: 5_288_548,
        gmacs: 0.386,
        gmacs_tolerance: 0.01,
        strides: CNN_STRIDES,
        head_key: "classifier.1.weight",
    }
);
torchvision_backbone!(
    resnet18,
    Spec {
        name: "resnet18",
        script: "resnet",
        args: &["resnet18"],
        params: 11_689_512,
        gmacs: 1.814,
        gmacs_tolerance: 0.01,
        strides: CNN_STRIDES,
        head_key: "fc.weight",
    }
);
torchvision_backbone!(
    resnet34,
    Spec {
        name: "resnet34",
        script: "resnet",
        args: &["resnet34"],
        params: 21_797_672,
        gmacs: 3.664,
        gmacs_tolerance: 0.01,
        strides: CNN_STRIDES,
        head_key: "fc.weight",
    }
);
torchvision_backbone!(
    resnet50,
    Spec {
        name: "resnet50",
        script: "resnet",
        args: &["resnet50"],
        params: 25_557_032,
        gmacs: 4.089,
        gmacs_tolerance: 0.01,
        strides: CNN_STRIDES,
        head_key: "fc.weight",
    }
);
torchvision_backbone!(
    densenet121,
    Spec {
        name: "densenet121",
        script: "densenet",
        args: &[],
        params: 7_978_856,
        gmacs: 2.834,
        gmacs_tolerance: 0.01,
        strides: CNN_STRIDES,
        head_key: "classifier.weight",
    }
);
torchvision_backbone!(
    convnext_tiny,
    Spec {
        name: "convnext_tiny",
        script: "convnext_tiny",
        args: &[],
        params: 28_589_128,
        gmacs: 4.456,
        gmacs_tolerance: 0.01,
        strides: &[4, 8, 16, 32],
        head_key: "classifier.2.weight",
    }
);
