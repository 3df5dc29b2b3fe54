//! PyTorch zip checkpoints (`torch.save`) through the weight import: real state dicts,
//! wrapped checkpoints, strided views and every storage dtype, and the files that must be
//! refused with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::path::Path;
use std::process::Command;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::weights::{WeightsError, read_weights};
use transfer_workbench::model::{build_backbone, import_weights};

/// Runs `tests/fixtures/weights/make_torch_checkpoints.py OUT names...`.
fn checkpoints(names: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let script = common::fixtures_dir().join("weights/make_torch_checkpoints.py");
    let output = Command::new(common::venv_python())
        .arg(&script)
        .arg(out.path())
        .args(names)
        .output()
        .expect("python starts");
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Asserts that every expected tensor is present with the same dtype, shape and values.
fn assert_same_tensors(path: &Path, expected: &Path) {
    let got = read_weights(path).unwrap();
    let expected = common::read_tensors(expected);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, want) in &expected {
        let have = &got[key];
        assert_eq!(have.kind(), want.kind(), "{key}");
        assert_eq!(have.size(), want.size(), "{key}");
        assert!(have.is_contiguous(), "{key} is not contiguous");
        assert!(have.equal(want), "{key} differs: {have} vs {want}");
    }
}

fn resnet18_from(
    path: &Path,
    strict: bool,
) -> (VarStore, Box<dyn transfer_workbench::model::Backbone>) {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone("resnet18", vs.root(), true).unwrap();
    let report = import_weights(&vs, path, strict).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    assert_eq!(report.matched, common::golden_keys("resnet18"));
    (vs, model)
}

#[test]
fn torchvision_resnet18_state_dict_loads_like_its_safetensors_copy() {
    let dir = checkpoints(&["resnet18"]);
    let pth = dir.path().join("resnet18.pth");
    let safetensors = dir.path().join("resnet18.safetensors");
    assert_same_tensors(&pth, &safetensors);

    let (_vs_pth, from_pth) = resnet18_from(&pth, true);
    let (_vs_st, from_st) = resnet18_from(&safetensors, true);
    tch::manual_seed(0);
    let input = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| from_pth.forward_t(&input, false)).unwrap();
    let b = tch::no_grad(|| from_st.forward_t(&input, false)).unwrap();
    let logits_diff = common::max_abs_diff(&a.logits.unwrap(), &b.logits.unwrap());
    let embedding_diff = common::max_abs_diff(&a.embedding, &b.embedding);
    println!("resnet18 .pth vs .safetensors: logits {logits_diff:e}, embedding {embedding_diff:e}");
    assert_eq!(logits_diff, 0.0);
    assert_eq!(embedding_diff, 0.0);
}

#[test]
fn wrapped_training_checkpoint_yields_its_state_dict() {
    let dir = checkpoints(&["wrapped"]);
    let (vs, _model) = resnet18_from(&dir.path().join("wrapped.pth"), true);
    assert!(vs.variables().contains_key("fc.weight"));
}

#[test]
fn wrong_shaped_head_is_reported_and_refused_when_strict() {
    let dir = checkpoints(&["wrong_fc"]);
    let path = dir.path().join("wrong_fc.pth");
    let vs = VarStore::new(Device::Cpu);
    let _model = build_backbone("resnet18", vs.root(), true).unwrap();
    let report = import_weights(&vs, &path, false).unwrap();
    let keys: Vec<&str> = report.mis_shaped.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["fc.bias", "fc.weight"]);
    assert_eq!(report.mis_shaped[1].found, vec![10, 512]);
    assert_eq!(report.mis_shaped[1].expected, vec![1000, 512]);
    assert!(report.missing.is_empty() && report.unused.is_empty());
    assert_eq!(
        report.matched.len(),
        common::golden_keys("resnet18").len() - 2
    );
    let err = import_weights(&vs, &path, true).unwrap_err();
    assert!(matches!(err, WeightsError::Mismatch { .. }), "{err}");
    assert!(err.to_string().ends_with("wrong_fc.pth"), "{err}");
}

#[test]
fn strided_views_and_every_dtype_round_trip_exactly() {
    let dir = checkpoints(&["tensors"]);
    let expected = dir.path().join("tensors.safetensors");
    assert_same_tensors(&dir.path().join("tensors.pth"), &expected);
    // The same entries deflated under another top folder.
    assert_same_tensors(&dir.path().join("deflated.pth"), &expected);
    assert_same_tensors(
        &dir.path().join("big_endian.pth"),
        &dir.path().join("big_endian.safetensors"),
    );
}

/// The error of reading `name`, which must name the file.
fn read_error(dir: &Path, name: &str) -> String {
    let err = read_weights(&dir.join(name)).unwrap_err().to_string();
    assert!(
        err.ends_with(name),
        "the error does not name the file: {err}"
    );
    assert!(!err.contains('\n'), "the error is not one line: {err}");
    err
}

#[test]
fn forbidden_torchscript_and_empty_checkpoints_are_refused_clearly() {
    let dir = checkpoints(&["refused"]);
    let dir = dir.path();
    let evil = read_error(dir, "evil.pth");
    assert!(
        evil.contains("`os.system`") && evil.contains("nothing is executed"),
        "{evil}"
    );
    let script = read_error(dir, "torchscript.pt");
    assert!(script.contains("TorchScript archive"), "{script}");
    let empty = read_error(dir, "no_tensors.pth");
    assert!(empty.contains("no state dict"), "{empty}");
}

#[test]
fn truncated_and_damaged_archives_give_clear_errors() {
    let dir = checkpoints(&["tensors"]);
    let bytes = std::fs::read(dir.path().join("tensors.pth")).unwrap();
    let truncated = dir.path().join("truncated.pth");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_error(dir.path(), "truncated.pth");
    assert!(err.contains("truncated or damaged"), "{err}");

    // Flip one byte of the stored `base` tensor (0., 1., ..., 11.): its CRC no longer matches.
    let five_six = [5.0f32.to_le_bytes(), 6.0f32.to_le_bytes()].concat();
    let at = find(&bytes, &five_six).unwrap() + 1;
    let mut damaged = bytes.clone();
    damaged[at] ^= 0xff;
    std::fs::write(dir.path().join("damaged.pth"), &damaged).unwrap();
    let err = read_error(dir.path(), "damaged.pth");
    assert!(err.contains("could not read the weights file"), "{err}");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
