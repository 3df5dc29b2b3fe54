//! Every entry of the weight catalogue against a fixture checkpoint with the same keys and
//! shapes: torchvision's network for the entry (random weights, randomised normalisation
//! statistics) saved by torch in the zip format and in the legacy pickle format goes through
//! the same install as a downloaded file (`zoo::install_to`: read, key renames, strict check,
//! safetensors), loads strictly into the backbone this build makes for the entry, and gives
//! torchvision's logits within 1e-4; the legacy file reads to exactly the zip file's
//! tensors, so it installs alike.
//! Entries that fit one backbone (`resnet50.IMAGENET1K_V1` and `_V2`) share its keys and
//! shapes, so one fixture serves them all. One test per family, so the
//! families run in parallel and a failure names its family. Fixtures are written to
//! `/dev/shm` where there is one (they reach 2.4 GB for ViT-H).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Device, nn::VarStore};
use transfer_workbench::model::catalogue::{WeightEntry, backbone_of, entries};
use transfer_workbench::model::vit::VitConfig;
use transfer_workbench::model::weights::read_weights;
use transfer_workbench::model::zoo::install_to;
use transfer_workbench::model::{build_backbone, import_weights};

/// The entries of `family`, grouped by the backbone they fit, every one of them fitting one.
fn backbones_of(family: &str) -> Vec<(&'static str, Vec<&'static WeightEntry>)> {
    let mut grouped: Vec<(&'static str, Vec<&'static WeightEntry>)> = Vec::new();
    for entry in entries().unwrap().iter().filter(|e| e.family == family) {
        let backbone = backbone_of(entry)
            .unwrap_or_else(|| panic!("{}: no backbone of this build fits it", entry.name));
        match grouped.iter_mut().find(|(name, _)| *name == backbone) {
            Some((_, list)) => list.push(entry),
            None => grouped.push((backbone, vec![entry])),
        }
    }
    assert!(!grouped.is_empty(), "the catalogue has no {family} entry");
    grouped
}

/// The input side of a fixture: a small image every family takes (Inception-v3 needs at
/// least 75 px); for a ViT, seven patches a side (its position embedding is interpolated
/// from the entry's size, here as in torchvision's `interpolate_embeddings`).
fn fixture_side(entry: &WeightEntry) -> u32 {
    if entry.family != "VisionTransformer" {
        return 96;
    }
    let backbone = backbone_of(entry).unwrap();
    let config = VitConfig::by_name(backbone).unwrap_or_else(|| panic!("{backbone}: no ViT"));
    let patch = u32::try_from(config.patch_size_px).unwrap();
    7 * patch
}

/// A temporary folder in memory where the machine has `/dev/shm`, else in the temp dir.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Writes the fixture for `entry`'s network with a `batch` of inputs of `side` px into a
/// scratch folder.
fn fixture(entry: &WeightEntry, side: u32, batch: u32) -> tempfile::TempDir {
    let backbone = entry.backbone.as_str();
    let out = scratch_dir();
    let script = common::fixtures_dir().join("weights/catalogue_checkpoints.py");
    let output = Command::new(common::venv_python())
        .arg(&script)
        .arg(out.path())
        .arg(backbone)
        .args([entry.crop_px, side, batch].map(|n| n.to_string()))
        .output()
        .expect("python starts");
    assert!(
        output.status.success(),
        "{} {backbone} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Installs `checkpoint` as `entry` would be after a download and returns where.
fn install(entry: &WeightEntry, checkpoint: &Path) -> PathBuf {
    let installed = checkpoint.with_extension("safetensors");
    install_to(entry, checkpoint, &installed)
        .unwrap_or_else(|e| panic!("{}: {}: {e}", entry.name, checkpoint.display()));
    installed
}

/// Loads `installed` strictly into `backbone` and returns the largest difference of its
/// logits from torchvision's, relative to the logits' magnitude (at least 1).
fn logits_difference(backbone: &str, installed: &Path, expected: &Path) -> f64 {
    let vs = VarStore::new(Device::Cpu);
    let model = build_backbone(backbone, vs.root(), true).unwrap();
    let report = import_weights(&vs, installed, true).unwrap();
    assert!(report.is_exact(), "{backbone}: {}", report.summary());
    let expected = common::read_tensors(expected);
    let logits = tch::no_grad(|| model.forward_t(&expected["input"], false))
        .unwrap()
        .logits
        .unwrap();
    let scale = expected["logits"].abs().max().double_value(&[]).max(1.0);
    common::max_abs_diff(&logits, &expected["logits"]) / scale
}

/// Asserts that two checkpoint files read to the same keys and bit-identical tensors.
fn assert_same_tensors(a: &Path, b: &Path) {
    let (a_tensors, b_tensors) = (read_weights(a).unwrap(), read_weights(b).unwrap());
    assert_eq!(
        a_tensors.keys().collect::<Vec<_>>(),
        b_tensors.keys().collect::<Vec<_>>()
    );
    for (key, tensor) in &a_tensors {
        assert!(
            tensor.equal(&b_tensors[key]),
            "{}: {key} differs",
            b.display()
        );
    }
}

/// Checks every backbone of `family`: both checkpoint formats, against torchvision.
fn check_family(family: &str) {
    for (backbone, entries) in backbones_of(family) {
        let first = entries[0];
        let dir = fixture(first, fixture_side(first), 2);
        let zip = install(first, &dir.path().join("zip.pth"));
        let diff = logits_difference(backbone, &zip, &dir.path().join("expected.safetensors"));
        // The legacy file reads to exactly the zip file's tensors, so it installs alike.
        assert_same_tensors(&dir.path().join("zip.pth"), &dir.path().join("legacy.pth"));
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        println!(
            "{backbone} ({}): zip and legacy files install alike; relative logits difference \
             {diff:.2e}",
            names.join(", ")
        );
        assert!(diff <= 1e-4, "{backbone}: {diff}");
    }
}

#[test]
fn resnet_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("ResNet");
}

#[test]
fn densenet_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("DenseNet");
}

#[test]
fn efficientnet_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("EfficientNet");
}

#[test]
fn mobilenet_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("MobileNetV2");
    check_family("MobileNetV3");
}

#[test]
fn convnext_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("ConvNeXt");
}

#[test]
fn vit_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("VisionTransformer");
}

#[test]
fn vgg_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("VGG");
}

#[test]
fn swin_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("Swin");
}

#[test]
fn inception_v3_entries_load_from_zip_and_legacy_checkpoints() {
    check_family("Inception-v3");
}
