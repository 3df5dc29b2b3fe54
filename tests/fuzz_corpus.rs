//! The fuzz targets' inputs on the stable toolchain, in the normal test run: every seed is
//! accepted by its parser, and every input the fuzzer once found a crash, hang or runaway
//! allocation with (`fuzz/regressions/<target>/`) is now handled (an error naming the file,
//! or a value) in under 5 s and without the peak memory growing by 1 GiB. `setup/fuzz.sh` runs the targets themselves (nightly, cargo-fuzz).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../fuzz/src/lib.rs"]
mod fuzz_entries;

use fuzz_entries::Target;

/// A parse that takes longer than this is a hang for the fuzzer's purposes.
const SLOW: Duration = Duration::from_secs(5);

/// The set-up's seeds that are files, not built in code: the sample DICOM files and small
/// `torch.save` checkpoints (written by the fixture script, when the venv is there).
fn file_seeds(target: Target, scratch: &Path) -> Vec<Vec<u8>> {
    let read_all = |dir: &Path, ext: &str| -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            println!("no {} (run ./workbench.sh setup)", dir.display());
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    };
    match target {
        Target::Dicom => read_all(
            &transfer_workbench::assets::assets_dir().join("samples/dicom"),
            "dcm",
        ),
        Target::TorchCheckpoint => {
            let python = transfer_workbench::assets::cache_dir().join("venv/bin/python");
            let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/weights/make_torch_checkpoints.py");
            let out = scratch.join("torch");
            std::fs::create_dir_all(&out).unwrap();
            let made = std::process::Command::new(&python)
                .arg(&script)
                .arg(&out)
                .args(["tensors", "legacy"])
                .output();
            match made {
                Ok(o) if o.status.success() => {
                    let mut seeds = read_all(&out, "pth");
                    seeds.retain(|s| s.len() < 1 << 20);
                    seeds
                }
                other => {
                    println!("no torch checkpoints from {}: {other:?}", python.display());
                    Vec::new()
                }
            }
        }
        _ => Vec::new(),
    }
}

fn all_seeds(target: Target, scratch: &Path) -> Vec<Vec<u8>> {
    let mut seeds = target.seeds();
    seeds.extend(file_seeds(target, scratch));
    seeds
}

/// A parse whose peak resident memory grows more than this has run away (the fuzzer's
/// limit is 2 GiB for the whole process).
const RUNAWAY_MIB: f64 = 1024.0;

/// This process's peak resident memory in MiB (Linux), after resetting it when `reset`.
fn peak_rss_mib(reset: bool) -> Option<f64> {
    if reset {
        // Where the kernel refuses, the check is looser.
        transfer_workbench::process_memory::reset_peak();
    }
    transfer_workbench::process_memory::status_mib("VmHWM")
}

/// Feeds `data`, failing the test on a parse slower than [`SLOW`] or one whose memory runs
/// away; a panic fails it too.
fn feed_timed(target: Target, data: &[u8], what: &str) -> Result<(), String> {
    let before = peak_rss_mib(true);
    let started = Instant::now();
    let outcome = target.feed(data);
    let took = started.elapsed();
    assert!(took < SLOW, "{} {what}: took {took:?}", target.name());
    if let (Some(before), Some(after)) = (before, peak_rss_mib(false)) {
        assert!(
            after - before < RUNAWAY_MIB,
            "{} {what}: the peak memory grew by {:.0} MiB",
            target.name(),
            after - before
        );
    }
    outcome
}

/// Seeds first (each must parse), then every saved regression input (must not panic). One
/// test, as the targets share this process's scratch folder.
#[test]
fn seeds_parse_and_saved_crash_inputs_are_handled() {
    let scratch = tempfile::tempdir().unwrap();
    let mut regressions = 0;
    for target in Target::ALL {
        let seeds = all_seeds(target, scratch.path());
        for (i, seed) in seeds.iter().enumerate() {
            let outcome = feed_timed(target, seed, &format!("seed {i}"));
            // The shipped `tensors.pth` family holds dtypes the app refuses by name.
            if target != Target::TorchCheckpoint {
                assert_eq!(outcome, Ok(()), "{} seed {i} must parse", target.name());
            }
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions")
            .join(target.name());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let outcome = feed_timed(target, &std::fs::read(&path).unwrap(), &name);
            println!("{} {name}: {outcome:?}", target.name());
            regressions += 1;
        }
    }
    println!("{regressions} saved crash inputs handled");
    let _ = std::fs::remove_dir_all(fuzz_entries::scratch());
}

/// Writes every target's seeds to `FUZZ_SEED_DIR/<target>/` for `setup/fuzz.sh`.
#[test]
#[ignore = "run by setup/fuzz.sh"]
fn write_fuzz_seeds() {
    let out = PathBuf::from(std::env::var("FUZZ_SEED_DIR").expect("FUZZ_SEED_DIR"));
    let scratch = tempfile::tempdir().unwrap();
    for target in Target::ALL {
        let dir = out.join(target.name());
        std::fs::create_dir_all(&dir).unwrap();
        let seeds = all_seeds(target, scratch.path());
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed).unwrap();
        }
        println!("{}: {} seeds", target.name(), seeds.len());
    }
    let _ = std::fs::remove_dir_all(fuzz_entries::scratch());
}
