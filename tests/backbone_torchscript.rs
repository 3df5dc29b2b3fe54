//! The bring-your-own TorchScript backbone: output selection against Python, fine-tuning of
//! its parameters through the VarStore, and clear errors naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};
use transfer_workbench::model::torchscript::{EmbeddingOutput, TorchScriptBackbone};
use transfer_workbench::model::{Backbone, ModelError, Normalization};

fn load(
    path: &Path,
    vs: &VarStore,
    output: EmbeddingOutput,
) -> Result<TorchScriptBackbone, ModelError> {
    TorchScriptBackbone::load(
        path,
        vs.root() / "backbone",
        output,
        64,
        Normalization::IMAGENET,
    )
}

/// The fixture's folder, written once per test run under Cargo's target tmp folder.
fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("torchscript_backbone");
        let script = common::fixtures_dir().join("parity/torchscript_backbone.py");
        let output = Command::new(common::venv_python())
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("python starts");
        assert!(
            output.status.success(),
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

#[test]
fn embedding_and_feature_map_match_python() {
    let expected = common::read_tensors(&fixture_dir().join("expected.safetensors"));
    let cases = [
        ("tuple_backbone.pt", EmbeddingOutput::TupleElement(0), false),
        ("tuple_backbone.pt", EmbeddingOutput::TupleElement(1), true),
        (
            "dict_backbone.pt",
            EmbeddingOutput::DictKey("embedding".into()),
            false,
        ),
        (
            "dict_backbone.pt",
            EmbeddingOutput::DictKey("feature_map".into()),
            true,
        ),
        ("tensor_backbone.pt", EmbeddingOutput::Tensor, true),
    ];
    for (file, output, has_map) in cases {
        let vs = VarStore::new(Device::Cpu);
        let model = load(&fixture_dir().join(file), &vs, output.clone()).unwrap();
        assert_eq!(model.info().embedding_dim, 64, "{file} {output}");
        assert!(model.info().pretrained.is_none());
        let out = tch::no_grad(|| model.forward_t(&expected["input"], false)).unwrap();
        let diff = common::max_abs_diff(&out.embedding, &expected["embedding"]);
        eprintln!("{file} ({output}): embedding max abs diff {diff:.3e}");
        assert!(
            diff <= 1e-5,
            "{file} ({output}): embeddings differ by {diff}"
        );
        assert_eq!(out.features.len(), usize::from(has_map), "{file} {output}");
        if has_map {
            let diff = common::max_abs_diff(&out.features[0], &expected["feature_map"]);
            assert!(
                diff <= 1e-5,
                "{file} ({output}): feature maps differ by {diff}"
            );
        }
    }
}

/// 32 images (32 px, the CNN is fully convolutional) of two visibly different classes:
/// bright left half or bright right half, with noise.
fn synthetic_set() -> (Tensor, Tensor) {
    let noise = Tensor::randn([32, 3, 32, 32], (Kind::Float, Device::Cpu)) * 0.3;
    let labels = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(2);
    let column = Tensor::arange(32, (Kind::Float, Device::Cpu)).view([1, 1, 1, 32]);
    let left = column.lt(16).to_kind(Kind::Float);
    let right = column.ge(16).to_kind(Kind::Float);
    let is_right = labels.to_kind(Kind::Float).view([32, 1, 1, 1]);
    let pattern = &left * (1.0 - &is_right) + &right * &is_right;
    (noise + pattern * 2.0 - 1.0, labels)
}

#[test]
fn fine_tuning_changes_the_torchscript_parameters_and_lowers_the_loss() {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let backbone = load(
        &fixture_dir().join("tuple_backbone.pt"),
        &vs,
        EmbeddingOutput::TupleElement(0),
    )
    .unwrap();
    let backbone_keys: Vec<String> = vs
        .variables()
        .into_keys()
        .filter(|k| k.starts_with("backbone."))
        .collect();
    assert!(
        backbone_keys.contains(&"backbone.features_0_weight".to_owned()),
        "{backbone_keys:?}"
    );
    let head = nn::linear(
        vs.root() / "head",
        backbone.info().embedding_dim,
        2,
        Default::default(),
    );
    assert_eq!(vs.trainable_variables().len(), backbone_keys.len() + 2);
    let before: Vec<Tensor> = backbone_keys
        .iter()
        .map(|k| vs.variables()[k].copy())
        .collect();
    let (images, labels) = synthetic_set();
    let probe = images.narrow(0, 0, 4);
    let embedding_before = tch::no_grad(|| backbone.forward_t(&probe, false))
        .unwrap()
        .embedding;

    let mut opt = nn::AdamW::default().build(&vs, 3e-3).unwrap();
    let mut losses = Vec::new();
    for _ in 0..20 {
        let out = backbone.forward_t(&images, true).unwrap();
        let loss = out.embedding.apply(&head).cross_entropy_for_logits(&labels);
        opt.backward_step(&loss);
        losses.push(loss.double_value(&[]));
    }
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[15..].iter().sum::<f64>() / 5.0;
    eprintln!("losses: {losses:.3?}");
    assert!(
        last < 0.7 * first,
        "loss did not fall enough: {first:.3} -> {last:.3}"
    );

    for (key, old) in backbone_keys.iter().zip(&before) {
        let change = common::max_abs_diff(&vs.variables()[key], old);
        assert!(change > 0.0, "{key} did not change");
    }
    let embedding_after = tch::no_grad(|| backbone.forward_t(&probe, false))
        .unwrap()
        .embedding;
    assert!(
        common::max_abs_diff(&embedding_after, &embedding_before) > 1e-4,
        "the module did not see the updates"
    );
}

#[test]
fn missing_and_foreign_files_give_errors_naming_the_file() {
    let dir = fixture_dir();
    let text = dir.join("notes.pt");
    std::fs::write(&text, b"just some text, not a model").unwrap();
    let cases = [
        (dir.join("no_such_backbone.pt"), "file not found"),
        (text, "not a TorchScript file"),
        (dir.join("state_dict.pt"), "without TorchScript code"),
    ];
    for (path, needle) in cases {
        eprintln!("{}", path.display());
        let vs = VarStore::new(Device::Cpu);
        let err = load(&path, &vs, EmbeddingOutput::Tensor).unwrap_err();
        let message = err.to_string();
        eprintln!("{message}");
        assert!(matches!(err, ModelError::TorchScript { .. }), "{message}");
        assert!(message.contains(needle), "{message}");
        assert!(message.ends_with(&path.display().to_string()), "{message}");
        assert!(!message.contains('\n'), "one line please: {message}");
    }
}

#[test]
fn wrong_output_selectors_give_clear_errors() {
    let dir = fixture_dir();
    let cases = [
        (
            "tuple_backbone.pt",
            EmbeddingOutput::TupleElement(2),
            "returns 2 values",
        ),
        (
            "tuple_backbone.pt",
            EmbeddingOutput::Tensor,
            "a tuple of 2 values",
        ),
        (
            "tuple_backbone.pt",
            EmbeddingOutput::DictKey("embedding".into()),
            "a tuple",
        ),
        (
            "dict_backbone.pt",
            EmbeddingOutput::DictKey("logits".into()),
            "'embedding'",
        ),
        (
            "dict_backbone.pt",
            EmbeddingOutput::DictKey("size".into()),
            "shape []",
        ),
        (
            "tensor_backbone.pt",
            EmbeddingOutput::TupleElement(0),
            "a tensor of shape",
        ),
    ];
    for (file, output, needle) in cases {
        let vs = VarStore::new(Device::Cpu);
        let err = load(&dir.join(file), &vs, output).unwrap_err();
        let message = err.to_string();
        eprintln!("{message}");
        assert!(message.contains(needle), "{message}");
        assert!(message.ends_with(file), "{message}");
    }
}
