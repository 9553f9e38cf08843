//! Writing a store back out as one safetensors file.

use std::borrow::Cow;
use std::path::Path;

use safetensors::{Dtype, View};

use super::{RawTensor, WeightStore};
use crate::{Error, Result};

impl View for &RawTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.bytes())
    }
    fn data_len(&self) -> usize {
        self.bytes().len()
    }
}

/// Writes every tensor of `store` unchanged (same keys, dtypes and bytes) to `output`.
/// The file appears only when complete: it is written under a temporary name in the same
/// folder and renamed, so a failure never leaves a partial file behind.
pub fn write_safetensors(store: &WeightStore, output: &Path) -> Result<()> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".sonic-convert-")
        .suffix(".safetensors.partial")
        .tempfile_in(dir)
        .map_err(|e| Error::io(output, e))?;
    let tensors = store
        .keys()
        .filter_map(|k| store.raw(k).map(|r| (k.to_string(), r)));
    safetensors::serialize_to_file(tensors, None, tmp.path())
        .map_err(|e| Error::file(output, format!("cannot write safetensors: {e}")))?;
    tmp.persist(output)
        .map_err(|e| Error::io(output, e.error))?;
    Ok(())
}
