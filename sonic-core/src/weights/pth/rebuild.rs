//! Symbolic versions of the callables the allow-list admits.
//!
//! Where Python would call `_rebuild_tensor_v2` or `OrderedDict`, these functions check the
//! arguments and record what the call would have produced. Every size, offset and stride is
//! validated here, with checked arithmetic, so later stages can trust them.

use std::rc::Rc;

use safetensors::Dtype;

use super::error::{printable, PthError};
use super::globals::Global;
use super::pickle::{Heap, Obj, Value};

/// torch itself refuses more dimensions than this; it also keeps error messages short.
const MAX_DIMS: usize = 64;

/// A storage the pickle refers to by persistent id; its bytes live in the zip at `data/<key>`.
#[derive(Clone, Debug)]
pub(crate) struct StorageRef {
    pub(crate) dtype: Dtype,
    pub(crate) key: Rc<str>,
    /// Element count the pickle declares; the zip entry must hold at least this many.
    pub(crate) numel: usize,
}

impl StorageRef {
    pub(crate) fn byte_len(&self) -> usize {
        // Cannot overflow: checked when the persistent id was read.
        self.numel * element_size(self.dtype)
    }
}

/// A strided view into a storage, validated to stay inside the storage's declared length.
#[derive(Clone, Debug)]
pub(crate) struct TensorRef {
    pub(crate) storage: StorageRef,
    pub(crate) offset: usize,
    pub(crate) shape: Vec<usize>,
    pub(crate) strides: Vec<usize>,
}

impl TensorRef {
    pub(crate) fn numel(&self) -> usize {
        // Cannot overflow: checked when the tensor was rebuilt.
        self.shape.iter().product()
    }
}

pub(crate) fn element_size(dtype: Dtype) -> usize {
    dtype.bitsize() / 8
}

/// Interprets a `BINPERSID` id: torch writes `('storage', StorageType, key, location, numel)`.
pub(crate) fn persistent_storage(
    heap: &Heap,
    pid: &Value,
    file: &str,
) -> Result<StorageRef, PthError> {
    let Some(Obj::Tuple(fields)) = heap.deref(pid) else {
        return Err(PthError::malformed(
            file,
            format!("persistent id is a {}, not a tuple", heap.kind(pid)),
        ));
    };
    match fields.first() {
        Some(Value::Str(tag)) if &**tag == "storage" => {}
        Some(Value::Str(tag)) => {
            return Err(PthError::unsupported(
                file,
                format!("persistent id of kind {:?}", printable(tag)),
            ))
        }
        _ => return Err(PthError::malformed(file, "persistent id without a kind")),
    }
    let [_, Value::Global(Global::StorageType(dtype)), Value::Str(key), _, numel] = &fields[..]
    else {
        return Err(PthError::malformed(
            file,
            "persistent id is not ('storage', type, key, location, numel)",
        ));
    };
    let numel = non_negative(numel, "storage size", file)?;
    if numel.checked_mul(element_size(*dtype)).is_none() {
        return Err(PthError::malformed(
            file,
            format!("storage {} declares {numel} elements", printable(key)),
        ));
    }
    Ok(StorageRef {
        dtype: *dtype,
        key: key.clone(),
        numel,
    })
}

/// Evaluates `REDUCE`: `callable(*args)`.
pub(crate) fn call(
    heap: &mut Heap,
    callable: &Value,
    args: &Value,
    file: &str,
) -> Result<Value, PthError> {
    let Value::Global(global) = callable else {
        return Err(PthError::malformed(
            file,
            format!("REDUCE calls a {}", heap.kind(callable)),
        ));
    };
    let Some(Obj::Tuple(args)) = heap.deref(args) else {
        return Err(PthError::malformed(
            file,
            format!("REDUCE arguments are a {}, not a tuple", heap.kind(args)),
        ));
    };
    let made = match global {
        // Pickles fill dicts through SETITEMS, so torch only ever calls `OrderedDict()`;
        // copying argument lists would also let a short pickle duplicate big lists at will.
        Global::OrderedDict if args.is_empty() => Obj::Dict(Vec::new()),
        Global::OrderedDict => {
            return Err(PthError::unsupported(
                file,
                "OrderedDict built from constructor arguments",
            ))
        }
        Global::RebuildTensorV2 => Obj::Tensor(rebuild_tensor(heap, args, file)?),
        // A Parameter is its data tensor plus autograd flags, which a state dict does not need.
        Global::RebuildParameter | Global::RebuildParameterWithState => {
            return match args.first() {
                Some(data) if matches!(heap.deref(data), Some(Obj::Tensor(_))) => Ok(data.clone()),
                _ => Err(PthError::malformed(
                    file,
                    "_rebuild_parameter without a tensor argument",
                )),
            }
        }
        Global::ScriptTypeTag => {
            return args.first().cloned().ok_or_else(|| {
                PthError::malformed(file, "a torch.jit._pickle helper without an argument")
            })
        }
        Global::StorageType(_) | Global::ScriptClass => {
            return Err(PthError::malformed(
                file,
                "a class is called like a function",
            ))
        }
    };
    heap.alloc(made, file)
}

