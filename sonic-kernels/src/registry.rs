//! Every kernel the backend launches: its CUDA source (embedded from `kernels-cu/`), its
//! entry points, and the specialisations it is compiled in.
//!
//! A [`Variant`] is one NVRTC translation unit: a source file plus the `-D` definitions that
//! pick its storage dtype and, for attention, its head dimension. [`variants`] lists all of
//! them, which is what the compile test walks for every architecture.

use sonic_core::DType;

/// Headers the sources include by name; NVRTC resolves them from these texts, not the disk.
pub const HEADERS: &[(&str, &str)] = &[
    ("common.cuh", include_str!("../../kernels-cu/common.cuh")),
    ("conv.cuh", include_str!("../../kernels-cu/conv.cuh")),
    (
        "tensor_core.cuh",
        include_str!("../../kernels-cu/tensor_core.cuh"),
    ),
];

/// The architectures every variant must compile for (Ampere and Hopper data-centre parts).
pub const CI_ARCHS: &[&str] = &["sm_80", "sm_90"];

/// Head dimensions with a specialised attention kernel (SVD UNet 64, CLIP ViT-H 80, …).
pub const ATTENTION_HEAD_DIMS: &[usize] = &[40, 64, 80, 128];

const ALL_DTYPES: &[DType] = &[DType::F32, DType::F16, DType::BF16];
const HALF_DTYPES: &[DType] = &[DType::F16, DType::BF16];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Tensor-core flash attention for long sequences (spatial self-attention).
    FlashAttention,
    /// Attention over ≤ 32 frames with strided addressing into the spatial layout.
    TemporalAttention,
    /// Cross-attention to a single key: the output is V broadcast to every query.
    SingleKeyAttention,
    GroupNorm,
    LayerNorm,
    Softmax,
    Geglu,
    Elementwise,
    Layout,
    /// Transposed convolution, grid sampling and max pooling (RIFE, YOLOv5-face).
    Sampling,
    /// Convolution as an implicit GEMM (tensor cores for f16/bf16, FMA for f32).
    ConvImplicitGemm,
}

impl Kernel {
    pub const ALL: [Kernel; 11] = [
        Kernel::FlashAttention,
        Kernel::TemporalAttention,
        Kernel::SingleKeyAttention,
        Kernel::GroupNorm,
        Kernel::LayerNorm,
        Kernel::Softmax,
        Kernel::Geglu,
        Kernel::Elementwise,
        Kernel::Layout,
        Kernel::Sampling,
        Kernel::ConvImplicitGemm,
    ];

    pub fn file(self) -> &'static str {
        match self {
            Kernel::FlashAttention => "flash_attention.cu",
            Kernel::TemporalAttention => "temporal_attention.cu",
            Kernel::SingleKeyAttention => "single_key_attention.cu",
            Kernel::GroupNorm => "group_norm.cu",
            Kernel::LayerNorm => "layer_norm.cu",
            Kernel::Softmax => "softmax.cu",
            Kernel::Geglu => "geglu.cu",
            Kernel::Elementwise => "elementwise.cu",
            Kernel::Layout => "layout.cu",
            Kernel::Sampling => "sampling.cu",
            Kernel::ConvImplicitGemm => "conv_implicit_gemm.cu",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Kernel::FlashAttention => include_str!("../../kernels-cu/flash_attention.cu"),
            Kernel::TemporalAttention => include_str!("../../kernels-cu/temporal_attention.cu"),
            Kernel::SingleKeyAttention => {
                include_str!("../../kernels-cu/single_key_attention.cu")
            }
            Kernel::GroupNorm => include_str!("../../kernels-cu/group_norm.cu"),
            Kernel::LayerNorm => include_str!("../../kernels-cu/layer_norm.cu"),
            Kernel::Softmax => include_str!("../../kernels-cu/softmax.cu"),
            Kernel::Geglu => include_str!("../../kernels-cu/geglu.cu"),
            Kernel::Elementwise => include_str!("../../kernels-cu/elementwise.cu"),
            Kernel::Layout => include_str!("../../kernels-cu/layout.cu"),
            Kernel::Sampling => include_str!("../../kernels-cu/sampling.cu"),
            Kernel::ConvImplicitGemm => include_str!("../../kernels-cu/conv_implicit_gemm.cu"),
        }
    }

    /// The `extern "C"` functions the compiled module exports.
    pub fn entries(self) -> &'static [&'static str] {
        match self {
            Kernel::FlashAttention => &["flash_attention_fwd"],
            Kernel::TemporalAttention => &["temporal_attention"],
            Kernel::SingleKeyAttention => &["single_key_attention"],
            Kernel::GroupNorm => &["group_norm_fused", "group_norm_partial", "group_norm_apply"],
            Kernel::LayerNorm => &["layer_norm"],
            Kernel::Softmax => &["softmax_rows"],
            Kernel::Geglu => &["geglu"],
            Kernel::Elementwise => &[
                "unary",
                "affine",
                "clamp",
                "prelu",
                "binary_broadcast",
                "convert_to_f32",
                "convert_to_f16",
                "convert_to_bf16",
            ],
            Kernel::Layout => &[
                "permute",
                "copy_rows",
                "index_select",
                "sum_axis",
                "upsample_nearest2d",
                "resize2d",
                "im2col",
            ],
            Kernel::Sampling => &["conv_transpose2d", "grid_sample", "max_pool2d"],
            Kernel::ConvImplicitGemm => &[
                "conv_gather_table",
                "conv_implicit_gemm",
                "conv_implicit_gemm_3d",
            ],
        }
    }

    /// Storage dtypes the kernel is built for. Flash attention is tensor-core only.
    pub fn dtypes(self) -> &'static [DType] {
        match self {
            Kernel::FlashAttention => HALF_DTYPES,
            _ => ALL_DTYPES,
        }
    }

    /// Head dimensions it is specialised for; empty when it takes no head dimension.
    pub fn head_dims(self) -> &'static [usize] {
        match self {
            Kernel::FlashAttention | Kernel::TemporalAttention => ATTENTION_HEAD_DIMS,
            _ => &[],
        }
    }
}

