//! The allow-list of Python globals a checkpoint may name.
//!
//! A pickle can import any callable and call it; that is how malicious checkpoints run code.
//! Only the handful of names torch writes for tensor state dicts and TorchScript archives
//! resolve here, each to a fixed symbolic meaning (see `rebuild`); nothing is ever looked up
//! or called.

use safetensors::Dtype;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    /// A `torch.*Storage` class, which only identifies the element type of a storage.
    StorageType(Dtype),
    /// A TorchScript module class (`__torch__.…`): instantiated as a passive attribute bag
    /// whose state BUILD sets; its methods live in the archive's `code/` and are never read.
    ScriptClass,
    /// A `torch.jit._pickle` helper (`build_intlist`, `restore_type_tag`, …): each returns its
    /// first argument, tagged with a type this reader has no use for.
    ScriptTypeTag,
}

pub(crate) enum Refusal {
    /// A name outside the allow-list: possibly an attempt to run code.
    Forbidden,
    /// A torch tensor flavour this reader does not handle: an element type without a storage
    /// class here (complex, quantized, uint16, float8) or a sparse or quantized rebuild.
    UnsupportedTensor,
}

/// The `torch.jit._pickle` helpers TorchScript writes around typed attributes.
const SCRIPT_TYPE_TAGS: &[&str] = &[
    "build_intlist",
    "build_doublelist",
    "build_boollist",
    "build_tensorlist",
    "restore_type_tag",
];

pub(crate) fn resolve(module: &str, name: &str) -> Result<Global, Refusal> {
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch._utils", "_rebuild_parameter_with_state") => Ok(Global::RebuildParameterWithState),
        ("torch._utils", rebuild) if rebuild.starts_with("_rebuild_") => {
            Err(Refusal::UnsupportedTensor)
        }
        (module, _) if module == "__torch__" || module.starts_with("__torch__.") => {
            Ok(Global::ScriptClass)
        }
        ("torch.jit._pickle", tag) if SCRIPT_TYPE_TAGS.contains(&tag) => Ok(Global::ScriptTypeTag),
        ("torch", storage) => match storage_dtype(storage) {
            Some(dtype) => Ok(Global::StorageType(dtype)),
            None if storage.ends_with("Storage") => Err(Refusal::UnsupportedTensor),
            None => Err(Refusal::Forbidden),
        },
        _ => Err(Refusal::Forbidden),
    }
}

fn storage_dtype(class: &str) -> Option<Dtype> {
    Some(match class {
        "FloatStorage" => Dtype::F32,
        "HalfStorage" => Dtype::F16,
        "BFloat16Storage" => Dtype::BF16,
        "DoubleStorage" => Dtype::F64,
        "LongStorage" => Dtype::I64,
        "IntStorage" => Dtype::I32,
        "ShortStorage" => Dtype::I16,
        "CharStorage" => Dtype::I8,
        "ByteStorage" => Dtype::U8,
        "BoolStorage" => Dtype::BOOL,
        _ => return None,
    })
}