/// Evaluates `NEWOBJ`: `class.__new__(class, *args)`.
pub(crate) fn instantiate(
    heap: &mut Heap,
    class: &Value,
    args: &Value,
    file: &str,
) -> Result<Value, PthError> {
    match (class, heap.deref(args)) {
        // `OrderedDict.__new__` ignores its arguments; items arrive through SETITEMS.
        (Value::Global(Global::OrderedDict), Some(Obj::Tuple(_))) => {
            heap.alloc(Obj::Dict(Vec::new()), file)
        }
        // A TorchScript module's attributes arrive afterwards as the state of BUILD.
        (Value::Global(Global::ScriptClass), Some(Obj::Tuple(_))) => {
            heap.alloc(Obj::Object { state: None }, file)
        }
        (Value::Global(_), _) => Err(PthError::unsupported(
            file,
            "NEWOBJ of a class other than OrderedDict or a TorchScript module",
        )),
        _ => Err(PthError::malformed(
            file,
            format!("NEWOBJ instantiates a {}", heap.kind(class)),
        )),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`
fn rebuild_tensor(heap: &Heap, args: &[Value], file: &str) -> Result<TensorRef, PthError> {
    let (storage, offset, size, stride) = match args {
        [storage, offset, size, stride, _requires_grad, _hooks]
        | [storage, offset, size, stride, _requires_grad, _hooks, _] => {
            (storage, offset, size, stride)
        }
        _ => {
            return Err(PthError::malformed(
                file,
                format!(
                    "_rebuild_tensor_v2 takes 6 or 7 arguments, got {}",
                    args.len()
                ),
            ))
        }
    };
    let Some(Obj::Storage(storage)) = heap.deref(storage) else {
        return Err(PthError::malformed(
            file,
            format!("tensor built on a {}, not a storage", heap.kind(storage)),
        ));
    };
    let offset = non_negative(offset, "storage offset", file)?;
    let shape = dims(heap, size, "size", file)?;
    let strides = dims(heap, stride, "stride", file)?;
    if shape.len() != strides.len() {
        return Err(PthError::malformed(
            file,
            format!(
                "tensor has {} sizes but {} strides",
                shape.len(),
                strides.len()
            ),
        ));
    }

    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let fits = numel.and_then(|n| n.checked_mul(element_size(storage.dtype)));
    let Some(numel) = numel.filter(|_| fits.is_some()) else {
        return Err(PthError::malformed(
            file,
            format!("tensor shape {shape:?} overflows the address space"),
        ));
    };

    if numel > 0 {
        // The farthest element the view touches must lie inside the storage.
        let last = shape
            .iter()
            .zip(&strides)
            .try_fold(offset, |end, (&d, &s)| {
                end.checked_add((d - 1).checked_mul(s)?)
            });
        if last.is_none_or(|last| last >= storage.numel) {
            return Err(PthError::malformed(
                file,
                format!(
                    "tensor view (offset {offset}, shape {shape:?}, stride {strides:?}) \
                     reaches past the {} elements of storage {}",
                    storage.numel,
                    printable(&storage.key)
                ),
            ));
        }
    }

    Ok(TensorRef {
        storage: storage.clone(),
        offset,
        shape,
        strides,
    })
}

fn non_negative(value: &Value, what: &str, file: &str) -> Result<usize, PthError> {
    match value {
        Value::Int(n) => usize::try_from(*n)
            .map_err(|_| PthError::malformed(file, format!("{what} {n} is negative"))),
        _ => Err(PthError::malformed(
            file,
            format!("{what} is not a machine-sized integer"),
        )),
    }
}

fn dims(heap: &Heap, value: &Value, what: &str, file: &str) -> Result<Vec<usize>, PthError> {
    let Some(Obj::Tuple(items)) = heap.deref(value) else {
        return Err(PthError::malformed(
            file,
            format!("tensor {what} is a {}, not a tuple", heap.kind(value)),
        ));
    };
    if items.len() > MAX_DIMS {
        return Err(PthError::unsupported(
            file,
            format!("tensor with {} dimensions", items.len()),
        ));
    }
    items
        .iter()
        .map(|item| non_negative(item, what, file))
        .collect()
}
