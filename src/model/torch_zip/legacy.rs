//! The legacy `torch.save` format: what PyTorch wrote before 1.6 and still writes with
//! `_use_new_zipfile_serialization=False` (torchvision's older weights, many files in
//! registry packages).
//!
//! The file is five pickles in a row, then the raw storages: the magic number, the protocol
//! version (1001), a dict of system facts, the object itself (the state dict, storages as
//! persistent ids `('storage', torch.<T>Storage, key, location, numel, None)`), and the sorted
//! list of storage keys. Each storage follows in that order as an 8-byte little-endian
//! element count and its elements, little-endian. The same data-only pickle machine as the
//! zip format reads the pickles; nothing is executed. Layout after PyTorch's
//! `torch/serialization.py` (`_legacy_save`, `_legacy_load`; BSD-3-Clause).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use tch::Tensor;

use super::globals::StorageRef;
use super::pickle::{Object, Pickle, Value, unpickle_from};
use super::{MAX_PICKLE_BYTES, TorchZipError, rebuild, storage_tensor};

/// `torch.serialization.MAGIC_NUMBER` (0x1950a86a20f9469cfc6c) as pickled: 10 bytes, little
/// endian.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// `torch.serialization.PROTOCOL_VERSION`.
const PROTOCOL_VERSION: i64 = 1001;
/// Bytes of the element count before each storage.
const COUNT_BYTES: u64 = 8;

/// Reads every tensor of the state dict in a legacy `torch.save` file, in file order; wrapped
/// training checkpoints yield their inner state dict as in [`super::read_state_dict`].
pub fn read_legacy_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, TorchZipError> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut head = Vec::new();
    (&mut file)
        .take(file_len.min(MAX_PICKLE_BYTES))
        .read_to_end(&mut head)?;
    let pos = after_magic(&head)?;
    let (version, pos) = unpickle_from(&head, pos)?;
    if version.root != Value::Int(PROTOCOL_VERSION) {
        return Err(not_legacy(format!(
            "protocol version {:?} instead of {PROTOCOL_VERSION}",
            version.root
        )));
    }
    let (sys_info, pos) = unpickle_from(&head, pos)?;
    if !matches!(sys_info.object(&sys_info.root), Some(Object::Dict(_))) {
        return Err(not_legacy("the system facts are not a dict".into()));
    }
    let (object, pos) = unpickle_from(&head, pos).map_err(|e| too_big(e, &head, file_len))?;
    let (keys, data_start) = unpickle_from(&head, pos).map_err(|e| too_big(e, &head, file_len))?;
    let keys = string_list(&keys)?;
    let offsets = storage_offsets(&mut file, &object, &keys, data_start as u64, file_len)?;
    rebuild(&object, |storage| {
        let offset = offsets.get(&storage.key).ok_or_else(|| {
            TorchZipError::Pickle(format!(
                "storage '{}' is not in the file's list of storages",
                storage.key
            ))
        })?;
        read_storage(&mut file, storage, *offset)
    })
}

fn not_legacy(reason: String) -> TorchZipError {
    TorchZipError::NotLegacy(reason)
}

/// A pickle that runs past the part of the file read: the file is cut short, or its pickles
/// are larger than any state dict's.
fn too_big(e: TorchZipError, head: &[u8], file_len: u64) -> TorchZipError {
    match e {
        TorchZipError::Pickle(reason) if reason.starts_with("the pickle ends early") => {
            if (head.len() as u64) < file_len {
                TorchZipError::Pickle(format!(
                    "the checkpoint's pickles are larger than {} MiB",
                    MAX_PICKLE_BYTES >> 20
                ))
            } else {
                TorchZipError::Truncated("inside the pickled state dict".into())
            }
        }
        other => other,
    }
}

/// Checks the first pickle, the magic number, and returns the byte after it.
fn after_magic(head: &[u8]) -> Result<usize, TorchZipError> {
    let wrong = || not_legacy("it does not start with torch.save's magic number".into());
    let mut pos = 0;
    if head.first() == Some(&0x80) {
        pos += 2; // PROTO n
    }
    if head.get(pos) == Some(&0x95) {
        pos += 9; // FRAME and its 8-byte length
    }
    let long1 = [0x8a, 10];
    let magic_at = pos + long1.len();
    let end = magic_at + MAGIC.len();
    if head.get(pos..magic_at) != Some(&long1[..]) || head.get(magic_at..end) != Some(&MAGIC[..]) {
        return Err(wrong());
    }
    if head.get(end) != Some(&b'.') {
        return Err(wrong());
    }
    Ok(end + 1)
}

