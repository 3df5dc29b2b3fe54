//! A minimal, data-only pickle reader for the `data.pkl` of a `torch.save` archive and the
//! consecutive pickles of the legacy (pre-zip) format.
//!
//! Only the opcodes that `torch.save` emits (protocols 2 to 5, and Python 2's byte strings
//! in old checkpoints) are understood; GLOBAL,
//! STACK_GLOBAL, BINPERSID, REDUCE and BUILD are left to [`super::globals`], which accepts only
//! the few globals a state dict needs. Nothing is ever executed. All containers live in one arena addressed by index, so shared and even
//! cyclic references cost nothing and dropping the result never recurses; memory is bounded
//! by the (already size-limited) input, as every opcode adds at most a constant amount.
//! Opcode semantics follow CPython's `Lib/pickletools.py` (PSF licence).

use std::collections::HashMap;
use std::rc::Rc;

use super::TorchZipError;
use super::globals::{Global, StorageRef, TensorRef};

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
    unpickle_from(data, 0).map(|(pickle, _)| pickle)
}

/// Runs the pickle program that starts at byte `start` of `data`; returns what it built and
/// the byte after its STOP, where the next pickle (or the legacy format's storages) begins.
pub(crate) fn unpickle_from(data: &[u8], start: usize) -> Result<(Pickle, usize), TorchZipError> {
    let mut machine = Machine {
        input: data,
        pos: start,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objects: Vec::new(),
    };
    let root = machine.run()?;
    let end = machine.pos;
    let pickle = Pickle {
        objects: machine.objects,
        root,
    };
    Ok((pickle, end))
}

/// The pickle machine: input, stack, marks, memo and the arena of objects.
pub(super) struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    pub(super) stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    pub(super) objects: Vec<Object>,
}