/// One compilation of one kernel source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub kernel: Kernel,
    pub dtype: DType,
    pub head_dim: Option<usize>,
}

impl Variant {
    /// `flash_attention.f16.d64`: names the variant in logs, errors and the cache.
    pub fn name(&self) -> String {
        let stem = self.kernel.file().trim_end_matches(".cu");
        match self.head_dim {
            Some(d) => format!("{stem}.{}.d{d}", self.dtype),
            None => format!("{stem}.{}", self.dtype),
        }
    }

    /// NVRTC options besides the architecture.
    pub fn options(&self) -> Vec<String> {
        let code = match self.dtype {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
        };
        let mut options = vec!["--std=c++17".to_owned(), format!("-DSONIC_DTYPE={code}")];
        if let Some(d) = self.head_dim {
            options.push(format!("-DHEAD_DIM={d}"));
        }
        options
    }
}

/// Every variant of every kernel.
pub fn variants() -> Vec<Variant> {
    let mut all = Vec::new();
    for kernel in Kernel::ALL {
        for &dtype in kernel.dtypes() {
            if kernel.head_dims().is_empty() {
                all.push(Variant {
                    kernel,
                    dtype,
                    head_dim: None,
                });
            }
            for &d in kernel.head_dims() {
                all.push(Variant {
                    kernel,
                    dtype,
                    head_dim: Some(d),
                });
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_are_unique() {
        let all = variants();
        let mut names: Vec<String> = all.iter().map(Variant::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        // 8 flash + 12 temporal + 9 kernels in 3 dtypes.
        assert_eq!(all.len(), 8 + 12 + 9 * 3);
    }

    #[test]
    fn flash_attention_is_half_precision_only() {
        for v in variants()
            .iter()
            .filter(|v| v.kernel == Kernel::FlashAttention)
        {
            assert_ne!(v.dtype, DType::F32, "{}", v.name());
            assert!(v.head_dim.is_some());
        }
    }

    #[test]
    fn options_select_dtype_and_head_dim() {
        let v = Variant {
            kernel: Kernel::FlashAttention,
            dtype: DType::BF16,
            head_dim: Some(80),
        };
        assert_eq!(v.name(), "flash_attention.bf16.d80");
        let options = v.options();
        assert!(options.contains(&"-DSONIC_DTYPE=2".to_owned()));
        assert!(options.contains(&"-DHEAD_DIM=80".to_owned()));
    }

    #[test]
    fn every_entry_point_is_a_kernel_of_its_source() {
        for kernel in Kernel::ALL {
            let source = kernel.source();
            for entry in kernel.entries() {
                let at = source.find(&format!("{entry}(")).unwrap_or_else(|| {
                    panic!("{} does not define {entry}", kernel.file());
                });
                // The declaration starts at most a line or two before the name.
                let head = &source.as_bytes()[at.saturating_sub(120)..at];
                let head = String::from_utf8_lossy(head);
                assert!(
                    head.contains("extern \"C\" __global__"),
                    "{entry} in {} is not an extern \"C\" kernel",
                    kernel.file()
                );
            }
        }
    }
}
