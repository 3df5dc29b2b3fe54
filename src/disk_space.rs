//! Free space on the file system of a folder, for the one writer that cannot fail cleanly
//! when the disk fills: libtorch's TorchScript `save` aborts the whole process (its zip
//! writer throws from a destructor) instead of returning an error, so the export checks the
//! room first. Every other writer gets `ENOSPC` as an ordinary error. Imports nothing of the
//! crate.

use std::path::Path;

/// Bytes available to this user on the file system holding `dir` (`None` where unknown).
pub fn available(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// `Ok` when `dir` has room for about `bytes`, else a `StorageFull` error saying how much
/// is needed and free. Unknown free space counts as room.
pub fn ensure_room(dir: &Path, bytes: u64) -> std::io::Result<()> {
    match available(dir) {
        Some(free) if free < bytes => Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "not enough free space: about {} needed, {} free",
                megabytes(bytes),
                megabytes(free)
            ),
        )),
        _ => Ok(()),
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_has_some_room_and_not_unbounded_room() {
        let dir = tempfile::tempdir().unwrap();
        if let Some(free) = available(dir.path()) {
            assert!(ensure_room(dir.path(), 1).is_ok());
            let err = ensure_room(dir.path(), free.saturating_add(1 << 40)).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
            assert!(err.to_string().contains("MB free"), "{err}");
        }
    }
}
