//! A minimal, data-only pickle reader for the `data.pkl` of a `torch.save` archive.
//!
//! Only the opcodes that `torch.save` emits (protocols 2 to 5) are understood, and only four
//! kinds of global are accepted: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
//! `torch._utils._rebuild_parameter(_with_state)` and the typed storages `torch.<T>Storage`.
//! Nothing is ever executed: a "call" of an accepted global only builds a description of a
//! dict or a tensor. All containers live in one arena addressed by index, so shared and even
//! cyclic references cost nothing and dropping the result never recurses; memory is bounded
//! by the (already size-limited) input, as every opcode adds at most a constant amount.
//! Opcode semantics follow CPython's `Lib/pickletools.py` (PSF licence).

use std::collections::HashMap;
use std::rc::Rc;

use super::TorchZipError;

/// Most dimensions a tensor may have (PyTorch itself allows 64 at most).
const MAX_DIMS: usize = 64;

/// A pickled value; containers and tensors are indices into [`Pickle::objects`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Obj(usize),
}

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

/// Containers and descriptions that values point to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Object {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Dict or OrderedDict: pairs in insertion order (a repeated key appears twice).
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The result of unpickling: the arena of objects and the root value.
#[derive(Debug)]
pub(crate) struct Pickle {
    pub objects: Vec<Object>,
    pub root: Value,
}

impl Pickle {
    /// The object a value points to, if it is one.
    pub(crate) fn object(&self, value: &Value) -> Option<&Object> {
        match value {
            Value::Obj(id) => self.objects.get(*id),
            _ => None,
        }
    }
}

/// Runs the pickle program `data` and returns what it built.
pub(crate) fn unpickle(data: &[u8]) -> Result<Pickle, TorchZipError> {
    let mut machine = Machine {
        input: data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objects: Vec::new(),
    };
    let root = machine.run()?;
    Ok(Pickle {
        objects: machine.objects,
        root,
    })
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    objects: Vec<Object>,
}

fn bad(reason: impl Into<String>) -> TorchZipError {
    TorchZipError::Pickle(reason.into())
}

