//! Embeds an rpath to libtorch so the binary runs without LD_LIBRARY_PATH, and keeps
//! libtorch_cuda linked (the default `--as-needed` would drop it, hiding CUDA). Also names
//! the network definitions' version (`MODEL_SOURCE_HASH`, a hash of `src/model/`), which
//! keys the cache of measured backbone facts.

use std::hash::{Hash, Hasher};
use std::path::Path;

/// Hashes the names and contents of the files under `dir`, in name order.
fn hash_tree(dir: &Path, hasher: &mut impl Hasher) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            hash_tree(&path, hasher);
        } else if let Ok(bytes) = std::fs::read(&path) {
            path.file_name().hash(hasher);
            bytes.hash(hasher);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/model");
    let mut hasher = std::hash::DefaultHasher::new();
    hash_tree(Path::new("src/model"), &mut hasher);
    println!("cargo:rustc-env=MODEL_SOURCE_HASH={:016x}", hasher.finish());
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    if Path::new(&lib_dir).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
