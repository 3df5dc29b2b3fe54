//! The one way files of a project and its runs are written: to a temp file beside the
//! target, flushed to disk (fsync), then renamed over it, so a reader (or a restart after a
//! crash or `kill -9`) sees the old file or the new one, never half of one. A failed write
//! removes its temp file. Every layer uses this (it imports nothing of the crate) and maps
//! the `io::Error` into its own error enum with the path. A test hook ([`PAUSE_AT_VAR`])
//! can stop the process at a chosen step of a chosen write, to be killed there.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The temp file `path` is written through: `.<name>.<pid>.tmp` in the same folder (so the
/// rename stays on one file system).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |tmp| {
        let mut file = std::fs::File::create(tmp)?;
        file.write_all(bytes)
    })
}

/// Writes `path` atomically with `produce`, which writes the whole content to the temp file
/// it is given (e.g. a tensor writer that takes a path; wrap its error with
/// `std::io::Error::other`).
pub fn write_with(
    path: &Path,
    produce: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        remove_dead_temps(dir);
    }
    let tmp = temp_path(path);
    let result = produce(&tmp)
        .inspect(|()| pause_point("written", path))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .inspect(|()| pause_point("synced", path))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable where the platform allows opening a folder.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    pause_point("renamed", path);
    Ok(())
}

/// How many entries of a folder [`remove_dead_temps`] looks at.
pub const CLEANUP_SCAN_LIMIT: usize = 1024;

/// Removes the temp files (`.<name>.<pid>.tmp`) that processes no longer running left in
/// `dir` (killed mid-write). Only on Linux, where `/proc` says which processes live. Looks
/// at the first [`CLEANUP_SCAN_LIMIT`] entries only, so that a write into a large folder
/// stays cheap (project and run folders hold a few dozen).
pub fn remove_dead_temps(dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.take(CLEANUP_SCAN_LIMIT).filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit('.').next())
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if !proc.join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The environment variable of the crash-point hook, `<stage>:<n>`: the process stops at
/// the n-th (1-based) atomic write to pass `<stage>` (`written`: temp file complete, not yet
/// synced; `synced`: not yet renamed; `renamed`: done), prints
/// `pause point <stage> <n>: <path>` on stderr, and waits there to be killed. The crash
/// tests (`tests/crash_points.rs`) kill it with SIGKILL at that moment. Unset, it costs one
/// environment look-up per process.
pub const PAUSE_AT_VAR: &str = "TRANSFER_WORKBENCH_PAUSE_AT";

fn pause_point(stage: &str, path: &Path) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    static PASSED: AtomicUsize = AtomicUsize::new(0);
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var(PAUSE_AT_VAR).ok()?;
        let (stage, n) = spec.split_once(':')?;
        Some((stage.to_owned(), n.parse().ok()?))
    });
    let Some((target_stage, n)) = target else {
        return;
    };
    if target_stage != stage || PASSED.fetch_add(1, Ordering::SeqCst) + 1 != *n {
        return;
    }
    eprintln!("pause point {stage} {n}: {}", path.display());
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_file_and_failures_leave_it_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let failed = write_with(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("the producer failed"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!temp_path(&path).exists());
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1);
    }

    #[test]
    fn temp_files_of_dead_processes_go_at_the_next_write_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        // Pid 0 is never a process; ours is alive.
        let dead = dir.path().join(".a.json.0.tmp");
        let dead_export = dir.path().join(".model.pt.0.tmp");
        let live = temp_path(&dir.path().join("b.json"));
        let other = dir.path().join(".notes.tmp");
        for file in [&dead, &dead_export, &live, &other] {
            std::fs::write(file, b"half").unwrap();
        }
        write(&dir.path().join("a.json"), b"whole").unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists() && !dead_export.exists());
        }
        assert!(live.exists() && other.exists());
    }
}
