//! Turns the unpickled object graph into `(dotted name, tensor)` pairs in file order.
//!
//! A TorchScript module contributes its attributes the way a dict contributes its entries, so
//! its tensors get the names `state_dict()` gives them (`model.0.conv.weight`).

use std::borrow::Cow;
use std::collections::HashMap;

use super::error::PthError;
use super::pickle::{Heap, Obj, Unpickled, Value};
use super::rebuild::TensorRef;

/// Training scripts commonly save `{"state_dict": sd}` or `{"model": sd}` rather than `sd`.
const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model", "module"];
/// Also bounds the recursion, so a self-containing dict cannot overflow the stack.
const MAX_DEPTH: usize = 64;
/// Real state dicts spend about as many bytes on full dotted names as on the whole pickle.
/// This leaves ample room for that while stopping graphs built so that names explode in
/// number or length: a dict shared under many keys, a long key repeated at every level.
const NAME_BYTES_PER_PICKLE_BYTE: usize = 16;
const NAME_BASE_BYTES: usize = 1 << 20;

pub(crate) fn named_tensors(
    unpickled: &Unpickled,
    pickle_len: usize,
    file: &str,
) -> Result<Vec<(String, TensorRef)>, PthError> {
    let heap = &unpickled.heap;
    let Some(mut entries) = members(heap, &unpickled.root) else {
        return Err(PthError::unsupported(
            file,
            format!(
                "the checkpoint holds a {}, not a dict of tensors or a TorchScript module",
                heap.kind(&unpickled.root)
            ),
        ));
    };
    for _ in 0..MAX_DEPTH {
        let [(Value::Str(key), inner)] = entries else {
            break;
        };
        match heap.deref(inner) {
            Some(Obj::Dict(inner)) if WRAPPER_KEYS.contains(&&**key) => entries = inner,
            _ => break,
        }
    }

    let mut walk = Walk {
        heap,
        file,
        name_bytes_left: pickle_len
            .saturating_mul(NAME_BYTES_PER_PICKLE_BYTE)
            .saturating_add(NAME_BASE_BYTES),
        tensors: Vec::new(),
        positions: HashMap::new(),
    };
    walk.dict(entries, "", 0)?;
    Ok(walk.tensors)
}

/// The named members of a dict, or of a TorchScript module with its attributes set.
fn members<'h>(heap: &'h Heap, value: &Value) -> Option<&'h [(Value, Value)]> {
    match heap.deref(value)? {
        Obj::Dict(entries) => Some(entries),
        Obj::Object { state: Some(state) } => match heap.deref(state)? {
            Obj::Dict(entries) => Some(entries),
            _ => None,
        },
        _ => None,
    }
}

struct Walk<'h> {
    heap: &'h Heap,
    file: &'h str,
    name_bytes_left: usize,
    tensors: Vec<(String, TensorRef)>,
    positions: HashMap<String, usize>,
}

impl Walk<'_> {
    fn dict(
        &mut self,
        entries: &[(Value, Value)],
        prefix: &str,
        depth: usize,
    ) -> Result<(), PthError> {
        if depth >= MAX_DEPTH {
            return Err(PthError::unsupported(
                self.file,
                format!("dicts nested more than {MAX_DEPTH} deep"),
            ));
        }
        for (key, value) in entries {
            // Optimizer states use integer keys; other key types cannot form a name.
            let key: Cow<'_, str> = match key {
                Value::Str(key) => Cow::Borrowed(key),
                Value::Int(key) => Cow::Owned(key.to_string()),
                _ => continue,
            };
            let cost = prefix.len() + 1 + key.len();
            self.name_bytes_left = self.name_bytes_left.checked_sub(cost).ok_or_else(|| {
                PthError::unsupported(
                    self.file,
                    "tensor names far longer or more numerous than the pickle",
                )
            })?;
            let name = if prefix.is_empty() {
                key.into_owned()
            } else {
                format!("{prefix}.{key}")
            };
            // Anything else is a non-tensor leaf (a step counter, a config string) and skipped.
            if let Some(Obj::Tensor(tensor)) = self.heap.deref(value) {
                self.add(name, tensor.clone());
            } else if let Some(inner) = members(self.heap, value) {
                self.dict(inner, &name, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Like assigning into a Python dict: a repeated name keeps its first position and takes
    /// the latest tensor.
    fn add(&mut self, name: String, tensor: TensorRef) {
        match self.positions.get(&name) {
            Some(&at) => self.tensors[at].1 = tensor,
            None => {
                self.positions.insert(name.clone(), self.tensors.len());
                self.tensors.push((name, tensor));
            }
        }
    }
}
