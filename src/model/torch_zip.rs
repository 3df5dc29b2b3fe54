//! Reads PyTorch zip checkpoints: the archive `torch.save(model.state_dict(), "x.pt")` writes
//! since PyTorch 1.6 (`<folder>/data.pkl`, `<folder>/data/<key>`, `<folder>/byteorder`), and
//! the legacy format before it ([`legacy`]: consecutive pickles, then the raw storages).
//!
//! A data reader, never an interpreter: the pickle is run by the small machine in [`pickle`],
//! which accepts only dicts, `OrderedDict`, tensors, parameters and typed storages and refuses
//! every other global by name. Tensors are rebuilt on the CPU from their storage bytes with
//! the pickled offset, sizes and strides. Layout after PyTorch's `torch/serialization.py`
//! (BSD-3-Clause).

mod globals;
mod legacy;
mod pickle;

pub use legacy::read_legacy_state_dict;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use tch::{Device, Kind, Tensor};
use zip::ZipArchive;

use globals::{StorageDtype, StorageRef, TensorRef};
use pickle::{Object, Pickle, Value};

/// Largest `data.pkl` read (a ResNet-50's is about 30 KB).
const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// Keys under which training checkpoints usually keep the state dict.
const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model_state_dict", "model"];
/// How many wrapper dicts deep the state dict may sit.
const MAX_WRAPPER_DEPTH: usize = 4;

/// Why a PyTorch zip checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TorchZipError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a complete zip archive, the file may be truncated or damaged ({0})")]
    Zip(String),
    #[error("the zip archive has no <folder>/data.pkl, so it is not a torch.save checkpoint")]
    NoPickle,
    #[error(
        "this is a TorchScript archive (torch.jit.save), not a state dict: use it as a \
         TorchScript backbone, or save `model.state_dict()` with torch.save"
    )]
    TorchScript,
    #[error("archive entry '{name}': {reason}")]
    Entry { name: String, reason: String },
    #[error("unreadable checkpoint pickle: {0}")]
    Pickle(String),
    #[error(
        "the checkpoint's pickle refers to `{0}`, which a state dict never needs (only dicts \
         and tensors are read, nothing is executed); save `model.state_dict()` instead, or \
         convert the file to .safetensors"
    )]
    ForbiddenGlobal(String),
    #[error("no state dict in the checkpoint: {0}")]
    NoStateDict(String),
    #[error("libtorch could not rebuild a tensor: {0}")]
    Torch(String),
    #[error("not a torch.save checkpoint of the legacy format: {0}")]
    NotLegacy(String),
    #[error("the file ends early {0}, it may be truncated or damaged")]
    Truncated(String),
}

impl From<tch::TchError> for TorchZipError {
    fn from(e: tch::TchError) -> Self {
        Self::Torch(super::weights::brief(&e))
    }
}

/// Reads every tensor of the state dict in a `torch.save` zip archive, in file order. A
/// training checkpoint that wraps the state dict (`{"state_dict": sd, "epoch": 3}`, or under
/// `"model_state_dict"` / `"model"`) yields the inner dict; non-tensor entries are skipped.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, TorchZipError> {
    let file = BufReader::new(File::open(path)?);
    let mut archive = ZipArchive::new(file).map_err(|e| TorchZipError::Zip(e.to_string()))?;
    let prefix = archive_prefix(&archive)?;
    let swap = needs_byte_swap(&mut archive, &prefix)?;
    let pickle_name = format!("{prefix}/data.pkl");
    let data = read_entry(&mut archive, &pickle_name, MAX_PICKLE_BYTES)?;
    if data.len() as u64 > MAX_PICKLE_BYTES {
        return Err(TorchZipError::Entry {
            name: pickle_name,
            reason: format!("larger than {} MiB", MAX_PICKLE_BYTES >> 20),
        });
    }
    let pickle = pickle::unpickle(&data)?;
    rebuild(&pickle, |storage| {
        load_storage(&mut archive, &prefix, storage, swap)
    })
}

