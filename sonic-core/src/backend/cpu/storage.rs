use std::ops::Deref;
use std::sync::Arc;

use half::{bf16, f16};
use memmap2::Mmap;

use crate::DType;

/// f32 elements, either owned or read in place from a memory-mapped weights file.
#[derive(Debug)]
pub enum F32Buf {
    Owned(Vec<f32>),
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

impl F32Buf {
    /// Views `len` little-endian f32 values at byte `offset` of `map` without copying,
    /// or `None` when the bytes are misaligned, out of range, or the host is big-endian.
    pub fn mapped(map: Arc<Mmap>, offset: usize, len: usize) -> Option<F32Buf> {
        let end = offset.checked_add(len.checked_mul(4)?)?;
        let bytes = map.get(offset..end)?;
        let aligned = bytemuck::try_cast_slice::<u8, f32>(bytes).is_ok();
        (aligned && cfg!(target_endian = "little")).then_some(F32Buf::Mapped { map, offset, len })
    }
}

impl Deref for F32Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            F32Buf::Owned(v) => v,
            F32Buf::Mapped { map, offset, len } => {
                bytemuck::cast_slice(&map[*offset..*offset + *len * 4])
            }
        }
    }
}

impl From<Vec<f32>> for F32Buf {
    fn from(v: Vec<f32>) -> Self {
        F32Buf::Owned(v)
    }
}

/// Host memory of one tensor.
#[derive(Debug)]
pub enum CpuStorage {
    F32(F32Buf),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
        }
    }

    pub fn elem_count(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
        }
    }

    /// Converts to `dtype` (round to nearest even for the half types).
    pub fn convert(&self, dtype: DType) -> CpuStorage {
        let f32s: Vec<f32> = match self {
            CpuStorage::F32(v) => v.to_vec(),
            CpuStorage::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            CpuStorage::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
        };
        match dtype {
            DType::F32 => CpuStorage::F32(f32s.into()),
            DType::F16 => CpuStorage::F16(f32s.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::BF16 => CpuStorage::BF16(f32s.iter().map(|&x| bf16::from_f32(x)).collect()),
        }
    }
}
