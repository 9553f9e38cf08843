//! Errors of kernel compilation and (with the `cuda` feature) of the CUDA backend.

/// Everything that can go wrong between a kernel's source and a result on the GPU.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// NVRTC could not be loaded or lacks a symbol; the message says which and why.
    #[error("NVRTC is unavailable: {0}")]
    NvrtcUnavailable(String),
    /// An NVRTC call other than compilation failed.
    #[error("{call} failed: {message}")]
    NvrtcCall { call: &'static str, message: String },
    /// The kernel source did not compile; `log` is NVRTC's program log.
    #[error("compiling {variant} for {arch} failed:\n{log}")]
    Compile {
        variant: String,
        arch: String,
        log: String,
    },
    /// Reading or writing the on-disk kernel cache failed.
    #[error("kernel cache {path}: {source}")]
    Cache {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