/// The storage keys of the last pickle: a list of strings.
fn string_list(pickle: &Pickle) -> Result<Vec<String>, TorchZipError> {
    let Some(Object::List(items)) = pickle.object(&pickle.root) else {
        return Err(not_legacy("the storage key list is missing".into()));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Str(key) => Ok(key.to_string()),
            _ => Err(not_legacy("a storage key is not a string".into())),
        })
        .collect()
}

/// Where each storage's elements start, checking every element count against the storage
/// it belongs to and the file's length.
fn storage_offsets(
    file: &mut File,
    object: &Pickle,
    keys: &[String],
    data_start: u64,
    file_len: u64,
) -> Result<HashMap<String, u64>, TorchZipError> {
    let mut described: HashMap<&str, &StorageRef> = HashMap::new();
    for item in &object.objects {
        if let Object::Storage(storage) = item {
            described.entry(storage.key.as_str()).or_insert(storage);
        }
    }
    let mut offsets = HashMap::with_capacity(keys.len());
    let mut at = data_start;
    for key in keys {
        let storage = described.get(key.as_str()).ok_or_else(|| {
            TorchZipError::Pickle(format!("storage '{key}' is listed but never used"))
        })?;
        let nbytes = storage_bytes(storage)?;
        if at.saturating_add(COUNT_BYTES) > file_len {
            return Err(TorchZipError::Truncated(format!("before storage '{key}'")));
        }
        file.seek(SeekFrom::Start(at))?;
        let mut count = [0u8; COUNT_BYTES as usize];
        file.read_exact(&mut count)?;
        let count = u64::from_le_bytes(count);
        if i64::try_from(count).ok() != Some(storage.numel) {
            return Err(TorchZipError::Pickle(format!(
                "storage '{key}' holds {count} elements in the file, {} in its description",
                storage.numel
            )));
        }
        let data = at + COUNT_BYTES;
        let end = data
            .checked_add(nbytes)
            .filter(|end| *end <= file_len)
            .ok_or_else(|| TorchZipError::Truncated(format!("inside storage '{key}'")))?;
        offsets.insert(key.clone(), data);
        at = end;
    }
    Ok(offsets)
}

/// The byte size of a storage's elements.
fn storage_bytes(storage: &StorageRef) -> Result<u64, TorchZipError> {
    u64::try_from(storage.numel)
        .ok()
        .and_then(|n| n.checked_mul(storage.dtype.size_bytes() as u64))
        .ok_or_else(|| TorchZipError::Pickle(format!("storage '{}' is too large", storage.key)))
}

/// A storage's elements from `offset` (little-endian in the file) as a flat tensor.
fn read_storage(
    file: &mut File,
    storage: &StorageRef,
    offset: u64,
) -> Result<Tensor, TorchZipError> {
    let nbytes = usize::try_from(storage_bytes(storage)?)
        .map_err(|_| TorchZipError::Pickle(format!("storage '{}' is too large", storage.key)))?;
    let mut bytes = vec![0u8; nbytes];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut bytes)?;
    storage_tensor(bytes, storage, cfg!(target_endian = "big"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_number_is_recognised_with_and_without_a_frame() {
        let mut plain = vec![0x80, 0x02, 0x8a, 10];
        plain.extend(MAGIC);
        plain.push(b'.');
        assert_eq!(after_magic(&plain).unwrap(), plain.len());
        let mut framed = vec![0x80, 0x04, 0x95, 13, 0, 0, 0, 0, 0, 0, 0, 0x8a, 10];
        framed.extend(MAGIC);
        framed.push(b'.');
        assert_eq!(after_magic(&framed).unwrap(), framed.len());
        let mut wrong = plain.clone();
        wrong[5] ^= 1;
        let err = after_magic(&wrong).unwrap_err().to_string();
        assert!(err.contains("magic number"), "{err}");
        assert!(after_magic(&plain[..8]).is_err());
    }
}
