//! Weight import into a `VarStore` from `.safetensors` or PyTorch state dicts (zip or legacy
//! format), with a report of matched, missing, unused and mis-shaped keys.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tch::{Tensor, nn::VarStore};

/// Buffers that torchvision saves but that carry no information for inference or training here.
const IGNORED_SUFFIXES: [&str; 1] = ["num_batches_tracked"];

/// Failures reading a weights file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("could not read the weights file ({reason}): {}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("the weights file holds no tensors: {}", path.display())]
    Empty { path: PathBuf },
    #[error("the weights do not fit this model ({summary}): {}", path.display())]
    Mismatch { path: PathBuf, summary: String },
    #[error("could not copy tensor '{key}' from the weights file ({reason}): {}", path.display())]
    Copy {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// A key whose shape differs between the model and the file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShapeMismatch {
    /// The state-dict key.
    pub key: String,
    /// Shape in the model.
    pub expected: Vec<i64>,
    /// Shape in the file.
    pub found: Vec<i64>,
}

/// What an import did, key by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// The file read.
    pub source: PathBuf,
    /// Keys copied into the model.
    pub matched: Vec<String>,
    /// Model keys the file lacks (left at their initial values).
    pub missing: Vec<String>,
    /// File keys the model has no place for.
    pub unused: Vec<String>,
    /// Keys present in both with different shapes (not copied).
    pub mis_shaped: Vec<ShapeMismatch>,
}

impl ImportReport {
    /// True when every model key was filled and every file key used.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unused.is_empty() && self.mis_shaped.is_empty()
    }

    /// A one-line summary naming the first few offending keys.
    pub fn summary(&self) -> String {
        let first = |keys: &[String]| keys.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let mut parts = vec![format!("{} matched", self.matched.len())];
        if !self.missing.is_empty() {
            parts.push(format!(
                "{} missing [{}]",
                self.missing.len(),
                first(&self.missing)
            ));
        }
        if !self.unused.is_empty() {
            parts.push(format!(
                "{} unused [{}]",
                self.unused.len(),
                first(&self.unused)
            ));
        }
        if !self.mis_shaped.is_empty() {
            let keys: Vec<String> = self.mis_shaped.iter().map(|m| m.key.clone()).collect();
            parts.push(format!("{} mis-shaped [{}]", keys.len(), first(&keys)));
        }
        parts.join(", ")
    }
}

/// Reads every named tensor of a weights file (`.safetensors`, or a PyTorch state dict in the
/// zip or the legacy format, read by [`super::torch_zip`]).
pub fn read_weights(path: &Path) -> Result<BTreeMap<String, Tensor>, WeightsError> {
    let read_err = |reason: String| WeightsError::Read {
        path: path.to_owned(),
        reason,
    };
    let head = read_head(path).map_err(|e| read_err(e.to_string()))?;
    let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
        Tensor::read_safetensors(path).map_err(|e| read_err(brief(&e)))?
    } else if head.starts_with(b"PK\x03\x04") {
        super::torch_zip::read_state_dict(path).map_err(|e| read_err(e.to_string()))?
    } else if head.first() == Some(&0x80) {
        super::torch_zip::read_legacy_state_dict(path).map_err(|e| read_err(e.to_string()))?
    } else {
        return Err(read_err(
            "not a .safetensors file or a PyTorch state dict".into(),
        ));
    };
    if tensors.is_empty() {
        return Err(WeightsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tensors.into_iter().collect())
}

/// A libtorch error in one line: its first, without the C++ backtrace that follows.
pub(crate) fn brief(e: &tch::TchError) -> String {
    const MAX_CHARS: usize = 300;
    let text = e.to_string();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown libtorch error");
    match line.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)?.take(8).read_to_end(&mut head)?;
    Ok(head)
}

/// Copies matching tensors from `path` into `vs` and reports every key. With `strict`, any
/// missing, unused or mis-shaped key is an error and nothing is copied.
pub fn import_weights(
    vs: &VarStore,
    path: &Path,
    strict: bool,
) -> Result<ImportReport, WeightsError> {
    let file = read_weights(path)?;
    let variables = vs.variables();
    let report = compare(path, &variables, &file);
    if strict && !report.is_exact() {
        return Err(WeightsError::Mismatch {
            path: path.to_owned(),
            summary: report.summary(),
        });
    }
    tch::no_grad(|| {
        for key in &report.matched {
            if let (Some(var), Some(src)) = (variables.get(key), file.get(key)) {
                let src = src
                    .f_to_kind(var.kind())
                    .and_then(|s| s.f_to_device(var.device()));
                let copied = src.and_then(|s| var.shallow_clone().f_copy_(&s));
                copied.map_err(|e| WeightsError::Copy {
                    path: path.to_owned(),
                    key: key.clone(),
                    reason: brief(&e),
                })?;
            }
        }
        Ok(())
    })?;
    Ok(report)
}