pub(super) fn bad(reason: impl Into<String>) -> TorchZipError {
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
                Ok(())
            }
            0x95 => self.take(8).map(|_| ()), // FRAME: a length hint only.
            b'X' | 0x8c | 0x8d | b'U' | b'T' | b'J' | b'K' | b'M' | 0x8a | b'G' | b'N' | 0x88
            | 0x89 => {
                let value = self.scalar(op)?;
                self.stack.push(value);
                Ok(())
            }
            b'q' | b'r' | 0x94 | b'h' | b'j' => self.memo_op(op),
            b'c' | 0x93 | b'Q' | b'R' | b'b' => self.torch_op(op),
            _ => self.container_op(op),
        }
    }

    /// Strings, integers, floats, None and booleans.
    fn scalar(&mut self, op: u8) -> Result<Value, TorchZipError> {
        Ok(match op {
            b'X' => {
                let n = self.u32()? as usize;
                self.string(n)?
            }
            // SHORT_BINUNICODE, and Python 2's SHORT_BINSTRING (read as UTF-8, like torch.load).
            0x8c | b'U' => {
                let n = usize::from(self.take(1)?[0]);
                self.string(n)?
            }
            // Python 2's BINSTRING: a 4-byte length (signed in CPython; negative is refused).
            b'T' => {
                let n = i32::from_le_bytes(self.array()?);
                let n = usize::try_from(n).map_err(|_| bad("negative string length"))?;
                self.string(n)?
            }
            0x8d => {
                let n = usize::try_from(self.u64()?).map_err(|_| bad("string too long"))?;
                self.string(n)?
            }
            b'J' => Value::Int(i32::from_le_bytes(self.array()?).into()),
            b'K' => Value::Int(self.take(1)?[0].into()),
            b'M' => Value::Int(u16::from_le_bytes(self.array()?).into()),
            0x8a => Value::Int(self.long1()?),
            b'G' => Value::Float(f64::from_be_bytes(self.array()?)),
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            _ => Value::None,
        })
    }

    /// BINPUT, LONG_BINPUT, MEMOIZE, BINGET and LONG_BINGET.
    fn memo_op(&mut self, op: u8) -> Result<(), TorchZipError> {
        let index = match op {
            b'q' | b'h' => self.take(1)?[0].into(),
            b'r' | b'j' => self.u32()?,
            _ => u32::try_from(self.memo.len()).map_err(|_| bad("memo too large"))?,
        };
        if matches!(op, b'h' | b'j') {
            let value = self
                .memo
                .get(&index)
                .cloned()
                .ok_or_else(|| bad(format!("memo entry {index} is missing")))?;
            self.stack.push(value);
        } else {
            let top = self.peek()?;
            self.memo.insert(index, top);
        }
        Ok(())
    }

    /// Marks, tuples, lists, dicts and the stack's POP / POP_MARK / DUP.
    fn container_op(&mut self, op: u8) -> Result<(), TorchZipError> {
        match op {
            b'(' => self.marks.push(self.stack.len()),
            b'}' => self.push_obj(Object::Dict(Vec::new())),
            b']' => self.push_obj(Object::List(Vec::new())),
            b')' => self.push_obj(Object::Tuple(Vec::new())),
            b'd' => {
                let pairs = pairs(self.pop_mark()?)?;
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
                let items = self.pop_n(usize::from(op - 0x84))?;
                self.push_obj(Object::Tuple(items));
            }
            b's' => {
                let pair = self.pop_n(2)?;
                self.dict_mut()?.extend(pairs(pair)?);
            }
            b'u' => {
                let pairs = pairs(self.pop_mark()?)?;
                self.dict_mut()?.extend(pairs);
            }
            b'a' => {
                let value = self.pop()?;
                self.list_mut()?.push(value);
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.list_mut()?.extend(items);
            }
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.peek()?;
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
    pub(super) fn line(&mut self) -> Result<String, TorchZipError> {
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

    fn string(&mut self, n: usize) -> Result<Value, TorchZipError> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| bad("string is not UTF-8"))?;
        Ok(Value::Str(Rc::from(text)))
    }

    pub(super) fn push_obj(&mut self, object: Object) {
        self.objects.push(object);
        self.stack.push(Value::Obj(self.objects.len() - 1));
    }

    pub(super) fn pop(&mut self) -> Result<Value, TorchZipError> {
        let mut top = self.pop_n(1)?;
        top.pop().ok_or_else(|| bad("stack underflow"))
    }

    pub(super) fn pop_str(&mut self) -> Result<String, TorchZipError> {
        match self.pop()? {
            Value::Str(s) => Ok(s.to_string()),
            _ => Err(bad("STACK_GLOBAL expects two strings")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, TorchZipError> {
        let mark = self.marks.pop().ok_or_else(|| bad("no MARK to pop to"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn peek(&self) -> Result<Value, TorchZipError> {
        self.stack.last().cloned().ok_or_else(|| bad("empty stack"))
    }

    /// The top `n` values, none of them below the innermost mark.
    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, TorchZipError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        let at = self
            .stack
            .len()
            .checked_sub(n)
            .filter(|at| *at >= floor)
            .ok_or_else(|| bad("stack underflow"))?;
        Ok(self.stack.split_off(at))
    }

    /// The object on top of the stack, mutably.
    pub(super) fn top_object(&mut self) -> Result<&mut Object, TorchZipError> {
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

    pub(super) fn object(&self, value: &Value) -> Option<&Object> {
        match value {
            Value::Obj(id) => self.objects.get(*id),
            _ => None,
        }
    }

    pub(super) fn tuple(&self, value: &Value) -> Result<&[Value], TorchZipError> {
        match self.object(value) {
            Some(Object::Tuple(items)) => Ok(items),
            _ => Err(bad("expected a tuple")),
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, TorchZipError> {
    if !items.len().is_multiple_of(2) {
        return Err(bad("odd number of items for a dict"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn python2_byte_strings_read_as_text() {
        // Python 2's {'ab': 1, 'c': 2}: SHORT_BINSTRING and BINSTRING keys.
        let data = b"\x80\x02}(U\x02abK\x01T\x01\x00\x00\x00cK\x02u.";
        let pickle = unpickle(data).unwrap();
        let pairs = root_pairs(&pickle);
        assert_eq!(pairs[0], (Value::Str("ab".into()), Value::Int(1)));
        assert_eq!(pairs[1], (Value::Str("c".into()), Value::Int(2)));
        assert!(unpickle(b"\x80\x02T\xff\xff\xff\xff.").is_err());
    }

    #[test]
    fn consecutive_pickles_are_read_one_after_another() {
        let data = b"\x80\x02K\x05.\x80\x02]K\x07a.";
        let (first, end) = unpickle_from(data, 0).unwrap();
        assert_eq!((first.root, end), (Value::Int(5), 5));
        let (second, end) = unpickle_from(data, end).unwrap();
        assert_eq!(end, data.len());
        assert_eq!(
            second.object(&second.root),
            Some(&Object::List(vec![Value::Int(7)]))
        );
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
