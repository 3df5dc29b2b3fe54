//! The first end-to-end path: the real binary classifies the shipped photos with pretrained
//! MobileNetV2, runs from a plain environment (no LD_LIBRARY_PATH), and refuses to open a
//! window without a display instead of panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::PathBuf;
use std::process::{Command, Output};

use transfer_workbench::model::imagenet::sample_photo;

fn workbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("the binary starts")
}

fn classify_json(images: &[PathBuf]) -> (Output, serde_json::Value) {
    let mut args = vec!["imagenet-classify", "--backbone", "mobilenet_v2", "--json"];
    let paths: Vec<String> = images.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let output = workbench(&args);
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output, json)
}

fn top_indices(entry: &serde_json::Value) -> Vec<i64> {
    entry["top"]
        .as_array()
        .expect("a top list")
        .iter()
        .map(|c| c["index"].as_i64().expect("an index"))
        .collect()
}

#[test]
fn mobilenet_v2_knows_the_cat_and_the_espresso() {
    let cat = sample_photo("chelsea.png").expect("run ./workbench.sh setup first");
    let coffee = sample_photo("coffee.png").expect("run ./workbench.sh setup first");
    let (output, json) = classify_json(&[cat, coffee]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cat_top = top_indices(&json[0]);
    assert_eq!(cat_top.len(), 5);
    assert!(
        cat_top[..3].iter().any(|i| [281, 282, 285].contains(i)),
        "no cat class in the top 3: {cat_top:?}"
    );
    assert_eq!(top_indices(&json[1])[0], 967, "espresso is not first");
    let p: f64 = json[1]["top"][0]["probability"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0);
}

#[test]
fn a_corrupt_image_is_named_and_the_others_still_classified() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken photo.jpg");
    std::fs::write(&broken, b"\xff\xd8\xffnot really a jpeg").unwrap();
    let coffee = sample_photo("coffee.png").expect("run ./workbench.sh setup first");
    let (output, json) = classify_json(&[broken, coffee]);
    assert!(!output.status.success());
    assert!(
        json[0]["error"]
            .as_str()
            .unwrap()
            .contains("broken photo.jpg")
    );
    assert_eq!(top_indices(&json[1])[0], 967);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 of 2 images"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_gui_without_a_display_exits_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .arg("gui")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no display"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn backbones_lists_facts_as_json() {
    let output = workbench(&["backbones", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mobilenet = json
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "mobilenet_v2")
        .expect("mobilenet_v2 is listed");
    assert_eq!(mobilenet["input_size_px"], 224);
    assert_eq!(mobilenet["embedding_dim"], 1280);
    assert!(mobilenet["parameters"].as_i64().unwrap() > 2_000_000);
    assert!(mobilenet["pretrained"]["licence"].is_string());
    assert_eq!(mobilenet["weights"][0]["name"], "shipped");
    assert_eq!(mobilenet["weights"][0]["status"], "present");
    let by_name = |name: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("{name} is listed"))
            .clone()
    };
    let resnet = by_name("resnet50");
    assert_eq!(resnet["weights"][1]["name"], "resnet50.IMAGENET1K_V2");
    assert_eq!(resnet["weights"][1]["status"], "downloadable");
    assert!(resnet["weights"][1]["size_mb"].as_f64().unwrap() > 90.0);
    assert_eq!(
        by_name("vit_tiny_16")["weights"][0]["status"],
        "user_supplied"
    );
    assert_eq!(by_name("vgg16_keras")["weights"][0]["status"], "present");
}

#[test]
fn embed_writes_one_row_per_image_and_refuses_bad_images() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("emb.npy");
    let cat = sample_photo("chelsea.png").expect("run ./workbench.sh setup first");
    let coffee = sample_photo("coffee.png").expect("run ./workbench.sh setup first");
    let (cat_s, coffee_s) = (cat.display().to_string(), coffee.display().to_string());
    let out_s = out.display().to_string();
    let args = [
        "embed",
        "--backbone",
        "mobilenet_v2",
        "--out",
        &out_s,
        &cat_s,
        &coffee_s,
        &cat_s,
    ];
    let output = workbench(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = tch::Tensor::read_npy(&out).unwrap();
    assert_eq!(rows.size(), vec![3, 1280]);
    let same = (rows.get(0) - rows.get(2)).abs().max().double_value(&[]);
    let different = (rows.get(0) - rows.get(1)).abs().max().double_value(&[]);
    assert!(same < 1e-6 && different > 1e-2, "{same} {different}");
    let listed = std::fs::read_to_string(dir.path().join("emb.npy.paths.txt")).unwrap();
    assert_eq!(listed.lines().count(), 3);

    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let bad_out = dir.path().join("bad.npy");
    let (broken_s, bad_out_s) = (broken.display().to_string(), bad_out.display().to_string());
    let args = [
        "embed",
        "--backbone",
        "mobilenet_v2",
        "--out",
        &bad_out_s,
        &cat_s,
        &broken_s,
    ];
    let output = workbench(&args);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.png"));
    assert!(!bad_out.exists());
}