fn compare(
    path: &Path,
    variables: &HashMap<String, Tensor>,
    file: &BTreeMap<String, Tensor>,
) -> ImportReport {
    let mut report = ImportReport {
        source: path.to_owned(),
        ..ImportReport::default()
    };
    let mut model_keys: Vec<&String> = variables.keys().collect();
    model_keys.sort();
    for key in model_keys {
        match (variables.get(key), file.get(key)) {
            (Some(var), Some(src)) if var.size() == src.size() => report.matched.push(key.clone()),
            (Some(var), Some(src)) => report.mis_shaped.push(ShapeMismatch {
                key: key.clone(),
                expected: var.size(),
                found: src.size(),
            }),
            _ => report.missing.push(key.clone()),
        }
    }
    report.unused = file
        .keys()
        .filter(|k| !variables.contains_key(*k))
        .filter(|k| !IGNORED_SUFFIXES.iter().any(|s| k.ends_with(s)))
        .cloned()
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn};

    fn store() -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        vs
    }

    fn write(path: &Path, tensors: &[(&str, Tensor)]) {
        Tensor::write_safetensors(tensors, path).unwrap();
    }

    #[test]
    fn exact_file_is_copied_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let w = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        write(
            &path,
            &[
                ("fc.weight", w),
                ("fc.bias", b),
                ("x.num_batches_tracked", Tensor::from(1i64)),
            ],
        );
        let vs = store();
        let report = import_weights(&vs, &path, true).unwrap();
        assert!(report.is_exact(), "{}", report.summary());
        let sum = vs.variables()["fc.weight"]
            .sum(Kind::Float)
            .double_value(&[]);
        assert_eq!(sum, 6.0);
    }

    #[test]
    fn wrong_shapes_missing_and_unused_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let w = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
        let extra = Tensor::ones([1], (Kind::Float, Device::Cpu));
        write(&path, &[("fc.weight", w), ("head.bias", extra)]);
        let vs = store();
        let report = import_weights(&vs, &path, false).unwrap();
        assert_eq!(report.missing, vec!["fc.bias".to_owned()]);
        assert_eq!(report.unused, vec!["head.bias".to_owned()]);
        assert_eq!(report.mis_shaped[0].found, vec![4, 3]);
        let strict = import_weights(&vs, &path, true).unwrap_err();
        assert!(matches!(strict, WeightsError::Mismatch { .. }), "{strict}");
    }

    #[test]
    fn libtorch_errors_are_cut_to_their_first_line() {
        let error = tch::TchError::Torch(
            "isGenericDict() INTERNAL ASSERT FAILED\nException raised from x at y.cpp:1\nframe #0"
                .into(),
        );
        assert_eq!(
            brief(&error),
            "Internal torch error: isGenericDict() INTERNAL ASSERT FAILED"
        );
        let long = tch::TchError::Torch("é".repeat(400));
        assert_eq!(brief(&long).chars().count(), 303);
    }

    #[test]
    fn garbage_legacy_pickle_and_missing_files_give_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pickle = dir.path().join("old.pth");
        std::fs::write(&pickle, [0x80, 0x02, 0x8a, 0x0a]).unwrap();
        let garbage = dir.path().join("junk.safetensors");
        std::fs::write(&garbage, b"hello world").unwrap();
        let vs = store();
        let err = import_weights(&vs, &pickle, true).unwrap_err();
        assert!(matches!(err, WeightsError::Read { .. }), "{err}");
        assert!(err.to_string().ends_with("old.pth"), "{err}");
        let err = import_weights(&vs, &garbage, true).unwrap_err();
        assert!(err.to_string().contains("junk.safetensors"), "{err}");
        let missing = import_weights(&vs, &dir.path().join("nope.pt"), true).unwrap_err();
        assert!(matches!(missing, WeightsError::Read { .. }), "{missing}");
    }
}
