//! A folder's listing with sizes and modification times, to check that nothing in it was
//! written. Included with `#[path = "common/folder_listing.rs"] mod folder_listing;`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// Every file and folder below `root` (relative paths) with its size and modification time.
pub fn listing(root: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let key = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string();
            out.insert(key, (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out.insert(
        ".".into(),
        (0, std::fs::metadata(root).unwrap().modified().unwrap()),
    );
    out
}
