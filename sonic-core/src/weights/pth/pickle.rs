//! A pickle interpreter restricted to what `torch.save` emits for state dicts and
//! `torch.jit.save` for TorchScript modules.
//!
//! It builds a passive object graph: containers live in a [`Heap`] and are referred to by id,
//! so memo references share objects the way Python does, cycles cannot leak, and cloning a
//! value off the memo costs nothing no matter how often a hostile file asks for it.

use std::collections::HashMap;
use std::rc::Rc;

use super::error::{printable, PthError};
use super::globals::{self, Global, Refusal};
use super::rebuild::{self, StorageRef, TensorRef};

/// Keeps a crafted `LONG_BINPUT` stream from growing the memo without bound.
const MAX_MEMO_ENTRIES: usize = 1 << 22;
/// Heap memory allowed per byte of pickle. Real state dicts use 5 to 20; the cap stops a
/// short pickle from re-instantiating memoized arguments millions of times.
const HEAP_BYTES_PER_PICKLE_BYTE: usize = 64;
const HEAP_BASE_BYTES: usize = 64 << 20;
const MAX_PROTOCOL: u8 = 5;

mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_LIST: u8 = b']';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const NONE: u8 = b'N';
    pub const GLOBAL: u8 = b'c';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const NEWOBJ: u8 = 0x81;
    pub const BUILD: u8 = b'b';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const MEMOIZE: u8 = 0x94;
}

/// Handle to an object in the [`Heap`]; only the heap hands them out, so they are always valid.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ObjId(usize);

/// A pickle value. Scalars whose value this reader never needs keep only their kind.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    None,
    Bool,
    Float,
    /// An integer outside the `i64` range.
    BigInt,
    Int(i64),
    Str(Rc<str>),
    Global(Global),
    Obj(ObjId),
}

#[derive(Debug)]
pub(crate) enum Obj {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Entries in insertion order; duplicate keys are resolved when the dict is flattened.
    Dict(Vec<(Value, Value)>),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// A TorchScript module; `state` is the attribute dict BUILD gave it.
    Object {
        state: Option<Value>,
    },
}

pub(crate) struct Heap {
    objs: Vec<Obj>,
    bytes_left: usize,
}

impl Heap {
    fn get(&self, id: ObjId) -> &Obj {
        &self.objs[id.0]
    }

    fn get_mut(&mut self, id: ObjId) -> &mut Obj {
        &mut self.objs[id.0]
    }

    fn for_pickle(pickle_len: usize) -> Self {
        Self {
            objs: Vec::new(),
            bytes_left: pickle_len
                .saturating_mul(HEAP_BYTES_PER_PICKLE_BYTE)
                .saturating_add(HEAP_BASE_BYTES),
        }
    }

    pub(crate) fn alloc(&mut self, obj: Obj, file: &str) -> Result<Value, PthError> {
        let payload = match &obj {
            Obj::Tuple(items) | Obj::List(items) => items.len() * size_of::<Value>(),
            Obj::Dict(entries) => entries.len() * 2 * size_of::<Value>(),
            Obj::Storage(_) | Obj::Object { .. } => 0,
            Obj::Tensor(t) => (t.shape.len() + t.strides.len()) * size_of::<usize>(),
        };
        let cost = size_of::<Obj>() + payload;
        self.bytes_left = self.bytes_left.checked_sub(cost).ok_or_else(|| {
            PthError::unsupported(
                file,
                "data.pkl builds far more objects than a state dict needs",
            )
        })?;
        self.objs.push(obj);
        Ok(Value::Obj(ObjId(self.objs.len() - 1)))
    }

    /// The object a value refers to, if it is a heap object at all.
    pub(crate) fn deref(&self, value: &Value) -> Option<&Obj> {
        match value {
            Value::Obj(id) => Some(self.get(*id)),
            _ => None,
        }
    }

    /// A short noun for error messages.
    pub(crate) fn kind(&self, value: &Value) -> &'static str {
        match value {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Float => "float",
            Value::BigInt | Value::Int(_) => "int",
            Value::Str(_) => "str",
            Value::Global(_) => "class or function",
            Value::Obj(id) => match self.get(*id) {
                Obj::Tuple(_) => "tuple",
                Obj::List(_) => "list",
                Obj::Dict(_) => "dict",
                Obj::Storage(_) => "storage",
                Obj::Tensor(_) => "tensor",
                Obj::Object { .. } => "TorchScript object",
            },
        }
    }
}

/// The object graph a pickle describes, and its root.
pub(crate) struct Unpickled {
    pub(crate) heap: Heap,
    pub(crate) root: Value,
}

