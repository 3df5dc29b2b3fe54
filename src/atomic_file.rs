//! The one way files of a project and its runs are written: to a temp file beside the
//! target, flushed to disk (fsync), then renamed over it, so a reader (or a restart after a
//! crash or `kill -9`) sees the old file or the new one, never half of one. A failed write
//! removes its temp file. Every layer uses this (it imports nothing of the crate) and maps
//! the `io::Error` into its own error enum with the path.

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
    let tmp = temp_path(path);
    let result = produce(&tmp)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
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
    Ok(())
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
}
