//! Shared helpers for the benches: the benchmark shapes (one list, also read by the
//! PyTorch peer script in `peer/`) and fixed pseudo-random inputs.

use serde::Deserialize;
use sonic_core::rng::FrameNoise;

/// The shape list, shared with `peer/cpu_ops.py`.
pub const SHAPES_JSON: &str = include_str!("../peer/shapes.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Shapes {
    pub seed: u64,
    pub matmul: Vec<Linear>,
    pub conv2d_3x3: Vec<Conv2d>,
    pub attention: Vec<Attention>,
    pub group_norm_silu: Vec<GroupNorm>,
}

/// `x [rows, in] · wᵀ + b` with PyTorch's `Linear` weight layout `w [out, in]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Linear {
    pub id: String,
    pub rows: usize,
    #[serde(rename = "in")]
    pub input: usize,
    pub out: usize,
}

/// 3×3 convolution, stride 1, padding 1, with bias.
#[derive(Debug, Clone, Deserialize)]
pub struct Conv2d {
    pub id: String,
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub out: usize,
}

/// Self-attention over `tokens` with `heads` heads of `head_dim`.
#[derive(Debug, Clone, Deserialize)]
pub struct Attention {
    pub id: String,
    pub batch: usize,
    pub tokens: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// GroupNorm (with affine weight and bias) followed by SiLU on `[n, c, h, w]`.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupNorm {
    pub id: String,
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub groups: usize,
}

/// The parsed shape list.
pub fn shapes() -> Shapes {
    serde_json::from_str(SHAPES_JSON).expect("benches/peer/shapes.json is valid")
}

/// `len` fixed standard-normal values: stream `stream` of the shape list's seed.
pub fn random(seed: u64, stream: u64, len: usize) -> Vec<f32> {
    FrameNoise::new(seed).frame(stream, len)
}

/// The first GPU's CUDA backend, or why there is none (no driver, no device, no NVRTC).
#[cfg(feature = "cuda")]
pub fn cuda_backend() -> Result<std::sync::Arc<sonic_kernels::cuda::CudaBackend>, String> {
    let driver = sonic_kernels::probe_driver();
    if driver.devices.is_empty() {
        return Err(driver.error.unwrap_or_else(|| "no CUDA device".to_owned()));
    }
    sonic_kernels::cuda::install();
    sonic_kernels::cuda::CudaBackend::new(0).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn shape_list_parses() {
        let s = super::shapes();
        assert!(!s.matmul.is_empty() && !s.conv2d_3x3.is_empty());
        assert!(!s.attention.is_empty() && !s.group_norm_silu.is_empty());
    }
}
