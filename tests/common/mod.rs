//! Helpers shared by the integration tests: the set-up's Python, parity fixtures, tensor
//! comparison and golden key lists.
#![allow(dead_code)] // Each test crate uses a different subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Kind, Tensor};

/// The Python of the set-up's venv (torch, torchvision and the reference packages).
pub fn venv_python() -> PathBuf {
    let python = transfer_workbench::assets::cache_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run ./workbench.sh setup first",
        python.display()
    );
    python
}

/// Runs `tests/fixtures/parity/<script>.py OUT_DIR [args]` and returns the folder it wrote.
pub fn run_parity_fixture(script: &str, args: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("a temp dir");
    let script_path = fixtures_dir().join("parity").join(format!("{script}.py"));
    let output = Command::new(venv_python())
        .arg(&script_path)
        .arg(out.path())
        .args(args)
        .output()
        .expect("python starts");
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script_path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The `tests/fixtures` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every tensor of a safetensors file by name.
pub fn read_tensors(path: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let a = a.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    let b = b.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    (a - b).abs().max().double_value(&[])
}

/// The golden state-dict key list `tests/fixtures/keys/<name>.txt`, sorted.
pub fn golden_keys(name: &str) -> Vec<String> {
    let path = fixtures_dir().join("keys").join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut keys: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.ends_with("num_batches_tracked"))
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys
}

/// The keys of a VarStore, sorted.
pub fn store_keys(vs: &tch::nn::VarStore) -> Vec<String> {
    let mut keys: Vec<String> = vs.variables().into_keys().collect();
    keys.sort();
    keys
}

/// Number of trainable parameters of a VarStore (what torchvision's `num_params` counts).
pub fn trainable_params(vs: &tch::nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Output strides of multi-scale feature maps for a square input of `size_px`.
pub fn strides(features: &[Tensor], size_px: i64) -> Vec<i64> {
    features.iter().map(|f| size_px / f.size()[2]).collect()
}

/// Largest differences of logits and embedding between `name` built with its head and
/// loaded strictly from the parity fixture `script`, and the Python reference; also the
/// multiply-adds per image and the feature strides of that forward pass.
pub struct Parity {
    pub logits_diff: f64,
    pub embedding_diff: f64,
    pub macs_per_image: f64,
    pub strides: Vec<i64>,
}

/// Runs the parity fixture `script` and compares `name` against it (see [`Parity`]).
pub fn parity(name: &str, script: &str, args: &[&str]) -> Parity {
    use transfer_workbench::model::{build_backbone, import_weights, layers::flops};
    let fixture = run_parity_fixture(script, args);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = build_backbone(name, vs.root(), true).unwrap();
    let report = import_weights(&vs, &fixture.path().join("weights.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());
    let expected = read_tensors(&fixture.path().join("expected.safetensors"));
    // The fixture must make the output depend on the input, or parity proves little.
    let embedding = &expected["embedding"];
    let spread = max_abs_diff(&embedding.get(0), &embedding.get(1));
    assert!(
        spread > 1e-2,
        "{script}: both test images give the same embedding ({spread})"
    );
    let input = &expected["input"];
    let (out, macs) = flops::count(|| tch::no_grad(|| model.forward_t(input, false)));
    let out = out.unwrap();
    Parity {
        logits_diff: max_abs_diff(&out.logits.unwrap(), &expected["logits"]),
        embedding_diff: max_abs_diff(&out.embedding, &expected["embedding"]),
        macs_per_image: macs as f64 / input.size()[0] as f64,
        strides: strides(&out.features, input.size()[3]),
    }
}

/// Runs the binary with `args` and returns its output, failing the test (with stdout and
/// stderr) when it exits unsuccessfully.
pub fn workbench_ok(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(args)
        .output()
        .expect("the binary starts");
    assert!(
        output.status.success(),
        "{args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A folder of two classes, `red` and `blue`, that differ in colour and texture: `n` PNG
/// images of 40 × 40 each.
pub fn make_colour_data(root: &Path, n: u32) {
    for (class, base) in [("red", [200u8, 40, 40]), ("blue", [40u8, 60, 200])] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..n {
            image::RgbImage::from_fn(40, 40, |x, y| {
                let wobble = ((x * 7 + y * 3 + i * 11) % 37) as u8;
                image::Rgb(base.map(|c| c.saturating_add(wobble)))
            })
            .save(root.join(class).join(format!("{class}_{i}.png")))
            .unwrap();
        }
    }
}

/// One JSON value per line of `stdout`.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// 24 noisy 48 px images with one or two bright disks and their 0/255 masks.
pub fn segmentation_folder(root: &Path) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(root.join("masks")).unwrap();
    for i in 0..24 {
        let disks: Vec<(f32, f32, f32)> = (0..rng.gen_range(1..=2))
            .map(|_| {
                (
                    rng.gen_range(10.0..38.0),
                    rng.gen_range(10.0..38.0),
                    rng.gen_range(5.0..9.0),
                )
            })
            .collect();
        let inside = |x: u32, y: u32| {
            disks
                .iter()
                .any(|(cx, cy, r)| (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r)
        };
        let image = image::RgbImage::from_fn(48, 48, |x, y| {
            let base = if inside(x, y) { 180.0 } else { 70.0 };
            let v = (base + rng.gen_range(-30.0f32..30.0)).clamp(0.0, 255.0) as u8;
            image::Rgb([v, v, v])
        });
        let mask = image::GrayImage::from_fn(48, 48, |x, y| {
            image::Luma([if inside(x, y) { 255 } else { 0 }])
        });
        image
            .save(root.join(format!("images/tile {i}.png")))
            .unwrap();
        mask.save(root.join(format!("masks/tile {i}.png"))).unwrap();
    }
}