pub(crate) fn unpickle(data: &[u8], file: &str) -> Result<Unpickled, PthError> {
    Machine {
        file,
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        heap: Heap::for_pickle(data.len()),
    }
    .run()
}

struct Machine<'a> {
    file: &'a str,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack heights at each open MARK; nothing below the innermost one may be popped.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    heap: Heap,
}

impl<'a> Machine<'a> {
    fn run(mut self) -> Result<Unpickled, PthError> {
        loop {
            let at = self.pos;
            let code = self.byte()?;
            match code {
                op::PROTO => {
                    let version = self.byte()?;
                    if version > MAX_PROTOCOL {
                        return Err(self.unsupported(format!("pickle protocol {version}")));
                    }
                }
                // Frames only group opcodes for buffered readers; the whole pickle is in memory.
                op::FRAME => {
                    self.take(8)?;
                }
                op::STOP => {
                    let root = self.pop()?;
                    return Ok(Unpickled {
                        heap: self.heap,
                        root,
                    });
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::EMPTY_DICT => self.push_new(Obj::Dict(Vec::new()))?,
                op::EMPTY_LIST => self.push_new(Obj::List(Vec::new()))?,
                op::EMPTY_TUPLE => self.push_new(Obj::Tuple(Vec::new()))?,
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_new(Obj::Tuple(items))?;
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let len = usize::from(code - op::TUPLE1) + 1;
                    let mut items = Vec::with_capacity(len);
                    for _ in 0..len {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push_new(Obj::Tuple(items))?;
                }
                op::BINUNICODE => {
                    let len = u32::from_le_bytes(self.array()?);
                    self.push_str(len as usize)?;
                }
                op::SHORT_BINUNICODE => {
                    let len = usize::from(self.byte()?);
                    self.push_str(len)?;
                }
                op::BINUNICODE8 => {
                    // A length beyond the address space certainly exceeds what is left.
                    let len = usize::try_from(u64::from_le_bytes(self.array()?));
                    let len = len.unwrap_or(usize::MAX);
                    self.push_str(len)?;
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.stack.push(Value::Int(v.into()));
                }
                op::BININT1 => {
                    let v = self.byte()?;
                    self.stack.push(Value::Int(v.into()));
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.stack.push(Value::Int(v.into()));
                }
                op::LONG1 => {
                    let len = usize::from(self.byte()?);
                    let bytes = self.take(len)?;
                    self.stack.push(long_from_le(bytes));
                }
                op::BINFLOAT => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                op::NEWTRUE | op::NEWFALSE => self.stack.push(Value::Bool),
                op::NONE => self.stack.push(Value::None),
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let global = self.resolve(&module, &name)?;
                    self.stack.push(Value::Global(global));
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        return Err(self.malformed("STACK_GLOBAL operands are not strings"));
                    };
                    let global = self.resolve(module, name)?;
                    self.stack.push(Value::Global(global));
                }
                op::BINPERSID => {
                    let pid = self.pop()?;
                    let storage = rebuild::persistent_storage(&self.heap, &pid, self.file)?;
                    self.push_new(Obj::Storage(storage))?;
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let result = rebuild::call(&mut self.heap, &callable, &args, self.file)?;
                    self.stack.push(result);
                }
                op::NEWOBJ => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let result = rebuild::instantiate(&mut self.heap, &class, &args, self.file)?;
                    self.stack.push(result);
                }
                // BUILD sets instance attributes. A TorchScript module keeps them: they hold
                // its parameters and submodules. Anything else (an OrderedDict's `_metadata`)
                // has none that matter for reading tensors.
                op::BUILD => {
                    let state = self.pop()?;
                    if let Value::Obj(id) = self.top()? {
                        if let Obj::Object { state: slot } = self.heap.get_mut(*id) {
                            *slot = Some(state);
                        }
                    }
                }
                op::SETITEM => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_dict(vec![key, value])?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    self.extend_dict(items)?;
                }
                op::APPEND => {
                    let item = self.pop()?;
                    self.extend_list(vec![item])?;
                }
                op::APPENDS => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                op::BINPUT => {
                    let index = self.byte()?.into();
                    self.memo_put(index)?;
                }
                op::LONG_BINPUT => {
                    let index = u32::from_le_bytes(self.array()?);
                    self.memo_put(index)?;
                }
                op::MEMOIZE => {
                    let index = u32::try_from(self.memo.len())
                        .map_err(|_| self.malformed("memo overflow"))?;
                    self.memo_put(index)?;
                }
                op::BINGET => {
                    let index = self.byte()?.into();
                    self.memo_get(index)?;
                }
                op::LONG_BINGET => {
                    let index = u32::from_le_bytes(self.array()?);
                    self.memo_get(index)?;
                }
                other => {
                    return Err(PthError::UnknownOpcode {
                        file: self.file.to_owned(),
                        opcode: describe_opcode(other),
                        offset: at,
                    })
                }
            }
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], PthError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| {
                PthError::truncated(self.file, "data.pkl ends before its STOP opcode")
            })?;
        let data: &'a [u8] = self.data;
        let start = std::mem::replace(&mut self.pos, end);
        Ok(&data[start..end])
    }

    fn byte(&mut self) -> Result<u8, PthError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PthError> {
        let mut raw = [0; N];
        raw.copy_from_slice(self.take(N)?);
        Ok(raw)
    }

    /// A newline-terminated argument of the text-mode GLOBAL opcode.
    fn line(&mut self) -> Result<String, PthError> {
        let rest = &self.data[self.pos..];
        let len = rest.iter().position(|&b| b == b'\n').ok_or_else(|| {
            PthError::truncated(self.file, "data.pkl ends inside a GLOBAL opcode")
        })?;
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.pos += len + 1;
        Ok(text)
    }

    fn push_str(&mut self, len: usize) -> Result<(), PthError> {
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| PthError::malformed(self.file, "string in data.pkl is not UTF-8"))?;
        self.stack.push(Value::Str(text.into()));
        Ok(())
    }

    fn push_new(&mut self, obj: Obj) -> Result<(), PthError> {
        let value = self.heap.alloc(obj, self.file)?;
        self.stack.push(value);
        Ok(())
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value, PthError> {
        if self.stack.len() > self.floor() {
            if let Some(value) = self.stack.pop() {
                return Ok(value);
            }
        }
        Err(self.malformed("pickle stack underflow"))
    }

    fn top(&self) -> Result<&Value, PthError> {
        match self.stack.last() {
            Some(value) if self.stack.len() > self.floor() => Ok(value),
            _ => Err(self.malformed("pickle stack underflow")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PthError> {
        match self.marks.pop() {
            Some(height) if height <= self.stack.len() => Ok(self.stack.split_off(height)),
            _ => Err(self.malformed("pickle collects items without a MARK")),
        }
    }

    fn extend_dict(&mut self, items: Vec<Value>) -> Result<(), PthError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("SETITEMS with a key but no value"));
        }
        let target = self.top()?.clone();
        let Value::Obj(id) = target else {
            return Err(self.malformed("SETITEM on something that is not a dict"));
        };
        let Obj::Dict(entries) = self.heap.get_mut(id) else {
            return Err(self.malformed("SETITEM on something that is not a dict"));
        };
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            entries.push((key, value));
        }
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<(), PthError> {
        let target = self.top()?.clone();
        let Value::Obj(id) = target else {
            return Err(self.malformed("APPEND on something that is not a list"));
        };
        let Obj::List(list) = self.heap.get_mut(id) else {
            return Err(self.malformed("APPEND on something that is not a list"));
        };
        list.extend(items);
        Ok(())
    }

    fn memo_put(&mut self, index: u32) -> Result<(), PthError> {
        let value = self.top()?.clone();
        if self.memo.len() >= MAX_MEMO_ENTRIES && !self.memo.contains_key(&index) {
            return Err(self.unsupported(format!("more than {MAX_MEMO_ENTRIES} memo entries")));
        }
        self.memo.insert(index, value);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), PthError> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.malformed(format!("memo index {index} was never stored")))?;
        self.stack.push(value);
        Ok(())
    }

    fn resolve(&self, module: &str, name: &str) -> Result<Global, PthError> {
        globals::resolve(module, name).map_err(|refusal| {
            let global = printable(&format!("{module}.{name}"));
            match refusal {
                Refusal::Forbidden => PthError::ForbiddenGlobal {
                    file: self.file.to_owned(),
                    global,
                },
                Refusal::UnsupportedTensor => self.unsupported(format!(
                    "tensors built with {global}; only float, integer and bool tensors are read"
                )),
            }
        })
    }

    fn malformed(&self, what: impl Into<String>) -> PthError {
        PthError::malformed(self.file, what)
    }

    fn unsupported(&self, what: impl Into<String>) -> PthError {
        PthError::unsupported(self.file, what)
    }
}

/// LONG1 payloads are little-endian two's complement of any width.
fn long_from_le(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::BigInt;
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut raw = [if negative { 0xff } else { 0 }; 8];
    raw[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(raw))
}

fn describe_opcode(code: u8) -> String {
    if code.is_ascii_graphic() {
        format!("0x{code:02x} ('{}')", char::from(code))
    } else {
        format!("0x{code:02x}")
    }
}
