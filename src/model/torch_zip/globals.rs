//! The torch side of the pickle machine: the globals a state dict needs and what "calling"
//! them builds. Accepted are `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`
//! (and `_rebuild_tensor`, its pre-0.4 form),
//! `torch._utils._rebuild_parameter(_with_state)` and the typed storages `torch.<T>Storage`
//! (as persistent ids); every other global is refused by name. A call only builds a
//! description of a dict, a storage or a strided tensor. Argument layouts after PyTorch's
//! `torch/_utils.py` and `torch/serialization.py` (BSD-3-Clause).

use super::TorchZipError;
use super::pickle::{Machine, Object, Value, bad};

/// Most dimensions a tensor may have (PyTorch itself allows 64 at most).
const MAX_DIMS: usize = 64;

/// The element type of a typed storage (`torch.FloatStorage` and friends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StorageDtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    U8,
    I8,
    Bool,
}

impl StorageDtype {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "ByteStorage" => Self::U8,
            "CharStorage" => Self::I8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub(crate) fn size_bytes(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::U8 | Self::I8 | Self::Bool => 1,
        }
    }
}

/// The only callables a state dict needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    /// `_rebuild_tensor(storage, offset, size, stride)` of checkpoints before PyTorch 0.4.
    RebuildTensorV1,
    RebuildParameter,
    Storage(StorageDtype),
}

/// A storage named by a persistent id: its bytes are the archive entry `data/<key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StorageRef {
    pub dtype: StorageDtype,
    pub key: String,
    pub numel: i64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

