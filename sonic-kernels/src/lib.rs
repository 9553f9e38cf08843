//! Sonic SDK CUDA side: probing for the CUDA driver and NVRTC without cudarc, and (behind
//! the `cuda` feature, as it grows) the CUDA backend.

pub mod probe;

pub use probe::{
    decode_cuda_version, probe_driver, probe_nvrtc, DriverProbe, GpuInfo, NvrtcProbe,
    NVRTC_PATH_ENV,
};

/// Whether this build contains the CUDA backend; without it a `cuda` device is an error.
pub const CUDA_BACKEND_COMPILED: bool = cfg!(feature = "cuda");