/// The state dict's tensors of `pickle`, in file order, each storage read once by `load`.
fn rebuild(
    pickle: &Pickle,
    mut load: impl FnMut(&StorageRef) -> Result<Tensor, TorchZipError>,
) -> Result<Vec<(String, Tensor)>, TorchZipError> {
    let tensors = state_dict(pickle)?;
    let mut storages: HashMap<String, (StorageRef, Tensor)> = HashMap::new();
    let mut out = Vec::with_capacity(tensors.len());
    for (key, tensor) in tensors {
        let wanted = &tensor.storage;
        if !storages.contains_key(&wanted.key) {
            let storage = load(wanted)?;
            storages.insert(wanted.key.clone(), (wanted.clone(), storage));
        }
        let storage = match storages.get(&wanted.key) {
            Some((seen, storage)) if seen == wanted => storage,
            _ => {
                return Err(TorchZipError::Pickle(format!(
                    "storage '{}' is used with two different types or sizes",
                    wanted.key
                )));
            }
        };
        out.push((key, view(storage, &tensor)?));
    }
    Ok(out)
}

/// The archive's top folder: `X` of the entry `X/data.pkl`.
fn archive_prefix<R: Read + std::io::Seek>(
    archive: &ZipArchive<R>,
) -> Result<String, TorchZipError> {
    let mut prefixes: Vec<&str> = archive
        .file_names()
        .filter_map(|name| name.strip_suffix("/data.pkl"))
        .filter(|prefix| !prefix.is_empty() && !prefix.contains('/'))
        .collect();
    prefixes.sort_unstable();
    let prefix = prefixes.first().ok_or(TorchZipError::NoPickle)?.to_string();
    let code = format!("{prefix}/code/");
    let constants = format!("{prefix}/constants.pkl");
    if archive
        .file_names()
        .any(|name| name == constants || name.starts_with(&code))
    {
        return Err(TorchZipError::TorchScript);
    }
    Ok(prefix)
}

/// Whether storage bytes must be swapped to this machine's order (`byteorder` entry, little
/// endian when absent as in PyTorch before 1.13).
fn needs_byte_swap<R: Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
    prefix: &str,
) -> Result<bool, TorchZipError> {
    let name = format!("{prefix}/byteorder");
    let little = if archive.file_names().any(|n| n == name) {
        let order = read_entry(archive, &name, 16)?;
        match order.trim_ascii() {
            b"little" => true,
            b"big" => false,
            other => {
                return Err(TorchZipError::Entry {
                    name,
                    reason: format!("unknown byte order {:?}", String::from_utf8_lossy(other)),
                });
            }
        }
    } else {
        true
    };
    Ok(little != cfg!(target_endian = "little"))
}

/// Reads an entry, at most `limit + 1` bytes: one more than wanted, so that reading a
/// complete entry of `limit` bytes reaches its end and checks its CRC.
fn read_entry<R: Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, TorchZipError> {
    let entry_err = |reason: String| TorchZipError::Entry {
        name: name.to_owned(),
        reason,
    };
    let entry = archive
        .by_name(name)
        .map_err(|e| entry_err(e.to_string()))?;
    let capacity = entry.size().min(limit).min(64 << 20);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| entry_err(e.to_string()))?;
    Ok(bytes)
}

