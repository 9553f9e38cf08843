//! cuBLAS GEMMs for matmul, linear, convolution (after im2col) and the generic attention
//! path. Every dtype runs `cublasGemmStridedBatchedEx` with f32 compute, so f16 and bf16
//! accumulate in f32 and f32 stays true f32 (no TF32).

use std::ffi::c_void;

use cudarc::cublas::result::gemm_strided_batched_ex;
use cudarc::cublas::sys::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType_t,
};
use sonic_core::{DType, Result};

use super::device::CudaBackend;
use super::launch::i32_arg;

/// `C = alpha · op(A) · op(B) + beta · C` on row-major matrices, batched with strides.
/// `lda`, `ldb`, `ldc` are the row lengths of the matrices as stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowMajorGemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_trans: bool,
    pub b_trans: bool,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
    pub batch: usize,
    pub alpha: f32,
    pub beta: f32,
}

impl RowMajorGemm {
    /// A plain `[m, k] · [k, n]` product of contiguous matrices.
    pub fn plain(m: usize, n: usize, k: usize) -> Self {
        RowMajorGemm {
            m,
            n,
            k,
            a_trans: false,
            b_trans: false,
            lda: k,
            ldb: n,
            ldc: n,
            stride_a: m * k,
            stride_b: k * n,
            stride_c: m * n,
            batch: 1,
            alpha: 1.0,
            beta: 0.0,
        }
    }
}

fn data_type(dtype: DType) -> cudaDataType_t {
    match dtype {
        DType::F32 => cudaDataType_t::CUDA_R_32F,
        DType::F16 => cudaDataType_t::CUDA_R_16F,
        DType::BF16 => cudaDataType_t::CUDA_R_16BF,
    }
}

fn op(trans: bool) -> cublasOperation_t {
    if trans {
        cublasOperation_t::CUBLAS_OP_T
    } else {
        cublasOperation_t::CUBLAS_OP_N
    }
}

impl CudaBackend {
    /// Runs `g` on device pointers `a`, `b`, `c` (byte addresses of the first matrices).
    ///
    /// cuBLAS is column-major and a row-major matrix is its transpose, so `Cᵀ = Bᵀ·Aᵀ` is
    /// computed with the operands swapped.
    pub(crate) fn gemm(
        &self,
        dtype: DType,
        g: &RowMajorGemm,
        a: u64,
        b: u64,
        c: u64,
    ) -> Result<()> {
        if g.m == 0 || g.n == 0 || g.batch == 0 {
            return Ok(());
        }
        let op_name = "gemm";
        // cuBLAS works on the calling thread's current context.
        self.ctx.bind_to_thread().map_err(|e| self.error(e))?;
        let ty = data_type(dtype);
        // SAFETY: the callers size every buffer for `batch` matrices with these strides and
        // leading dimensions; alpha and beta are host f32 values (CUBLAS_POINTER_MODE_HOST,
        // the default) as CUBLAS_COMPUTE_32F requires.
        unsafe {
            gemm_strided_batched_ex(
                *self.blas.handle(),
                op(g.b_trans),
                op(g.a_trans),
                i32_arg(g.n, op_name)?,
                i32_arg(g.m, op_name)?,
                i32_arg(g.k, op_name)?,
                (&g.alpha as *const f32).cast::<c_void>(),
                b as *const c_void,
                ty,
                i32_arg(g.ldb.max(1), op_name)?,
                g.stride_b as i64,
                a as *const c_void,
                ty,
                i32_arg(g.lda.max(1), op_name)?,
                g.stride_a as i64,
                (&g.beta as *const f32).cast::<c_void>(),
                c as *mut c_void,
                ty,
                i32_arg(g.ldc.max(1), op_name)?,
                g.stride_c as i64,
                i32_arg(g.batch, op_name)?,
                cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| self.error(format!("cuBLAS GEMM {}×{}×{}: {e}", g.m, g.n, g.k)))
    }
}