impl Machine<'_> {
    /// GLOBAL, STACK_GLOBAL, BINPERSID, REDUCE and BUILD.
    pub(super) fn torch_op(&mut self, op: u8) -> Result<(), TorchZipError> {
        match op {
            b'c' | 0x93 => {
                let (module, name) = if op == b'c' {
                    (self.line()?, self.line()?)
                } else {
                    let name = self.pop_str()?;
                    (self.pop_str()?, name)
                };
                let global = resolve_global(&module, &name)?;
                self.push_obj(Object::Global(global));
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.storage(&pid)?;
                self.push_obj(Object::Storage(storage));
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let result = self.reduce(&callable, &args)?;
                self.stack.push(result);
            }
            _ => {
                let state = self.pop()?;
                self.build(&state)?;
            }
        }
        Ok(())
    }

    /// BINPERSID: `('storage', torch.<T>Storage, key, location, numel)`, or in the legacy
    /// format the same with a sixth item, the view metadata, which must be `None`.
    fn storage(&self, pid: &Value) -> Result<StorageRef, TorchZipError> {
        let parts = self.tuple(pid)?;
        if matches!(parts.first(), Some(Value::Str(s)) if &**s == "module") {
            return Err(bad(
                "the checkpoint is a whole pickled model (torch.save(model)), not a state dict; \
                 save `model.state_dict()` instead",
            ));
        }
        let (tag, kind, key, numel) = match parts {
            [tag, kind, key, _location, numel] => (tag, kind, key, numel),
            [tag, kind, key, _location, numel, Value::None] => (tag, kind, key, numel),
            [_, _, _, _, _, _] => {
                return Err(bad(
                    "storage views of the pre-1.0 checkpoint format are not supported",
                ));
            }
            _ => {
                return Err(bad(
                    "a persistent id must be a 5-tuple ('storage', type, key, ...)",
                ));
            }
        };
        if !matches!(tag, Value::Str(s) if &**s == "storage") {
            return Err(bad("only 'storage' persistent ids are supported"));
        }
        let Some(Object::Global(Global::Storage(dtype))) = self.object(kind) else {
            return Err(bad("persistent id without a storage type"));
        };
        let (Value::Str(key), Value::Int(numel)) = (key, numel) else {
            return Err(bad("persistent id with a malformed key or size"));
        };
        if *numel < 0 {
            return Err(bad("negative storage size"));
        }
        Ok(StorageRef {
            dtype: *dtype,
            key: key.to_string(),
            numel: *numel,
        })
    }

    /// REDUCE: "calls" an accepted global by describing its result.
    fn reduce(&mut self, callable: &Value, args: &Value) -> Result<Value, TorchZipError> {
        let Some(Object::Global(global)) = self.object(callable) else {
            return Err(bad("REDUCE on something other than an accepted global"));
        };
        let global = *global;
        let args = self.tuple(args)?.to_vec();
        match global {
            Global::OrderedDict if args.is_empty() => {
                self.objects.push(Object::Dict(Vec::new()));
                Ok(Value::Obj(self.objects.len() - 1))
            }
            Global::OrderedDict => Err(bad("OrderedDict(...) with arguments is not supported")),
            Global::RebuildParameter => match args.first() {
                Some(data @ Value::Obj(_))
                    if matches!(self.object(data), Some(Object::Tensor(_))) =>
                {
                    Ok(data.clone())
                }
                _ => Err(bad("_rebuild_parameter expects a tensor")),
            },
            Global::RebuildTensorV2 | Global::RebuildTensorV1 => {
                let tensor = self.rebuild_tensor(global, &args)?;
                self.objects.push(Object::Tensor(tensor));
                Ok(Value::Obj(self.objects.len() - 1))
            }
            Global::Storage(_) => Err(bad("a storage type cannot be called")),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`,
    /// or `_rebuild_tensor(storage, offset, size, stride)`.
    fn rebuild_tensor(&self, global: Global, args: &[Value]) -> Result<TensorRef, TorchZipError> {
        let (storage, offset, size, stride) = match (global, args) {
            (Global::RebuildTensorV1, [storage, Value::Int(offset), size, stride]) => {
                (storage, offset, size, stride)
            }
            (Global::RebuildTensorV1, _) => {
                return Err(bad("_rebuild_tensor with unexpected arguments"));
            }
            (_, [storage, Value::Int(offset), size, stride, _grad, _hooks]) => {
                (storage, offset, size, stride)
            }
            (
                _,
                [
                    storage,
                    Value::Int(offset),
                    size,
                    stride,
                    _grad,
                    _hooks,
                    _metadata,
                ],
            ) => (storage, offset, size, stride),
            _ => return Err(bad("_rebuild_tensor_v2 with unexpected arguments")),
        };
        let Some(Object::Storage(storage)) = self.object(storage) else {
            return Err(bad("_rebuild_tensor_v2 without a storage"));
        };
        let ints = |value: &Value| -> Result<Vec<i64>, TorchZipError> {
            self.tuple(value)?
                .iter()
                .map(|v| match v {
                    Value::Int(i) if *i >= 0 => Ok(*i),
                    _ => Err(bad(
                        "tensor sizes and strides must be non-negative integers",
                    )),
                })
                .collect()
        };
        let (size, stride) = (ints(size)?, ints(stride)?);
        if size.len() != stride.len() || size.len() > MAX_DIMS {
            return Err(bad("tensor sizes and strides do not agree"));
        }
        if *offset < 0 || extent(*offset, &size, &stride).is_none_or(|end| end > storage.numel) {
            return Err(bad(format!(
                "a tensor reaches past the end of its storage '{}'",
                storage.key
            )));
        }
        Ok(TensorRef {
            storage: storage.clone(),
            offset: *offset,
            size,
            stride,
        })
    }

    /// BUILD: only the attribute dict of an OrderedDict (its `_metadata`) is accepted, and
    /// ignored.
    fn build(&mut self, state: &Value) -> Result<(), TorchZipError> {
        let state_ok =
            matches!(state, Value::None) || matches!(self.object(state), Some(Object::Dict(_)));
        match self.top_object()? {
            Object::Dict(_) if state_ok => Ok(()),
            _ => Err(bad("BUILD is only supported on dicts")),
        }
    }
}

/// How many storage elements a strided view needs (`None` on overflow).
fn extent(offset: i64, size: &[i64], stride: &[i64]) -> Option<i64> {
    if size.contains(&0) {
        return Some(0);
    }
    size.iter()
        .zip(stride)
        .try_fold(offset, |end, (n, s)| {
            end.checked_add((n - 1).checked_mul(*s)?)
        })?
        .checked_add(1)
}

/// The accepted globals; anything else is refused, naming it.
fn resolve_global(module: &str, name: &str) -> Result<Global, TorchZipError> {
    let global = match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_tensor") => Some(Global::RebuildTensorV1),
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            Some(Global::RebuildParameter)
        }
        ("torch", storage) => StorageDtype::from_name(storage).map(Global::Storage),
        _ => None,
    };
    global.ok_or_else(|| TorchZipError::ForbiddenGlobal(format!("{module}.{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::torch_zip::pickle::{Pickle, unpickle};

    /// `collections.OrderedDict()` followed by SETITEMS of the given pickled items, then STOP.
    fn ordered_dict(items: &[u8]) -> Vec<u8> {
        let mut out = b"\x80\x02ccollections\nOrderedDict\nq\x00)R(".to_vec();
        out.extend_from_slice(items);
        out.extend_from_slice(b"u.");
        out
    }

    /// A pickled `_rebuild_tensor_v2` call on FloatStorage key "0" of 6 elements.
    fn tensor(size_stride: &[u8]) -> Vec<u8> {
        let mut out = b"ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
        out.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n");
        out.extend_from_slice(b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
        out.extend_from_slice(size_stride);
        out.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
        out
    }

    fn root_pairs(pickle: &Pickle) -> Vec<(Value, Value)> {
        match pickle.object(&pickle.root) {
            Some(Object::Dict(pairs)) => pairs.clone(),
            other => panic!("root is {other:?}"),
        }
    }

    #[test]
    fn rebuild_tensor_describes_a_strided_view() {
        // A [3, 2] view with strides (1, 3): the transpose of a [2, 3] tensor.
        let mut items = b"X\x01\x00\x00\x00w".to_vec();
        items.extend(tensor(b"K\x00K\x03K\x02\x86K\x01K\x03\x86"));
        let pickle = unpickle(&ordered_dict(&items)).unwrap();
        let pairs = root_pairs(&pickle);
        let Some(Object::Tensor(t)) = pickle.object(&pairs[0].1) else {
            panic!("not a tensor: {pairs:?}");
        };
        assert_eq!(t.size, vec![3, 2]);
        assert_eq!(t.stride, vec![1, 3]);
        assert_eq!(t.storage.dtype, StorageDtype::F32);
        assert_eq!(t.storage.numel, 6);
    }

    #[test]
    fn views_past_the_storage_are_refused() {
        // Offset 1 with 6 elements needs 7.
        let mut items = b"X\x01\x00\x00\x00w".to_vec();
        items.extend(tensor(b"K\x01K\x06\x85K\x01\x85"));
        let err = unpickle(&ordered_dict(&items)).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
    }

    #[test]
    fn forbidden_globals_are_refused_by_name() {
        let global = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.";
        let err = unpickle(global).unwrap_err();
        assert!(matches!(err, TorchZipError::ForbiddenGlobal(ref g) if g == "os.system"));
        let stack_global = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
        let err = unpickle(stack_global).unwrap_err().to_string();
        assert!(err.contains("builtins.eval"), "{err}");
        let storage_call = b"\x80\x02ctorch\nFloatStorage\n)R.";
        assert!(unpickle(storage_call).is_err());
    }
}