/// The state dict: the root dict, or the first wrapped dict holding tensors.
fn state_dict(pickle: &Pickle) -> Result<Vec<(String, TensorRef)>, TorchZipError> {
    let mut current = pickle.root.clone();
    for _ in 0..MAX_WRAPPER_DEPTH {
        let Some(Object::Dict(pairs)) = pickle.object(&current) else {
            return Err(TorchZipError::NoStateDict(
                "the pickled object is not a dict".into(),
            ));
        };
        let tensors: Vec<(String, TensorRef)> = pairs
            .iter()
            .filter_map(|(key, value)| match (key, pickle.object(value)) {
                (Value::Str(key), Some(Object::Tensor(t))) => Some((key.to_string(), t.clone())),
                _ => None,
            })
            .collect();
        if !tensors.is_empty() {
            return Ok(tensors);
        }
        let wrapped = WRAPPER_KEYS.iter().find_map(|wanted| {
            pairs
                .iter()
                .find_map(|(key, value)| match (key, pickle.object(value)) {
                    (Value::Str(key), Some(Object::Dict(_))) if &**key == *wanted => Some(value),
                    _ => None,
                })
        });
        match wrapped {
            Some(inner) => current = inner.clone(),
            None => {
                return Err(TorchZipError::NoStateDict(
                    "a dict without tensors and without a 'state_dict' or 'model' entry".into(),
                ));
            }
        }
    }
    Err(TorchZipError::NoStateDict("dicts nested too deeply".into()))
}

fn kind(dtype: StorageDtype) -> Kind {
    match dtype {
        StorageDtype::F32 => Kind::Float,
        StorageDtype::F64 => Kind::Double,
        StorageDtype::F16 => Kind::Half,
        StorageDtype::BF16 => Kind::BFloat16,
        StorageDtype::I64 => Kind::Int64,
        StorageDtype::I32 => Kind::Int,
        StorageDtype::I16 => Kind::Int16,
        StorageDtype::U8 => Kind::Uint8,
        StorageDtype::I8 => Kind::Int8,
        StorageDtype::Bool => Kind::Bool,
    }
}

/// A storage as a flat CPU tensor of `numel` elements, from the entry `data/<key>`.
fn load_storage<R: Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
    prefix: &str,
    storage: &StorageRef,
    swap: bool,
) -> Result<Tensor, TorchZipError> {
    let name = format!("{prefix}/data/{}", storage.key);
    let element_bytes = storage.dtype.size_bytes();
    let nbytes = usize::try_from(storage.numel)
        .ok()
        .and_then(|n| n.checked_mul(element_bytes))
        .ok_or_else(|| TorchZipError::Entry {
            name: name.clone(),
            reason: "storage too large".into(),
        })?;
    let mut bytes = read_entry(archive, &name, nbytes as u64)?;
    if bytes.len() < nbytes {
        return Err(TorchZipError::Entry {
            name,
            reason: format!("holds {} bytes, the tensors need {nbytes}", bytes.len()),
        });
    }
    bytes.truncate(nbytes);
    storage_tensor(bytes, storage, swap)
}

/// Storage bytes (exactly `numel` elements, in the file's byte order) as a flat CPU tensor.
fn storage_tensor(
    mut bytes: Vec<u8>,
    storage: &StorageRef,
    swap: bool,
) -> Result<Tensor, TorchZipError> {
    let element_bytes = storage.dtype.size_bytes();
    if swap && element_bytes > 1 {
        bytes
            .chunks_exact_mut(element_bytes)
            .for_each(<[u8]>::reverse);
    }
    if storage.dtype == StorageDtype::Bool {
        // libtorch requires bools to be 0 or 1.
        bytes.iter_mut().for_each(|b| *b = u8::from(*b != 0));
    }
    Ok(Tensor::f_from_data_size(
        &bytes,
        &[storage.numel],
        kind(storage.dtype),
    )?)
}

/// The tensor `t` describes, as a contiguous tensor; it shares the storage only when it is
/// exactly the whole storage in order.
fn view(storage: &Tensor, t: &TensorRef) -> Result<Tensor, TorchZipError> {
    let strided = storage.f_as_strided(t.size.as_slice(), t.stride.as_slice(), t.offset)?;
    let whole = t.offset == 0 && i64::try_from(strided.numel()).ok() == Some(t.storage.numel);
    if whole && strided.is_contiguous() {
        return Ok(strided);
    }
    let mut out = Tensor::f_empty(t.size.as_slice(), (strided.kind(), Device::Cpu))?;
    out.f_copy_(&strided)?;
    Ok(out)
}
