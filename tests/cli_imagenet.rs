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
