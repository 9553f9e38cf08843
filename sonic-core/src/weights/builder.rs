//! Prefix-scoped access to a [`WeightStore`], in the style of `vb.pp("down_blocks").pp(0)`.

use std::sync::Arc;

use super::{LoadReport, WeightStore};
use crate::{DType, Device, Result, Shape, Tensor};

#[derive(Clone, Debug)]
pub struct VarBuilder {
    store: Arc<WeightStore>,
    prefix: Vec<String>,
    dtype: DType,
    device: Device,
}

impl VarBuilder {
    pub fn new(store: Arc<WeightStore>, dtype: DType, device: Device) -> Self {
        VarBuilder {
            store,
            prefix: Vec::new(),
            dtype,
            device,
        }
    }

    /// A builder whose keys are prefixed by `name.` (numbers work too: `.pp(0)`).
    pub fn pp(&self, name: impl ToString) -> VarBuilder {
        let mut next = self.clone();
        next.prefix.push(name.to_string());
        next
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn store(&self) -> &Arc<WeightStore> {
        &self.store
    }

    /// The full key of `name` under this prefix.
    pub fn key(&self, name: &str) -> String {
        let mut parts = self.prefix.clone();
        parts.push(name.to_string());
        parts.join(".")
    }

    pub fn contains(&self, name: &str) -> bool {
        self.store.contains(&self.key(name))
    }

    /// Whether any stored key starts with this builder's prefix.
    pub fn contains_prefix(&self) -> bool {
        let prefix = format!("{}.", self.prefix.join("."));
        self.store.keys().any(|k| k.starts_with(&prefix))
    }

    /// The tensor `name` with exactly `shape`; a missing key or other shape is an error
    /// naming the full key.
    pub fn get(&self, shape: impl Into<Shape>, name: &str) -> Result<Tensor> {
        self.store
            .load(&self.key(name), &shape.into(), self.dtype, self.device)
    }

    /// Like [`get`](Self::get), but `None` when the key is absent (a wrong shape is still an error).
    pub fn get_opt(&self, shape: impl Into<Shape>, name: &str) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(shape, name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Which keys of the store have been read so far, and which not.
    pub fn report(&self) -> LoadReport {
        LoadReport::new(&self.store)
    }
}
