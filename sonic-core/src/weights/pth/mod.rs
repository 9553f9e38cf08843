//! Reads PyTorch `.pth` checkpoints (the zip format `torch.save` has written since torch 1.6)
//! and TorchScript archives (`torch.jit.save`) without running any of the Python code a
//! pickle can carry.
//!
//! # Format
//!
//! A checkpoint is a zip archive whose entries sit in one top-level folder (`archive/`, or
//! the file stem for some torch versions):
//!
//! * `data.pkl` — a pickle (protocol 2) describing the saved object, usually a possibly nested
//!   dict of tensors. Each tensor is pickled as a call
//!   `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`, and each storage as
//!   a persistent id `('storage', torch.FloatStorage, key, location, numel)`.
//! * `data/<key>` — the raw little-endian bytes of one storage. Several tensors may view the
//!   same storage, at different offsets and with arbitrary strides.
//! * `byteorder` — `little` or `big`; absent in files from older versions, which are little.
//!
//! A TorchScript archive has the same records plus `code/` (the modules' TorchScript source)
//! and `constants.pkl`. Its `data.pkl` pickles the module tree: each module is an instance of
//! a `__torch__.…` class whose attributes (parameters, buffers, submodules, typed lists
//! wrapped in `torch.jit._pickle` helpers) arrive as the state of a BUILD. Attributes are
//! walked like dict entries, so tensors get their `state_dict()` names; tensor attributes
//! that are neither parameters nor buffers come along too, since telling them apart would
//! mean reading the code.
//!
//! # Safety rules
//!
//! Unpickling in Python imports whatever globals the pickle names and calls them, which lets a
//! checkpoint run arbitrary code. Here the pickle is interpreted as data:
//!
//! * only a fixed allow-list of globals may be named (`collections.OrderedDict`, torch's
//!   tensor and parameter rebuild helpers and its storage classes, TorchScript's `__torch__`
//!   classes and `torch.jit._pickle` type tags); any other name, such as `os.system` or
//!   `builtins.eval`, is refused with [`PthError::ForbiddenGlobal`];
//! * nothing is ever called: `REDUCE` on an allowed helper records the tensor it describes,
//!   and a TorchScript class only ever becomes a passive bag of attributes;
//! * every length, index, shape and stride from the file is checked, with overflow-checked
//!   arithmetic, against the bytes actually present; memo, object graph, names and tensor
//!   data all have allocation caps proportional to the input, so a hostile file yields an
//!   error rather than a panic or an enormous allocation.

mod archive;
mod budget;
mod error;
mod gather;
mod globals;
mod pickle;
mod rebuild;
mod state_dict;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;
use std::rc::Rc;

pub use error::PthError;

use archive::Archive;
use budget::Budget;
use error::printable;
use rebuild::{element_size, TensorRef};

/// One tensor read from a checkpoint, contiguous, little-endian bytes, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct PthTensor {
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads every tensor of a torch.save'd state dict (or a dict nesting one) or of a TorchScript
/// module, keys flattened with '.' in file order. A top-level dict whose only entry is a dict
/// under "state_dict", "model" or "module" is unwrapped.
pub fn read_pth(path: &Path) -> Result<Vec<(String, PthTensor)>, PthError> {
    let name = path.display().to_string();
    let io_error = |error| PthError::Io {
        file: name.clone(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    if file.metadata().map_err(io_error)?.len() == 0 {
        return read_pth_bytes(&[], &name);
    }
    // SAFETY: the mapping is read-only and lives only for this call. As with any mapped
    // weights file, another process truncating the checkpoint meanwhile would fault; that
    // is preferable to holding a second copy of a multi-gigabyte file in memory.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error)?;
    read_pth_bytes(&map, &name)
}

/// Same as [`read_pth`], from bytes already in memory (`name` is only used in error messages).
pub fn read_pth_bytes(bytes: &[u8], name: &str) -> Result<Vec<(String, PthTensor)>, PthError> {
    let mut budget = Budget::for_input(bytes.len());
    let mut archive = Archive::open(bytes, name)?;
    archive.check_byteorder(&mut budget)?;
    let pickle = archive.pickle(&mut budget)?;
    let unpickled = pickle::unpickle(&pickle, name)?;
    let named = state_dict::named_tensors(&unpickled, pickle.len(), name)?;

    // Storages are read on first use, and once even when many tensors view them.
    let mut storages: HashMap<Rc<str>, Cow<'_, [u8]>> = HashMap::new();
    let mut tensors = Vec::with_capacity(named.len());
    for (key, tensor) in named {
        let storage = match storages.entry(tensor.storage.key.clone()) {
            Entry::Occupied(cached) => cached.into_mut(),
            Entry::Vacant(slot) => slot.insert(archive.storage(&tensor.storage.key, &mut budget)?),
        };
        let data = materialize(storage, &tensor, &key, &mut budget, name)?;
        tensors.push((
            key,
            PthTensor {
                dtype: tensor.storage.dtype,
                shape: tensor.shape,
                data,
            },
        ));
    }
    Ok(tensors)
}

fn materialize(
    record: &[u8],
    tensor: &TensorRef,
    key: &str,
    budget: &mut Budget,
    file: &str,
) -> Result<Vec<u8>, PthError> {
    let storage = &tensor.storage;
    let needed = storage.byte_len();
    let Some(storage_bytes) = record.get(..needed) else {
        return Err(PthError::truncated(
            file,
            format!(
                "storage {} holds {} bytes but declares {needed}",
                printable(&storage.key),
                record.len()
            ),
        ));
    };
    let elem = element_size(storage.dtype);
    budget.charge(
        tensor.numel() * elem,
        || format!("tensor {}", printable(key)),
        file,
    )?;
    gather::contiguous(
        storage_bytes,
        elem,
        tensor.offset,
        &tensor.shape,
        &tensor.strides,
    )
    .ok_or_else(|| {
        PthError::malformed(
            file,
            format!("tensor {} reaches outside its storage", printable(key)),
        )
    })
}
