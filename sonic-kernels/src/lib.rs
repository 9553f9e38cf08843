//! Sonic SDK CUDA side: probing for the CUDA driver, NVRTC and cuDNN without cudarc, the
//! CUDA C kernels of `kernels-cu/` with their NVRTC compilation and on-disk cache, the
//! choice of convolution algorithm, and (behind the `cuda` feature) the CUDA backend.

pub mod cache;
pub mod conv_algorithm;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod error;
pub mod nvrtc;
pub mod probe;
pub mod registry;

pub use conv_algorithm::{ConvAlgorithm, ConvChoice, CONV_ALGORITHM_ENV};
pub use error::KernelError;
pub use probe::{
    decode_cuda_version, decode_cudnn_version, probe_cublas, probe_cudnn, probe_driver,
    probe_nvrtc, CublasProbe, CudnnProbe, DriverProbe, GpuInfo, NvrtcProbe, NVRTC_PATH_ENV,
};
pub use registry::{variants, Kernel, Variant};

/// Whether this build contains the CUDA backend; without it a `cuda` device is an error.
pub const CUDA_BACKEND_COMPILED: bool = cfg!(feature = "cuda");

/// Registers the device backends this build contains (CUDA with the `cuda` feature), so
/// `Device::Cuda(n)` resolves to it; hosts call it once at start. Keeping the feature check
/// here means [`CUDA_BACKEND_COMPILED`] and registration can never disagree.
pub fn register_backends() {
    #[cfg(feature = "cuda")]
    cuda::install();
}
