//! Location of the per-user asset cache filled by `setup/setup.sh`: pretrained weights,
//! ImageNet class names, demo data sets and sample images. Nothing here downloads.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the cache folder.
pub const CACHE_ENV: &str = "TRANSFER_WORKBENCH_CACHE";

/// What can go wrong when looking for a set-up asset.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("{what} is missing; run `./workbench.sh setup` to install it: {}", path.display())]
    Missing { what: String, path: PathBuf },
    #[error("could not read {what}: {source}: {}", path.display())]
    Read {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is malformed ({reason}): {}", path.display())]
    Malformed {
        what: String,
        path: PathBuf,
        reason: String,
    },
}

/// The cache root: `$TRANSFER_WORKBENCH_CACHE`, else `$XDG_CACHE_HOME/transfer-workbench`,
/// else `$HOME/.cache/transfer-workbench`.
pub fn cache_dir() -> PathBuf {
    cache_dir_from(|name| std::env::var_os(name))
}

fn cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let non_empty = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty(CACHE_ENV) {
        return dir;
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return dir.join("transfer-workbench");
    }
    non_empty("HOME")
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache")
        .join("transfer-workbench")
}

/// The folder holding the verified, converted assets.
pub fn assets_dir() -> PathBuf {
    cache_dir().join("assets")
}

/// Resolves a path inside the asset folder, checking that it exists.
pub fn require(relative: impl AsRef<Path>, what: &str) -> Result<PathBuf, AssetError> {
    let path = assets_dir().join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(AssetError::Missing {
            what: what.to_owned(),
            path,
        })
    }
}

/// The converted `.safetensors` file of a shipped pretrained backbone.
pub fn pretrained_weights(file_stem: &str) -> Result<PathBuf, AssetError> {
    require(
        format!("weights/{file_stem}.safetensors"),
        &format!("pretrained weights '{file_stem}'"),
    )
}

/// The 1000 ImageNet-1k class names in index order.
pub fn imagenet_class_names() -> Result<Vec<String>, AssetError> {
    let what = "the ImageNet class-name list";
    let path = require("imagenet_classes.txt", what)?;
    let text = std::fs::read_to_string(&path).map_err(|source| AssetError::Read {
        what: what.to_owned(),
        path: path.clone(),
        source,
    })?;
    let names: Vec<String> = text.lines().map(str::to_owned).collect();
    if names.len() != 1000 {
        return Err(AssetError::Malformed {
            what: what.to_owned(),
            path,
            reason: format!("{} lines instead of 1000", names.len()),
        });
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn cache_dir_prefers_explicit_then_xdg_then_home() {
        let all = [(CACHE_ENV, "/c"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(cache_dir_from(env(&all)), PathBuf::from("/c"));
        let xdg = [(CACHE_ENV, ""), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(
            cache_dir_from(env(&xdg)),
            PathBuf::from("/x/transfer-workbench")
        );
        let home = [("HOME", "/h")];
        assert_eq!(
            cache_dir_from(env(&home)),
            PathBuf::from("/h/.cache/transfer-workbench")
        );
    }
}
