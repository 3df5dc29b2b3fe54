//! Shared by the fault tests (`file_locks`, `crash_points`, `full_disk`): the binary, a tiny
//! labelled folder and project, processes stopped at a pause point and killed there, and
//! the check that a project survived (every file whole, nothing half-written left).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Each test uses a part.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use transfer_workbench::atomic_file::PAUSE_AT_VAR;

/// The binary with `args`, its output captured.
pub fn bin(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_transfer-workbench"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `command` to its end, failing the test with its output when it fails.
pub fn ok(mut command: Command) -> Output {
    let output = command.output().expect("the binary starts");
    assert!(
        output.status.success(),
        "{command:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A path as `&str` (temp paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Two classes told apart by brightness, `per_class` noisy 24 px PNGs each.
pub fn class_folder(root: &Path, per_class: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (class, level) in [("dark", 60.0f32), ("light", 190.0)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let image = RgbImage::from_fn(24, 24, |_, _| {
                let v = (level + rng.gen_range(-40.0f32..40.0)).clamp(0.0, 255.0) as u8;
                Rgb([v, v, v])
            });
            image.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

/// A project on a fresh class folder under `root` (resnet18 at 32 px), made with `new`.
pub fn class_project(root: &Path, per_class: usize) -> PathBuf {
    let data = root.join("data");
    class_folder(&data, per_class);
    let project = root.join("project");
    ok(bin(&[
        "new",
        s(&project),
        "--data",
        s(&data),
        "--backbone",
        "resnet18",
        "--input-size",
        "32",
    ]));
    project
}

/// A running binary stopped at a pause point (see `atomic_file::PAUSE_AT_VAR`).
pub struct Paused {
    /// The process, waiting to be killed.
    pub child: Child,
    /// The file whose write it stopped in.
    pub path: PathBuf,
}

impl Paused {
    /// Kills it with SIGKILL and reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        let status = self.child.wait().unwrap();
        assert!(!status.success());
    }
}

/// Starts `command` to stop at `point` (`stage:n`). `Err` with its output when it ended
/// without reaching the point (fewer writes than `n`).
#[allow(clippy::zombie_processes)] // The paused child is reaped by `Paused::kill`.
pub fn run_to_pause(mut command: Command, point: &str) -> Result<Paused, Output> {
    command.env(PAUSE_AT_VAR, point);
    let mut child = command.spawn().expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let mut output = child.wait_with_output().unwrap();
            output.stderr = seen.into_bytes();
            return Err(output);
        }
        if let Some(rest) = line.trim_end().strip_prefix("pause point ") {
            let path = rest.split_once(": ").map(|(_, p)| p).unwrap_or_default();
            // Keep draining stderr so the child never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            return Ok(Paused {
                child,
                path: PathBuf::from(path),
            });
        }
        seen.push_str(&line);
    }
}

/// Checks that the project at `dir` loads and that none of its files is half-written: no
/// temp file or staging folder is left, no lock is held, every RON, JSON and JSON-lines file
/// parses, every checkpoint reads, every run lists. Returns the number of files checked.
pub fn assert_intact(dir: &Path) -> usize {
    transfer_workbench::project::load_project(dir)
        .unwrap_or_else(|e| panic!("the project does not load: {e}"));
    assert_whole(dir, false)
}

/// The file checks of [`assert_intact`]; with `leftovers`, what a killed process may leave
/// is allowed (temp files, a staging folder, lock files, a torn last history line).
pub fn assert_whole(dir: &Path, leftovers: bool) -> usize {
    let mut checked = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name.starts_with(".creating-") {
                    assert!(leftovers, "a half-made run is left: {}", path.display());
                    continue;
                }
                if name != "data" {
                    stack.push(path);
                }
                continue;
            }
            if name.ends_with(".tmp") {
                assert!(leftovers, "left behind: {}", path.display());
                continue;
            }
            if name.ends_with(".lock") {
                // A killed holder's lock file stays until the next process takes it over;
                // nobody may still hold it.
                let file = std::fs::File::open(&path).unwrap();
                assert!(
                    leftovers || file.try_lock().is_ok(),
                    "still locked: {}",
                    path.display()
                );
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let text = || String::from_utf8(bytes.clone()).unwrap();
            let whole = match path.extension().and_then(|e| e.to_str()) {
                Some("ron") => ron::from_str::<ron::Value>(&text()).is_ok(),
                Some("json") => serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                Some("jsonl") => {
                    let text = text();
                    let lines: Vec<&str> = text.lines().collect();
                    // A kill mid-append may tear the last line; the resume rewrites it.
                    let keep = lines
                        .len()
                        .saturating_sub(usize::from(leftovers && !text.ends_with('\n')));
                    lines[..keep]
                        .iter()
                        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
                }
                Some("safetensors") => tch::Tensor::read_safetensors(&path).is_ok(),
                _ => true,
            };
            assert!(whole, "a damaged file: {}", path.display());
            checked += 1;
        }
    }
    let listed = transfer_workbench::train::catalogue::list_runs(dir)
        .unwrap_or_else(|e| panic!("the runs do not list: {e}"));
    let folders = std::fs::read_dir(dir.join("runs"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(listed.len(), folders, "every run folder is a listed run");
    checked
}

/// The JSON events a `--json` command printed.
pub fn events(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
