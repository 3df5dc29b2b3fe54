//! The folder jobs of the new-project dialog, run on workers: listing subfolders for the
//! built-in browser, and whether a system folder dialog can open at all.

use std::path::Path;

/// The names of the subfolders of `dir`, sorted, hidden ones left out (worker side).
pub fn list_subfolders(dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{e}: {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    Ok(names)
}

/// Whether a system folder dialog can open here: on Linux the desktop portal (a session
/// bus) or zenity; elsewhere the platform's own dialog.
pub fn system_folder_dialog_available() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let has_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some();
    let has_zenity = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("zenity").is_file()));
    has_bus || has_zenity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_visible_subfolders_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "A", ".hidden"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("file.txt"), "x").unwrap();
        assert_eq!(list_subfolders(dir.path()).unwrap(), vec!["A", "b"]);
        let err = list_subfolders(&dir.path().join("none")).unwrap_err();
        assert!(err.ends_with("none"), "{err}");
    }
}
