//! The CUDA backend: cudarc for the driver, cuBLAS and (where it loads) cuDNN's
//! convolutions, NVRTC-compiled kernels from `kernels-cu/` for everything else. Tensors are stored as f32, f16 or bf16; every kernel
//! accumulates in f32.
//!
//! [`install`] registers it as sonic-core's `cuda` device kind. Building a backend first
//! asks the driver through [`crate::probe`] (which never panics) whether the device exists,
//! so a machine without a driver or GPU gets `DeviceUnavailable` with the reason.

/// Launches `$f` with `$cfg` and the listed arguments (places, so they outlive the
/// builder), mapping the driver error. Expands to an unsafe call: the caller's `unsafe`
/// block carries the SAFETY argument that the arguments match the kernel's signature.
macro_rules! launch {
    ($backend:expr, $f:expr, $cfg:expr; $($arg:expr),+ $(,)?) => {{
        let mut builder = $backend.stream.launch_builder(&$f);
        $( builder.arg(&$arg); )+
        builder
            .launch($cfg)
            .map(|_| ())
            .map_err(|e| $backend.error(e))
    }};
}

mod attention;
mod blas;
mod conv;
mod cudnn;
mod device;
mod launch;
mod ops;
mod storage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sonic_core::backend::{register_device_backend, Backend};
use sonic_core::{Device, Error, Result};

pub use attention::AttentionPath;
pub use device::CudaBackend;
pub use storage::CudaStorage;

/// Registers the CUDA backend for `Device::Cuda(n)`. Safe to call more than once.
pub fn install() {
    register_device_backend("cuda", factory);
}

/// One backend per ordinal for the life of the process: modules, cuBLAS handle and the
/// context are built once.
fn factory(ordinal: usize) -> Result<Arc<dyn Backend>> {
    static BACKENDS: OnceLock<Mutex<HashMap<usize, Arc<CudaBackend>>>> = OnceLock::new();
    let backends = BACKENDS.get_or_init(Default::default);
    let mut backends = backends.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(backend) = backends.get(&ordinal) {
        return Ok(backend.clone());
    }
    let backend = CudaBackend::new(ordinal)?;
    backends.insert(ordinal, backend.clone());
    Ok(backend)
}

/// sonic-core's `InvalidArgument`, built here since its own constructor is crate-private.
pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        msg: msg.into(),
    }
}

pub(crate) fn unavailable(ordinal: usize, reason: impl Into<String>) -> Error {
    Error::DeviceUnavailable {
        device: Device::Cuda(ordinal).to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use sonic_core::Tensor;

    use super::*;

    #[test]
    fn cuda_device_without_a_gpu_is_a_clean_error() {
        install();
        let driver = crate::probe_driver();
        let result = Tensor::zeros([2], Device::Cuda(0));
        match (&driver.error, driver.devices.is_empty()) {
            // No driver or no device: the error says so instead of panicking in cudarc.
            (Some(_), _) | (None, true) => {
                let err = result.expect_err("no device, yet a CUDA tensor was made");
                assert!(matches!(err, Error::DeviceUnavailable { .. }), "{err}");
                assert!(err.to_string().contains("cuda:0"), "{err}");
            }
            (None, false) => {
                let probe = crate::probe_nvrtc();
                assert_eq!(result.is_ok(), probe.error.is_none(), "{result:?}");
            }
        }
    }
}
