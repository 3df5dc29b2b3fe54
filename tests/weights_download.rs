//! `weights get`'s downloader against a local HTTP server started by each test (no outside
//! network): a complete download, a download cut in the middle and then resumed with a
//! Range request, a wrong hash, a 404, a stalled server cancelled, a server that never
//! answers. Each leaves a verified file or nothing (a cut transfer keeps only its `.part`
//! for the resume). Also the command line without network, and installing a fetched file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;
#[path = "common/http_server.rs"]
mod http_server;

use http_server::{Behaviour, Server, serve};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use transfer_workbench::model::download::{DownloadError, Timeouts, download, part_path};

/// 3 MB of deterministic bytes and their sha256.
fn payload() -> (Vec<u8>, String) {
    let body: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let hash = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (body, hash)
}

fn quick() -> Timeouts {
    Timeouts {
        first_answer: Duration::from_secs(2),
        stall: Duration::from_secs(60),
    }
}

fn get(server: &Server, dest: &Path, hash: &str) -> Result<std::path::PathBuf, DownloadError> {
    let cancel = AtomicBool::new(false);
    let mut last = (0, None);
    let result = download(&server.url, dest, hash, quick(), &cancel, &mut |d, t| {
        last = (d, t)
    });
    if result.is_ok() {
        assert_eq!(last.0, last.1.unwrap(), "progress reaches the total");
    }
    result
}

fn assert_nothing_left(dest: &Path) {
    assert!(!dest.exists(), "{} exists", dest.display());
    assert!(!part_path(dest).exists(), "the partial file was kept");
}

#[test]
fn a_complete_download_is_verified_and_put_in_place() {
    let (body, hash) = payload();
    let server = serve(body.clone(), Behaviour::Serve);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pth");
    let got = get(&server, &dest, &hash[..8]).unwrap();
    assert_eq!(got, dest);
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!part_path(&dest).exists());
}

#[test]
fn a_cut_download_keeps_its_part_and_resumes_with_a_range_request() {
    let (body, hash) = payload();
    let server = serve(body.clone(), Behaviour::CutFirst);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pth");
    let err = get(&server, &dest, &hash[..10]).unwrap_err();
    println!("cut: {err}");
    assert!(matches!(err, DownloadError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("again to resume"), "{err}");
    assert!(!dest.exists(), "a cut file must not look complete");
    let half = body.len() as u64 / 2;
    assert_eq!(std::fs::metadata(part_path(&dest)).unwrap().len(), half);
    get(&server, &dest, &hash[..10]).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!part_path(&dest).exists());
    let ranges = server.ranges.lock().unwrap().clone();
    assert_eq!(ranges, vec![None, Some(format!("bytes={half}-"))]);
}

#[test]
fn a_wrong_hash_removes_the_file_with_a_clear_error() {
    let (body, _) = payload();
    let server = serve(body, Behaviour::Serve);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pth");
    let err = get(&server, &dest, "00000000").unwrap_err();
    let text = err.to_string();
    println!("wrong hash: {text}");
    assert!(matches!(err, DownloadError::Hash { .. }), "{text}");
    assert!(text.contains("00000000") && text.contains("removed") && text.ends_with("w.pth"));
    assert_nothing_left(&dest);
}

#[test]
fn a_404_is_reported_and_leaves_nothing() {
    let server = serve(Vec::new(), Behaviour::Missing);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pth");
    let err = get(&server, &dest, "1234abcd").unwrap_err();
    assert!(
        matches!(err, DownloadError::Status { status: 404, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    assert_nothing_left(&dest);
}

#[test]
fn cancelling_a_stalled_download_returns_at_once_and_leaves_nothing() {
    let (body, hash) = payload();
    let server = serve(body, Behaviour::Stall);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pth");
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let seen_bytes = Arc::new(Mutex::new(0u64));
    let seen = Arc::clone(&seen_bytes);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        flag.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let err = download(
        &server.url,
        &dest,
        &hash[..8],
        quick(),
        &cancel,
        &mut |d, _| *seen.lock().unwrap() = d,
    )
    .unwrap_err();
    let took = started.elapsed();
    println!("stalled, cancelled after {took:?}: {err}");
    assert!(matches!(err, DownloadError::Cancelled), "{err}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(*seen_bytes.lock().unwrap(), 1000, "the first bytes arrived");
    assert_nothing_left(&dest);
}

#[test]
fn a_server_that_never_answers_or_a_closed_port_fails_within_seconds() {
    let server = serve(Vec::new(), Behaviour::Mute);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.pth");
    let started = Instant::now();
    let err = get(&server, &dest, "1234abcd").unwrap_err();
    assert!(matches!(err, DownloadError::Unreachable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x.pth", closed.local_addr().unwrap());
    drop(closed);
    let cancel = AtomicBool::new(false);
    let err = download(&url, &dest, "1234abcd", quick(), &cancel, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, DownloadError::Unreachable { .. }), "{err}");
    assert_nothing_left(&dest);
}

#[test]
fn weights_get_without_network_names_the_url_and_the_import_command_within_10_s() {
    let cache = tempfile::tempdir().unwrap();
    // A proxy on a closed port: the same as no network, on any machine.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(["weights", "get", "resnet50"])
        .env("TRANSFER_WORKBENCH_CACHE", cache.path())
        .env("HTTPS_PROXY", &proxy)
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("after {took:?}: {stderr}");
    assert!(!output.status.success());
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        stderr.contains("https://download.pytorch.org/models/resnet50-11ad3fa6.pth"),
        "{stderr}"
    );
    assert!(
        stderr.contains("transfer-workbench weights import FILE --name resnet50.IMAGENET1K_V2"),
        "{stderr}"
    );
}

#[test]
fn a_fetched_checkpoint_is_installed_strictly_as_safetensors() {
    use transfer_workbench::model::{catalogue, zoo};
    let out = tempfile::tempdir().unwrap();
    let script = common::fixtures_dir().join("weights/make_torch_checkpoints.py");
    let status = std::process::Command::new(common::venv_python())
        .arg(&script)
        .arg(out.path())
        .args(["legacy", "wrong_fc"])
        .status()
        .unwrap();
    assert!(status.success());
    let entry = catalogue::find("resnet18").unwrap();
    let dest = out
        .path()
        .join("installed/resnet18.IMAGENET1K_V1.safetensors");
    zoo::install_to(entry, &out.path().join("resnet18_legacy.pth"), &dest).unwrap();
    let installed = transfer_workbench::model::weights::read_weights(&dest).unwrap();
    let expected = common::read_tensors(&out.path().join("resnet18.safetensors"));
    assert_eq!(installed.len(), expected.len());
    for (key, want) in &expected {
        assert!(installed[key].equal(want), "{key}");
    }
    let bad = out.path().join("installed/bad.safetensors");
    let err = zoo::install_to(entry, &out.path().join("wrong_fc.pth"), &bad).unwrap_err();
    assert!(err.to_string().contains("mis-shaped"), "{err}");
    assert!(!bad.exists());
}
