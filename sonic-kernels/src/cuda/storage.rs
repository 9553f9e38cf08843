//! Device buffers: untyped bytes plus the dtype, so one storage type serves f32, f16 and
//! bf16 and kernels receive plain device pointers.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cudarc::driver::result::{memcpy_dtod_async, memset_d8_async};
use cudarc::driver::{CudaSlice, DevicePtr};
use sonic_core::backend::{Backend, DeviceStorage, Storage};
use sonic_core::{DType, Result, Shape, Tensor};

use super::device::CudaBackend;
use super::invalid;

#[derive(Debug)]
pub struct CudaStorage {
    backend: Arc<CudaBackend>,
    buffer: CudaSlice<u8>,
    dtype: DType,
    len: usize,
}

impl DeviceStorage for CudaStorage {
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn elem_count(&self) -> usize {
        self.len
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl CudaStorage {
    /// The buffer's device address, as kernels and cuBLAS take it.
    pub fn ptr(&self) -> u64 {
        let (ptr, _sync) = self.buffer.device_ptr(&self.backend.stream);
        ptr
    }

    pub(crate) fn buffer(&self) -> &CudaSlice<u8> {
        &self.buffer
    }
}

impl CudaBackend {
    /// Fills every later allocation with 0xFF bytes, a NaN in f32, f16 and bf16 alike, so
    /// a test can tell an output element no kernel wrote from a computed one.
    pub fn set_poison(&self, on: bool) {
        self.poison.store(on, Ordering::Relaxed);
    }

    /// A new uninitialised tensor; the caller's kernel writes every element.
    pub(crate) fn alloc(&self, shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        let shape = shape.into();
        let len = shape.elem_count();
        // Zero-sized allocations are not valid in CUDA; keep one byte behind empty tensors.
        let bytes = (len * dtype.size_in_bytes()).max(1);
        // SAFETY: the bytes are uninitialised; every caller launches a kernel (or copy)
        // that writes all `len` elements before the tensor is read.
        let buffer = unsafe { self.stream.alloc::<u8>(bytes) }.map_err(|e| self.error(e))?;
        if self.poison.load(Ordering::Relaxed) {
            let (ptr, _sync) = buffer.device_ptr(&self.stream);
            // SAFETY: `ptr` addresses `bytes` bytes just allocated on this stream.
            unsafe { memset_d8_async(ptr, 0xFF, bytes, self.stream.cu_stream()) }
                .map_err(|e| self.error(e))?;
        }
        self.wrap(buffer, dtype, shape)
    }

    pub(crate) fn wrap(&self, buffer: CudaSlice<u8>, dtype: DType, shape: Shape) -> Result<Tensor> {
        let storage = CudaStorage {
            backend: self.arc()?,
            buffer,
            dtype,
            len: shape.elem_count(),
        };
        Tensor::from_storage(Storage::Device(Arc::new(storage)), shape)
    }

    /// Host bytes of a new tensor.
    pub(crate) fn upload_bytes(&self, bytes: &[u8], dtype: DType, shape: &Shape) -> Result<Tensor> {
        if bytes.is_empty() {
            return self.alloc(shape.clone(), dtype);
        }
        let buffer = self.stream.clone_htod(bytes).map_err(|e| self.error(e))?;
        self.wrap(buffer, dtype, shape.clone())
    }
}

impl CudaBackend {
    /// A copy of `x` by one device-to-device memcpy: the bandwidth yardstick of the
    /// memory-bound benches.
    pub fn copy_d2d(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.alloc(x.shape().clone(), x.dtype())?;
        let bytes = x.elem_count() * x.dtype().size_in_bytes();
        if bytes > 0 {
            let (src, dst) = (
                cuda_storage(x, "copy")?.ptr(),
                cuda_storage(&y, "copy")?.ptr(),
            );
            // SAFETY: both buffers hold `bytes` bytes on this device; stream-ordered.
            unsafe { memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }
                .map_err(|e| self.error(e))?;
        }
        Ok(y)
    }
}

/// The CUDA storage behind `t`, or an error naming the op.
pub(crate) fn cuda_storage<'a>(t: &'a Tensor, op: &'static str) -> Result<&'a CudaStorage> {
    match t.storage() {
        Storage::Device(s) => s.as_any().downcast_ref::<CudaStorage>(),
        Storage::Cpu(_) => None,
    }
    .ok_or_else(|| {
        invalid(
            op,
            format!("tensor lives on {}, not a CUDA device", t.device()),
        )
    })
}
