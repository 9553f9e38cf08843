//! Tensor views across the boundary: checked on the way in, built on the way out.

use crate::abi::{self, TensorView};

/// A contiguous CPU f32 view of `data` with `shape` (the caller keeps both alive).
pub(crate) fn f32_view(data: &[f32], shape: &[i64]) -> TensorView {
    TensorView {
        dtype: abi::DTYPE_F32,
        device_type: abi::DEVICE_CPU,
        device_id: 0,
        ndim: shape.len() as u32,
        shape: shape.as_ptr(),
        strides: std::ptr::null(),
        data: data.as_ptr() as *mut std::ffi::c_void,
    }
}

/// The shape of a view that must be a contiguous CPU f32 tensor.
///
/// # Safety
/// `view` must be null or point at a view whose `shape` holds `ndim` values.
pub(crate) unsafe fn checked_shape(view: *const TensorView) -> Result<Vec<usize>, String> {
    if view.is_null() {
        return Err("null tensor view".into());
    }
    // SAFETY: non-null per the check, valid per the caller.
    let v = unsafe { &*view };
    if v.dtype != abi::DTYPE_F32 || v.device_type != abi::DEVICE_CPU {
        return Err(format!(
            "tensor view of dtype {} on device type {}: version 1 passes CPU f32 only",
            v.dtype, v.device_type
        ));
    }
    if v.data.is_null() || (v.ndim > 0 && v.shape.is_null()) {
        return Err("tensor view without data or shape".into());
    }
    // SAFETY: `shape` holds `ndim` values per the ABI.
    let shape = unsafe { std::slice::from_raw_parts(v.shape, v.ndim as usize) };
    if shape.iter().any(|&d| d < 0) {
        return Err(format!("negative dimension in {shape:?}"));
    }
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    if !v.strides.is_null() {
        // SAFETY: as for `shape`.
        let strides = unsafe { std::slice::from_raw_parts(v.strides, v.ndim as usize) };
        let contiguous = sonic_core::Shape::new(dims.clone()).strides();
        if strides
            .iter()
            .zip(&contiguous)
            .any(|(&s, &c)| s as usize != c)
        {
            return Err("strided tensor views are not supported in version 1".into());
        }
    }
    Ok(dims)
}
