//! Launch geometry and the `#[repr(C)]` mirrors of the kernels' parameter structs.

use super::invalid;
use cudarc::driver::{DeviceRepr, LaunchConfig};
use sonic_core::Result;

/// Threads per block of the elementwise and layout kernels.
pub(crate) const THREADS: u32 = 256;
/// The kernels loop grid-stride, so a grid this large already saturates any GPU.
const MAX_BLOCKS: u64 = 1 << 20;
/// `MAX_RANK` of elementwise.cu and layout.cu.
pub(crate) const MAX_RANK: usize = 8;

/// A 1-d grid-stride launch over `n` elements.
pub(crate) fn elementwise(n: usize) -> LaunchConfig {
    let blocks = (n as u64).div_ceil(THREADS as u64).clamp(1, MAX_BLOCKS);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row (norms, softmax).
pub(crate) fn per_row(rows: usize, op: &'static str) -> Result<LaunchConfig> {
    Ok(LaunchConfig {
        grid_dim: (grid_x(rows, op)?, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// A grid x-dimension, or an error when `n` exceeds CUDA's 2³¹ − 1 limit.
pub(crate) fn grid_x(n: usize, op: &'static str) -> Result<u32> {
    u32::try_from(n.max(1))
        .ok()
        .filter(|&n| n < 1 << 31)
        .ok_or_else(|| invalid(op, format!("{n} blocks exceed CUDA's grid limit")))
}

pub(crate) fn i32_arg(n: usize, op: &'static str) -> Result<i32> {
    i32::try_from(n).map_err(|_| invalid(op, format!("{n} does not fit a 32-bit kernel argument")))
}

/// `struct Broadcast` of elementwise.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Broadcast {
    pub rank: i32,
    pub shape: [i64; MAX_RANK],
    pub a_stride: [i64; MAX_RANK],
    pub b_stride: [i64; MAX_RANK],
}

/// `struct Permutation` of layout.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Permutation {
    pub rank: i32,
    pub shape: [i64; MAX_RANK],
    pub in_stride: [i64; MAX_RANK],
}

/// `struct GroupShape` of group_norm.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupShape {
    pub channels: i32,
    pub groups: i32,
    pub hw: i64,
    pub residual_inner: i64,
}

/// `struct Strides` of temporal_attention.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SequenceStrides {
    pub outer: i64,
    pub inner: i64,
    pub frame: i64,
}

/// `struct ConvGeometry` of layout.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConvGeometry {
    pub channels: i32,
    pub input: [i32; 3],
    pub kernel: [i32; 3],
    pub stride: [i32; 3],
    pub pad: [i32; 3],
    pub dilation: [i32; 3],
    pub output: [i32; 3],
}

/// `struct TransposedConv` of sampling.cu.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TransposedConv {
    pub in_channels: i32,
    pub out_channels: i32,
    pub in_h: i32,
    pub in_w: i32,
    pub kernel_h: i32,
    pub kernel_w: i32,
    pub out_h: i32,
    pub out_w: i32,
    pub stride: i32,
    pub pad: i32,
}

// SAFETY: plain `#[repr(C)]` structs of integers whose layout matches the CUDA
// declarations field for field; kernels receive them by value.
unsafe impl DeviceRepr for Broadcast {}
// SAFETY: as above.
unsafe impl DeviceRepr for Permutation {}
// SAFETY: as above.
unsafe impl DeviceRepr for GroupShape {}
// SAFETY: as above.
unsafe impl DeviceRepr for SequenceStrides {}
// SAFETY: as above.
unsafe impl DeviceRepr for ConvGeometry {}
// SAFETY: as above.
unsafe impl DeviceRepr for TransposedConv {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layouts_match_the_cuda_declarations() {
        // int + pad + 3 × long long[8]
        assert_eq!(std::mem::size_of::<Broadcast>(), 8 + 3 * 8 * 8);
        assert_eq!(std::mem::size_of::<Permutation>(), 8 + 2 * 8 * 8);
        assert_eq!(std::mem::size_of::<GroupShape>(), 24);
        assert_eq!(std::mem::size_of::<SequenceStrides>(), 24);
        assert_eq!(std::mem::size_of::<ConvGeometry>(), 4 * 19);
        assert_eq!(std::mem::size_of::<TransposedConv>(), 4 * 10);
    }

    #[test]
    fn elementwise_grid_is_bounded() {
        assert_eq!(elementwise(0).grid_dim.0, 1);
        assert_eq!(elementwise(257).grid_dim.0, 2);
        assert_eq!(elementwise(usize::MAX / 2).grid_dim.0, 1 << 20);
    }

    #[test]
    fn oversized_grids_are_errors() {
        assert!(grid_x(1 << 31, "t").is_err());
        assert_eq!(grid_x(0, "t").expect("empty grid"), 1);
    }
}
