//! Catalogue weights on demand: `weights get NAME` (download, verify, convert, install) and
//! `weights import FILE` (the same from a file fetched elsewhere). Installed weights are
//! `.safetensors` in the asset cache ([`super::catalogue::cached_path`]), written
//! atomically after the source file's hash and every key and shape were checked against the
//! backbone; the downloaded original is then removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use tch::{Device, Kind, nn::VarStore};

use super::catalogue::{self, CatalogueError, WeightEntry};
use super::download::{self, DownloadError, Progress, Timeouts};
use super::weights::{ImportReport, ShapeMismatch, WeightsError, read_weights};
use super::{ModelError, build_backbone};

/// Why catalogue weights could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(
        "{reason}. Without network: fetch {url} elsewhere (a browser, or `curl -LO {url}`), \
         copy it here and run `transfer-workbench weights import FILE --name {name}`"
    )]
    Offline {
        name: String,
        url: String,
        reason: String,
    },
    #[error(transparent)]
    Download(DownloadError),
    #[error(
        "{} has sha256 {found}, but {name} has a hash starting with {expected}: not that \
         file, or damaged",
        path.display()
    )]
    WrongFile {
        path: PathBuf,
        name: String,
        expected: String,
        found: String,
    },
    #[error(
        "{} matches no catalogue entry by its sha256 ({found}); name the weights with --name",
        path.display()
    )]
    NoMatch { path: PathBuf, found: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("could not write the converted weights ({reason}): {}", path.display())]
    Write { path: PathBuf, reason: String },
}

impl From<DownloadError> for ZooError {
    fn from(e: DownloadError) -> Self {
        Self::Download(e)
    }
}

/// Where a catalogue file is downloaded to before conversion.
pub fn download_path(entry: &WeightEntry) -> PathBuf {
    crate::assets::cache_dir()
        .join("downloads/weights")
        .join(&entry.file_name)
}

/// Fetches, verifies, converts and installs the catalogue weights `name`; returns the
/// installed `.safetensors` (at once, without network, when it is present already).
pub fn get(
    name: &str,
    timeouts: Timeouts,
    cancel: &AtomicBool,
    progress: Progress<'_>,
) -> Result<PathBuf, ZooError> {
    let entry = catalogue::find_usable(name)?;
    let installed = catalogue::cached_path(entry);
    if installed.exists() {
        return Ok(installed);
    }
    let raw = download_path(entry);
    let fetched = download::download(
        &entry.url,
        &raw,
        &entry.sha256_prefix,
        timeouts,
        cancel,
        progress,
    )
    .map_err(|e| match e {
        DownloadError::Unreachable { url, reason } => ZooError::Offline {
            name: entry.name.clone(),
            reason: format!("could not reach {url}: {reason}"),
            url,
        },
        other => ZooError::Download(other),
    })?;
    let result = install_to(entry, &fetched, &installed);
    let _ = std::fs::remove_file(&fetched);
    result
}

/// Installs a file fetched elsewhere: `name` when given (its hash must match), else the
/// catalogue entry whose hash prefix the file's sha256 starts with.
pub fn import(file: &Path, name: Option<&str>) -> Result<PathBuf, ZooError> {
    import_reported(file, name).map(|(path, _)| path)
}

/// [`import`], with the key-by-key report of the check (all matched when it succeeds).
pub fn import_reported(
    file: &Path,
    name: Option<&str>,
) -> Result<(PathBuf, ImportReport), ZooError> {
    let found = download::sha256_file(file)?;
    let entry = match name {
        Some(name) => {
            let entry = catalogue::find_usable(name)?;
            if !found.starts_with(&entry.sha256_prefix) {
                return Err(ZooError::WrongFile {
                    path: file.to_owned(),
                    name: entry.name.clone(),
                    expected: entry.sha256_prefix.clone(),
                    found,
                });
            }
            entry
        }
        None => {
            let entry = catalogue::entries()?
                .iter()
                .find(|e| !e.sha256_prefix.is_empty() && found.starts_with(&e.sha256_prefix))
                .ok_or_else(|| ZooError::NoMatch {
                    path: file.to_owned(),
                    found: found.clone(),
                })?;
            catalogue::find_usable(&entry.name)?
        }
    };
    install_reported(entry, file, &catalogue::cached_path(entry))
}

