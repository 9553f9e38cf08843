//! A set of named tensors gathered from one or more files, loaded on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::backend::cpu::F32Buf;
use crate::backend::{CpuStorage, Storage};
use crate::weights::pth;
use crate::{DType, Device, Error, Result, Shape, Tensor};

/// Bytes of one stored tensor: a range of a memory-mapped file, or owned bytes.
#[derive(Clone, Debug)]
enum Bytes {
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
    Owned(Arc<Vec<u8>>),
    /// Weights compiled into the binary.
    Static(&'static [u8]),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped { map, offset, len } => &map[*offset..*offset + *len],
            Bytes::Owned(v) => v,
            Bytes::Static(s) => s,
        }
    }
}

/// One stored tensor as it is in its file: dtype, shape and little-endian bytes.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    bytes: Bytes,
    file: Arc<PathBuf>,
}

impl RawTensor {
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Converts to a float tensor of `dtype` on `device`. f32 data stays in the memory map
    /// when it is read as f32 on the CPU.
    fn to_tensor(&self, key: &str, dtype: DType, device: Device) -> Result<Tensor> {
        let shape = Shape::new(self.shape.clone());
        let bytes = self.bytes();
        if let (Dtype::F32, DType::F32, Bytes::Mapped { map, offset, len }) =
            (self.dtype, dtype, &self.bytes)
        {
            if let Some(buf) = F32Buf::mapped(map.clone(), *offset, len / 4) {
                return Tensor::from_storage(Storage::Cpu(CpuStorage::F32(buf)), shape)?
                    .to_device(device);
            }
        }
        let storage = match self.dtype {
            Dtype::F32 => CpuStorage::F32(decode(bytes, f32::from_le_bytes).into()),
            Dtype::F16 => CpuStorage::F16(decode(bytes, |b| f16::from_bits(u16::from_le_bytes(b)))),
            Dtype::BF16 => {
                CpuStorage::BF16(decode(bytes, |b| bf16::from_bits(u16::from_le_bytes(b))))
            }
            Dtype::F64 => CpuStorage::F32(decode(bytes, |b| f64::from_le_bytes(b) as f32).into()),
            other => {
                return Err(Error::WeightDType {
                    key: key.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        let storage = if storage.dtype() == dtype {
            storage
        } else {
            storage.convert(dtype)
        };
        Tensor::from_storage(Storage::Cpu(storage), shape)?.to_device(device)
    }
}

fn decode<T, const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

/// Named tensors from one or more files, with a record of which keys were read.
#[derive(Debug, Default)]
pub struct WeightStore {
    tensors: BTreeMap<String, RawTensor>,
    access: Mutex<Access>,
    files: Vec<PathBuf>,
}

/// What model builds asked of the store.
#[derive(Debug, Default, Clone)]
pub(crate) struct Access {
    pub used: BTreeSet<String>,
    pub missing: BTreeSet<String>,
    pub mismatched: BTreeMap<String, (Shape, Shape)>,
}

impl WeightStore {
    /// Opens weight files (safetensors, or PyTorch `.pth`/`.pt`/`.bin` checkpoints) as one store.
    /// A key present in two files is an error naming both.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<WeightStore> {
        let mut store = WeightStore::default();
        for path in paths {
            store.add_file(path.as_ref())?;
        }
        Ok(store)
    }

    /// A store over a safetensors image compiled into the binary; `name` stands in for the
    /// file name in messages and reports.
    pub fn from_static_safetensors(name: &str, bytes: &'static [u8]) -> Result<WeightStore> {
        let path = Path::new(name);
        let (header_len, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors image: {e}")))?;
        let file = Arc::new(path.to_path_buf());
        let data = &bytes[8 + header_len..];
        let mut store = WeightStore::default();
        for (key, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            let slice = data
                .get(start..end)
                .ok_or_else(|| Error::file(path, format!("tensor `{key}` lies past the end")))?;
            let raw = RawTensor {
                dtype: info.dtype,
                shape: info.shape.clone(),
                bytes: Bytes::Static(slice),
                file: file.clone(),
            };
            store.tensors.insert(key, raw);
        }
        store.files.push(path.to_path_buf());
        Ok(store)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let entries = if is_safetensors {
            read_safetensors(path)?
        } else {
            read_torch(path)?
        };
        for (key, raw) in entries {
            if let Some(prev) = self.tensors.get(&key) {
                return Err(Error::file(
                    path,
                    format!("tensor `{key}` is also in {}", prev.file.display()),
                ));
            }
            self.tensors.insert(key, raw);
        }
        self.files.push(path.to_path_buf());
        Ok(())
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn raw(&self, key: &str) -> Option<&RawTensor> {
        self.tensors.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Loads `key` as a float tensor with exactly `shape`, marking it used.
    /// Missing keys and shape mismatches are recorded for the [`LoadReport`](super::LoadReport)
    /// as well as returned.
    pub fn load(&self, key: &str, shape: &Shape, dtype: DType, device: Device) -> Result<Tensor> {
        let Some(raw) = self.tensors.get(key) else {
            self.access().missing.insert(key.to_string());
            return Err(Error::MissingWeight {
                key: key.to_string(),
                hint: self
                    .closest_key(key)
                    .map(|k| format!("did you mean `{k}`?")),
            });
        };
        if raw.shape != shape.dims() {
            let found = Shape::new(raw.shape.clone());
            self.access()
                .mismatched
                .insert(key.to_string(), (shape.clone(), found.clone()));
            return Err(Error::WeightShape {
                key: key.to_string(),
                expected: shape.clone(),
                found,
            });
        }
        let tensor = raw.to_tensor(key, dtype, device)?;
        self.access().used.insert(key.to_string());
        Ok(tensor)
    }

    fn access(&self) -> std::sync::MutexGuard<'_, Access> {
        self.access.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored key sharing the longest suffix with `key`, to point at prefix mistakes.
    fn closest_key(&self, key: &str) -> Option<&str> {
        let common_suffix = |k: &str| {
            k.bytes()
                .rev()
                .zip(key.bytes().rev())
                .take_while(|(a, b)| a == b)
                .count()
        };
        self.tensors
            .keys()
            .map(|k| (common_suffix(k), k))
            .filter(|(n, _)| *n > key.rsplit('.').next().map_or(0, str::len))
            .max_by_key(|(n, _)| *n)
            .map(|(_, k)| k.as_str())
    }

    pub(crate) fn access_record(&self) -> Access {
        self.access().clone()
    }
}

fn read_safetensors(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is read-only; a weights file changed underneath a running process is
    // outside what any loader can defend against, and we never hand out mutable views.
    let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
    let (header_len, metadata) = SafeTensors::read_metadata(&map)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
    let data_start = 8 + header_len;
    let file = Arc::new(path.to_path_buf());
    Ok(metadata
        .tensors()
        .into_iter()
        .map(|(key, info)| {
            let (start, end) = info.data_offsets;
            let bytes = Bytes::Mapped {
                map: map.clone(),
                offset: data_start + start,
                len: end - start,
            };
            let raw = RawTensor {
                dtype: info.dtype,
                shape: info.shape.clone(),
                bytes,
                file: file.clone(),
            };
            (key, raw)
        })
        .collect())
}

fn read_torch(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let file = Arc::new(path.to_path_buf());
    Ok(pth::read_pth(path)?
        .into_iter()
        .map(|(key, t)| {
            let raw = RawTensor {
                dtype: t.dtype,
                shape: t.shape,
                bytes: Bytes::Owned(Arc::new(t.data)),
                file: file.clone(),
            };
            (key, raw)
        })
        .collect())
}
