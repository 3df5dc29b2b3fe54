//! The Training tab's Download and Import of catalogue weights, driven through AccessKit
//! with egui_kittest against a local HTTP server (no outside network): a catalogue
//! override (`TRANSFER_WORKBENCH_WEIGHT_CATALOGUE`) points resnet18's IMAGENET1K_V1 at a
//! generated checkpoint with resnet18's keys and shapes, and a second variant at a 404.
//! The failed download names its URL and the import command; the good one installs into a
//! temporary cache and shows as present; the same file dropped on the tab is imported and
//! its key report shown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

#[path = "common/gui.rs"]
mod gui;
#[path = "common/http_server.rs"]
mod http_server;

use std::path::Path;

use egui_kittest::kittest::Queryable;
use http_server::{Behaviour, serve};
use sha2::{Digest, Sha256};
use tch::{Device, nn::VarStore};
use transfer_workbench::app::WorkbenchApp;
use transfer_workbench::model::catalogue::WeightStatus;
use transfer_workbench::runtime::Loading;
use transfer_workbench::train::{TrainConfig, WeightsSpec};

/// A resnet18 checkpoint with its ImageNet head (random values), as safetensors bytes.
fn resnet18_checkpoint(dir: &Path) -> Vec<u8> {
    let vs = VarStore::new(Device::Cpu);
    transfer_workbench::model::build_backbone("resnet18", vs.root(), true).unwrap();
    let path = dir.join("resnet18-test.safetensors");
    vs.save(&path).unwrap();
    std::fs::read(path).unwrap()
}

/// A catalogue file with the built-in resnet18 IMAGENET1K_V1 entry at `good_url` (hash
/// `sha256`) and a BROKEN_V1 copy at `missing_url`.
fn write_catalogue(path: &Path, good_url: &str, sha256: &str, missing_url: &str) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/weight_catalogue.json"),
    )
    .unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let original = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "resnet18.IMAGENET1K_V1")
        .unwrap()
        .clone();
    let mut good = original.clone();
    good["url"] = good_url.into();
    good["file_name"] = "resnet18-test.safetensors".into();
    good["sha256_prefix"] = sha256[..10].into();
    let mut broken = original;
    broken["name"] = "resnet18.BROKEN_V1".into();
    broken["variant"] = "BROKEN_V1".into();
    broken["is_default"] = false.into();
    broken["url"] = missing_url.into();
    let file = serde_json::json!({ "entries": [good, broken] });
    std::fs::write(path, file.to_string()).unwrap();
}

fn download_state(app: &WorkbenchApp) -> Option<(String, &Loading<std::path::PathBuf>)> {
    let job = app.training().weights.download.as_ref()?;
    Some((job.name.clone(), &job.state))
}

fn present(app: &WorkbenchApp, name: &str) -> bool {
    app.training()
        .weights
        .options_of("resnet18")
        .is_some_and(|options| {
            options
                .iter()
                .any(|o| o.name == name && matches!(o.status, WeightStatus::Present { .. }))
        })
}

/// A file dropped on the window, as the integration hands it to egui.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn download_fails_with_a_clear_message_then_succeeds_and_shows_as_present() {
    let work = tempfile::tempdir().unwrap();
    let body = resnet18_checkpoint(work.path());
    let sha256: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let good = serve(body, Behaviour::Serve);
    let missing = serve(Vec::new(), Behaviour::Missing);
    let catalogue = work.path().join("catalogue.json");
    write_catalogue(&catalogue, &good.url, &sha256, &missing.url);
    let cache = work.path().join("cache");
    // SAFETY: set once, before the app or any other thread of this test binary (it has
    // this one test) reads the environment.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("TRANSFER_WORKBENCH_CACHE", &cache);
        std::env::set_var("TRANSFER_WORKBENCH_WEIGHT_CATALOGUE", &catalogue);
    }

    let projects = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    gui::make_brightness_project(projects.path(), data.path(), "resnet18", None);
    let template = TrainConfig {
        weights: WeightsSpec::Random,
        ..TrainConfig::default()
    };
    let (mut app, _dir) = gui::open_training_tab(projects.path(), template);
    gui::wait_for(&mut app, "the weight list", 60, |app| {
        app.training().weights.options_of("resnet18").is_some()
    });
    app.run_steps(2);
    app.get_by_label_contains("No shipped pretrained weights");

    // A 404: the message names the URL and the import command; nothing is installed.
    app.get_by_label_contains("Download BROKEN_V1").click();
    gui::wait_for(&mut app, "the failed download", 60, |app| {
        download_state(app).is_some_and(|(_, s)| matches!(s, Loading::Failed(_)))
    });
    app.run_steps(3);
    app.get_by_label_contains("HTTP 404");
    app.get_by_label_contains(&format!("Fetch {} elsewhere", missing.url));
    app.get_by_label_contains("`transfer-workbench weights import FILE`");
    assert!(!present(app.state(), "resnet18.BROKEN_V1"));

    // The good one: progress, then installed in the cache and listed as present.
    app.get_by_label_contains("Download IMAGENET1K_V1 (")
        .click();
    gui::wait_for(&mut app, "the download", 120, |app| {
        download_state(app)
            .is_some_and(|(name, s)| name == "resnet18.IMAGENET1K_V1" && !s.is_running())
    });
    let (name, state) = download_state(app.state()).unwrap();
    assert_eq!(name, "resnet18.IMAGENET1K_V1");
    let installed = match state {
        Loading::Ready(path) => path.clone(),
        other => panic!("the download failed: {other:?}"),
    };
    assert!(installed.starts_with(&cache), "{}", installed.display());
    assert!(installed.exists());
    gui::wait_for(&mut app, "the download listed as present", 60, |app| {
        present(app, "resnet18.IMAGENET1K_V1")
    });
    app.run_steps(3);
    app.get_by_label_contains("resnet18.IMAGENET1K_V1 downloaded");
    assert_eq!(
        good.ranges.lock().unwrap().len(),
        1,
        "one request, on the click"
    );

    // Import: the same checkpoint dropped on the tab is found by its hash, installed again,
    // and its report shows in a window.
    let dropped = Dropped(work.path().join("resnet18-test.safetensors"));
    app.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(dropped));
    gui::wait_for(&mut app, "the import", 120, |app| {
        let import = &app.training().weights.import;
        import.open && import.job.as_ref().is_some_and(|(_, j)| !j.is_running())
    });
    match &app.state().training().weights.import.job {
        Some((_, Loading::Ready(done))) => {
            assert!(done.report.is_exact(), "{}", done.report.summary());
            assert_eq!(done.installed, installed);
        }
        other => panic!("the import failed: {other:?}"),
    }
    app.run_steps(3);
    app.get_by_label_contains("keys matched");
    app.get_by_label("0 mis-shaped");
    app.get_by_label("Close").click();
    app.run_steps(3);
    assert!(!app.state().training().weights.import.open);
}