/// Converts the checkpoint `file` (safetensors, torch zip or legacy) for `entry`'s backbone
/// into `dest`: keys in torchvision's current names ([`current_key`]), every key and shape
/// fitting the backbone with its ImageNet head (strict), checked before anything is written.
pub fn install_to(entry: &WeightEntry, file: &Path, dest: &Path) -> Result<PathBuf, ZooError> {
    install_reported(entry, file, dest).map(|(path, _)| path)
}

/// [`install_to`], with the report of the check.
fn install_reported(
    entry: &WeightEntry,
    file: &Path,
    dest: &Path,
) -> Result<(PathBuf, ImportReport), ZooError> {
    let backbone = catalogue::backbone_of(entry).ok_or_else(|| CatalogueError::NotImplemented {
        name: entry.name.clone(),
        backbone: entry.backbone.clone(),
    })?;
    let vs = VarStore::new(Device::Cpu);
    super::with_init_lock(None, || build_backbone(backbone, vs.root(), true))?;
    let tensors = read_weights(file)?;
    let mut pairs = Vec::with_capacity(tensors.len());
    for (key, tensor) in tensors {
        let tensor = if tensor.is_floating_point() {
            tensor.f_to_kind(Kind::Float).map_err(ModelError::from)?
        } else {
            tensor
        };
        pairs.push((current_key(&entry.backbone, &key), tensor.contiguous()));
    }
    let report = check_strictly(&vs, &pairs, file)?;
    let write_err = |e: std::io::Error| ZooError::Write {
        path: dest.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    crate::atomic_file::write_with(dest, |tmp| {
        tch::Tensor::write_safetensors(&pairs, tmp).map_err(std::io::Error::other)
    })
    .map_err(write_err)?;
    Ok((dest.to_owned(), report))
}

/// Every variable of `vs` in `pairs` with its shape, and every pair used (batch-norm
/// step counters aside), as the strict import of shipped weights demands.
fn check_strictly(
    vs: &VarStore,
    pairs: &[(String, tch::Tensor)],
    file: &Path,
) -> Result<ImportReport, ZooError> {
    let variables = vs.variables();
    let in_file: std::collections::HashMap<&str, &tch::Tensor> =
        pairs.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut report = ImportReport {
        source: file.to_owned(),
        ..ImportReport::default()
    };
    let mut keys: Vec<&String> = variables.keys().collect();
    keys.sort();
    for key in keys {
        match (variables.get(key), in_file.get(key.as_str())) {
            (Some(var), Some(t)) if var.size() == t.size() => report.matched.push(key.clone()),
            (Some(var), Some(t)) => report.mis_shaped.push(ShapeMismatch {
                key: key.clone(),
                expected: var.size(),
                found: t.size(),
            }),
            _ => report.missing.push(key.clone()),
        }
    }
    report.unused = pairs
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !variables.contains_key(*k) && !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    if report.is_exact() {
        Ok(report)
    } else {
        Err(ZooError::Weights(WeightsError::Mismatch {
            path: file.to_owned(),
            summary: report.summary(),
        }))
    }
}

/// A checkpoint key in torchvision's current naming: DenseNet's older files (all of
/// torchvision's DenseNet weights) write `denselayerN.norm.1.weight` where the model has
/// `denselayerN.norm1.weight`, which torchvision renames when it loads them.
pub fn current_key(backbone: &str, key: &str) -> String {
    if !backbone.starts_with("densenet") || !key.contains(".denselayer") {
        return key.to_owned();
    }
    for layer in ["norm", "relu", "conv"] {
        for index in ["1", "2"] {
            let old = format!(".{layer}.{index}.");
            if let Some(at) = key.rfind(&old) {
                let rest = &key[at + old.len()..];
                if ["weight", "bias", "running_mean", "running_var"].contains(&rest) {
                    return format!("{}.{layer}{index}.{rest}", &key[..at]);
                }
            }
        }
    }
    key.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_densenet_keys_take_their_current_names() {
        let old = "features.denseblock1.denselayer1.norm.1.weight";
        assert_eq!(
            current_key("densenet121", old),
            "features.denseblock1.denselayer1.norm1.weight"
        );
        assert_eq!(
            current_key(
                "densenet121",
                "features.denseblock4.denselayer16.conv.2.weight"
            ),
            "features.denseblock4.denselayer16.conv2.weight"
        );
        for unchanged in ["features.norm0.weight", "features.transition1.conv.weight"] {
            assert_eq!(current_key("densenet121", unchanged), unchanged);
        }
        assert_eq!(
            current_key("resnet18", "layer1.0.conv.1.weight"),
            "layer1.0.conv.1.weight"
        );
    }
}