impl Machine<'_> {
    fn run(&mut self) -> Result<Value, TorchZipError> {
        loop {
            let at = self.pos;
            let op = self.take(1)?[0];
            if op == b'.' {
                return self.pop();
            }
            self.step(op).map_err(|e| match e {
                TorchZipError::Pickle(reason) => {
                    bad(format!("{reason} (opcode {op:#04x} at byte {at})"))
                }
                other => other,
            })?;
        }
    }

    /// Executes one opcode other than STOP.
    fn step(&mut self, op: u8) -> Result<(), TorchZipError> {
        match op {
            0x80 => {
                let proto = self.take(1)?[0];
                if !(2..=5).contains(&proto) {
                    return Err(bad(format!("pickle protocol {proto} is not supported")));
                }
            }
            0x95 => {
                self.take(8)?; // FRAME: a length hint only.
            }
            b'}' => self.push_obj(Object::Dict(Vec::new())),
            b']' => self.push_obj(Object::List(Vec::new())),
            b')' => self.push_obj(Object::Tuple(Vec::new())),
            b'(' => self.marks.push(self.stack.len()),
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(items)?;
                self.push_obj(Object::Dict(pairs));
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push_obj(Object::List(items));
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push_obj(Object::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let floor = self.marks.last().copied().unwrap_or(0);
                let at = self
                    .stack
                    .len()
                    .checked_sub(n)
                    .filter(|at| *at >= floor)
                    .ok_or_else(|| bad("stack underflow"))?;
                let items = self.stack.split_off(at);
                self.push_obj(Object::Tuple(items));
            }
            b'X' => {
                let n = self.u32()? as usize;
                self.push_str(n)?;
            }
            0x8c => {
                let n = usize::from(self.take(1)?[0]);
                self.push_str(n)?;
            }
            0x8d => {
                let n = usize::try_from(self.u64()?).map_err(|_| bad("string too long"))?;
                self.push_str(n)?;
            }
            b'J' => {
                let v = i32::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(v.into()));
            }
            b'K' => {
                let v = self.take(1)?[0];
                self.stack.push(Value::Int(v.into()));
            }
            b'M' => {
                let v = u16::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(v.into()));
            }
            0x8a => {
                let v = self.long1()?;
                self.stack.push(Value::Int(v));
            }
            b'G' => {
                let v = f64::from_be_bytes(self.array()?);
                self.stack.push(Value::Float(v));
            }
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let global = resolve_global(&module, &name)?;
                self.push_obj(Object::Global(global));
            }
            0x93 => {
                let name = self.pop_str()?;
                let module = self.pop_str()?;
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
            b'b' => {
                let state = self.pop()?;
                self.build(&state)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.dict_mut()?.push((key, value));
            }
            b'u' => {
                let items = self.pop_mark()?;
                let new = pairs(items)?;
                self.dict_mut()?.extend(new);
            }
            b'a' => {
                let value = self.pop()?;
                self.list_mut()?.push(value);
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.list_mut()?.extend(items);
            }
            b'q' => {
                let index = self.take(1)?[0];
                self.memo_put(index.into())?;
            }
            b'r' => {
                let index = u32::from_le_bytes(self.array()?);
                self.memo_put(index)?;
            }
            0x94 => {
                let index = u32::try_from(self.memo.len()).map_err(|_| bad("memo too large"))?;
                self.memo_put(index)?;
            }
            b'h' => {
                let index = self.take(1)?[0];
                self.memo_get(index.into())?;
            }
            b'j' => {
                let index = u32::from_le_bytes(self.array()?);
                self.memo_get(index)?;
            }
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.stack.last().cloned().ok_or_else(|| bad("empty stack"))?;
                self.stack.push(top);
            }
            _ => {
                return Err(bad(format!(
                    "unsupported pickle opcode {op:#04x} ({:?}); only the opcodes torch.save \
                     writes for a state dict are read",
                    char::from(op)
                )));
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], TorchZipError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or_else(|| bad("the pickle ends early"))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TorchZipError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, TorchZipError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, TorchZipError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// LONG1: a little-endian two's-complement integer of up to 8 bytes.
    fn long1(&mut self) -> Result<i64, TorchZipError> {
        let n = usize::from(self.take(1)?[0]);
        if n > 8 {
            return Err(bad("integer does not fit in 64 bits"));
        }
        let bytes = self.take(n)?;
        let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
        let mut buf = [if negative { 0xff } else { 0 }; 8];
        buf[..n].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buf))
    }

    /// A newline-terminated ASCII line (the arguments of GLOBAL).
    fn line(&mut self) -> Result<String, TorchZipError> {
        let rest = &self.input[self.pos..];
        let len = rest
            .iter()
            .take(256)
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("GLOBAL name is not terminated"))?;
        let line = std::str::from_utf8(&rest[..len])
            .map_err(|_| bad("GLOBAL name is not UTF-8"))?
            .to_owned();
        self.pos += len + 1;
        Ok(line)
    }

    fn push_str(&mut self, n: usize) -> Result<(), TorchZipError> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| bad("string is not UTF-8"))?;
        let text: Rc<str> = Rc::from(text);
        self.stack.push(Value::Str(text));
        Ok(())
    }

    fn push_obj(&mut self, object: Object) {
        self.objects.push(object);
        self.stack.push(Value::Obj(self.objects.len() - 1));
    }

    fn pop(&mut self) -> Result<Value, TorchZipError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(bad("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| bad("stack underflow"))
    }

    fn pop_str(&mut self) -> Result<String, TorchZipError> {
        match self.pop()? {
            Value::Str(s) => Ok(s.to_string()),
            _ => Err(bad("STACK_GLOBAL expects two strings")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, TorchZipError> {
        let mark = self.marks.pop().ok_or_else(|| bad("no MARK to pop to"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn memo_put(&mut self, index: u32) -> Result<(), TorchZipError> {
        let top = self.stack.last().cloned().ok_or_else(|| bad("empty stack"))?;
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), TorchZipError> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| bad(format!("memo entry {index} is missing")))?;
        self.stack.push(value);
        Ok(())
    }

    /// The object on top of the stack, mutably.
    fn top_object(&mut self) -> Result<&mut Object, TorchZipError> {
        match self.stack.last() {
            Some(Value::Obj(id)) => self.objects.get_mut(*id).ok_or_else(|| bad("bad object")),
            _ => Err(bad("expected a container on the stack")),
        }
    }

    fn dict_mut(&mut self) -> Result<&mut Vec<(Value, Value)>, TorchZipError> {
        match self.top_object()? {
            Object::Dict(pairs) => Ok(pairs),
            _ => Err(bad("SETITEM(S) on something other than a dict")),
        }
    }

    fn list_mut(&mut self) -> Result<&mut Vec<Value>, TorchZipError> {
        match self.top_object()? {
            Object::List(items) => Ok(items),
            _ => Err(bad("APPEND(S) on something other than a list")),
        }
    }

    fn object(&self, value: &Value) -> Option<&Object> {
        match value {
            Value::Obj(id) => self.objects.get(*id),
            _ => None,
        }
    }

    fn tuple(&self, value: &Value) -> Result<&[Value], TorchZipError> {
        match self.object(value) {
            Some(Object::Tuple(items)) => Ok(items),
            _ => Err(bad("expected a tuple")),
        }
    }

    /// BINPERSID: `('storage', torch.<T>Storage, key, location, numel)`.
    fn storage(&self, pid: &Value) -> Result<StorageRef, TorchZipError> {
        let parts = self.tuple(pid)?;
        let [tag, kind, key, _location, numel] = parts else {
            return Err(bad("a persistent id must be a 5-tuple ('storage', type, key, ...)"));
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
            Global::RebuildTensorV2 => {
                let tensor = self.rebuild_tensor(&args)?;
                self.objects.push(Object::Tensor(tensor));
                Ok(Value::Obj(self.objects.len() - 1))
            }
            Global::Storage(_) => Err(bad("a storage type cannot be called")),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    fn rebuild_tensor(&self, args: &[Value]) -> Result<TensorRef, TorchZipError> {
        let [storage, Value::Int(offset), size, stride, _requires_grad, _hooks, ..] = args else {
            return Err(bad("_rebuild_tensor_v2 with unexpected arguments"));
        };
        if args.len() > 7 {
            return Err(bad("_rebuild_tensor_v2 with too many arguments"));
        }
        let Some(Object::Storage(storage)) = self.object(storage) else {
            return Err(bad("_rebuild_tensor_v2 without a storage"));
        };
        let ints = |value: &Value| -> Result<Vec<i64>, TorchZipError> {
            self.tuple(value)?
                .iter()
                .map(|v| match v {
                    Value::Int(i) if *i >= 0 => Ok(*i),
                    _ => Err(bad("tensor sizes and strides must be non-negative integers")),
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
        let state_ok = matches!(state, Value::None)
            || matches!(self.object(state), Some(Object::Dict(_)));
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
        .try_fold(offset, |end, (n, s)| end.checked_add((n - 1).checked_mul(*s)?))?
        .checked_add(1)
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, TorchZipError> {
    if items.len() % 2 != 0 {
        return Err(bad("odd number of items for a dict"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// The accepted globals; anything else is refused, naming it.
fn resolve_global(module: &str, name: &str) -> Result<Global, TorchZipError> {
    let global = match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
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
    fn scalars_strings_and_containers() {
        // {'a': 1, 'b': -5, 'c': 2**40, 'd': 0.5, 'e': None, 'f': True, 'g': [1, 2], 'h': (3,)}
        let data = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94K\x01\
            \x8c\x01bJ\xfb\xff\xff\xff\x8c\x01c\x8a\x06\x00\x00\x00\x00\x00\x01\
            X\x01\x00\x00\x00dG?\xe0\x00\x00\x00\x00\x00\x00\x8c\x01eN\x8c\x01f\x88\
            \x8c\x01g](K\x01M\x02\x00e\x8c\x01hK\x03\x85u.";
        let pickle = unpickle(data).unwrap();
        let pairs = root_pairs(&pickle);
        let values: Vec<&Value> = pairs.iter().map(|(_, v)| v).collect();
        assert_eq!(values[0], &Value::Int(1));
        assert_eq!(values[1], &Value::Int(-5));
        assert_eq!(values[2], &Value::Int(1 << 40));
        assert_eq!(values[3], &Value::Float(0.5));
        assert_eq!(values[4], &Value::None);
        assert_eq!(values[5], &Value::Bool(true));
        assert_eq!(
            pickle.object(values[6]),
            Some(&Object::List(vec![Value::Int(1), Value::Int(2)]))
        );
        assert_eq!(
            pickle.object(values[7]),
            Some(&Object::Tuple(vec![Value::Int(3)]))
        );
        assert_eq!(pairs[0].0, Value::Str("a".into()));
    }

    #[test]
    fn memo_shares_mutable_containers() {
        // l = []; {'x': l, 'y': l} with l.append(7) after memoising.
        let data = b"\x80\x02}(X\x01\x00\x00\x00x]q\x01K\x07aX\x01\x00\x00\x00yh\x01u.";
        let pickle = unpickle(data).unwrap();
        let pairs = root_pairs(&pickle);
        assert_eq!(pairs[0].1, pairs[1].1);
        assert_eq!(
            pickle.object(&pairs[1].1),
            Some(&Object::List(vec![Value::Int(7)]))
        );
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

    #[test]
    fn malformed_programs_give_errors_not_panics() {
        let cases: [&[u8]; 12] = [
            b"",
            b"\x80\x02",
            b"\x80\x01}.",
            b"\x80\x02}s.",
            b"\x80\x02K\x01a.",
            b"\x80\x02h\x05.",
            b"\x80\x02X\xff\xff\xff\xffabc.",
            b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00.",
            b"\x80\x02(K\x01K\x02K\x03d.",
            b"\x80\x02cos\nsystem",
            b"\x80\x02}N\x85b.",
            b"\x80\x02I1\n.",
        ];
        for data in cases {
            assert!(unpickle(data).is_err(), "{data:?} should fail");
        }
        let err = unpickle(b"\x80\x02I1\n.").unwrap_err().to_string();
        assert!(err.contains("unsupported pickle opcode 0x49"), "{err}");
    }

    #[test]
    fn marks_hide_the_stack_below_them() {
        // MARK then TUPLE2 must not reach below the mark... and STOP needs a value.
        assert!(unpickle(b"\x80\x02K\x01(K\x02\x86.").is_err());
        assert!(unpickle(b"\x80\x02(.").is_err());
    }

    #[test]
    fn deep_nesting_and_cycles_are_cheap() {
        // 100k nested tuples and a list that contains itself.
        let mut data = b"\x80\x02)".to_vec();
        data.extend(std::iter::repeat_n(0x85u8, 100_000));
        data.push(b'.');
        assert!(unpickle(&data).is_ok());
        let cyclic = b"\x80\x02]q\x00h\x00a.";
        let pickle = unpickle(cyclic).unwrap();
        assert_eq!(
            pickle.object(&pickle.root),
            Some(&Object::List(vec![Value::Obj(0)]))
        );
    }
}
