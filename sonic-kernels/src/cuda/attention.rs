//! Attention dispatch: the SVD UNet's three attention shapes each get their own kernel,
//! and anything else (f32 Whisper/CLIP, the VAE's single 512-wide head) goes through
//! cuBLAS with a softmax kernel in between.

use cudarc::driver::{LaunchConfig, PushKernelArg};
use sonic_core::{DType, Error, Result, Tensor};

use super::blas::RowMajorGemm;
use super::device::CudaBackend;
use super::invalid;
use super::launch::{grid_x, i32_arg, per_row, SequenceStrides};
use super::ops::ptr;
use crate::registry::{Kernel, ATTENTION_HEAD_DIMS};

/// Frames the temporal kernel holds per sequence (`MAX_FRAMES` of temporal_attention.cu).
pub(crate) const TEMPORAL_MAX_FRAMES: usize = 32;
/// Queries per flash-attention block and rows per K/V tile (flash_attention.cu).
const FLASH_BLOCK: usize = 64;
const FLASH_WARPS: u32 = 4;
/// Warps per block of the temporal kernel, when shared memory allows.
const TEMPORAL_WARPS: usize = 4;
/// Bound on the generic path's score buffer (elements), reached by chunking the batch.
const GENERIC_SCORES: usize = 1 << 28;

/// Which kernel computes an attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionPath {
    /// Tensor-core flash attention (f16/bf16, head dims 40/64/80/128).
    Flash,
    /// ≤ 32 queries and keys per sequence (temporal layers).
    Temporal,
    /// One key: the output is V broadcast (cross-attention to the image embedding).
    SingleKey,
    /// cuBLAS Q·Kᵀ, softmax kernel, cuBLAS P·V: any dtype and head dim.
    Generic,
}

/// Where the sequences of a temporal attention call live: sequence `n` starts at
/// `(n / inner)·outer + (n % inner)·inner_stride`, and its frames are `frame` apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TemporalLayout {
    pub sequences: usize,
    pub inner: usize,
    pub strides: SequenceStrides,
}

struct Dims {
    b: usize,
    lq: usize,
    lk: usize,
    heads: usize,
    d: usize,
    dv: usize,
}

fn dims(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize) -> Dims {
    Dims {
        b: q.dims()[0],
        lq: q.dims()[1],
        lk: k.dims()[1],
        heads,
        d: q.dims()[2] / heads,
        dv: v.dims()[2] / heads,
    }
}

fn specialised(d: &Dims) -> bool {
    d.d == d.dv && ATTENTION_HEAD_DIMS.contains(&d.d)
}

fn choose(d: &Dims, dtype: DType) -> AttentionPath {
    if d.lk == 1 {
        AttentionPath::SingleKey
    } else if specialised(d) && d.lq <= TEMPORAL_MAX_FRAMES && d.lk <= TEMPORAL_MAX_FRAMES {
        AttentionPath::Temporal
    } else if specialised(d) && dtype != DType::F32 && d.b * d.heads < 65536 {
        AttentionPath::Flash
    } else {
        AttentionPath::Generic
    }
}

/// Whether [`CudaBackend::spatial_temporal_attention`] can run a temporal-attention call:
/// one shape and dtype for q, k and v, a head dim with a compiled variant, and no more
/// frames than the kernel holds. Anything else takes the permute composition.
pub(crate) fn temporal_kernel_fits(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    frames: usize,
    heads: usize,
) -> bool {
    let head_dim = q.dims()[q.rank() - 1] / heads.max(1);
    k.dims() == q.dims()
        && v.dims() == q.dims()
        && k.dtype() == q.dtype()
        && v.dtype() == q.dtype()
        && ATTENTION_HEAD_DIMS.contains(&head_dim)
        && frames <= TEMPORAL_MAX_FRAMES
}

fn unsupported(path: AttentionPath, why: &str) -> Error {
    invalid(
        "attention",
        format!("the {path:?} kernel cannot run this call: {why}"),
    )
}

impl CudaBackend {
    /// Attention through a chosen kernel (tests and benches); `None` picks as the model
    /// path does.
    pub fn attention_with(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        scale: f32,
        path: AttentionPath,
    ) -> Result<Tensor> {
        Tensor::check_attention(q, k, v, heads)?;
        let d = dims(q, k, v, heads);
        if path == AttentionPath::SingleKey && d.lk != 1 {
            return Err(unsupported(path, &format!("{} keys", d.lk)));
        }
        self.attention_dispatch(q, k, v, heads, scale, Some(path))
    }

    pub(crate) fn attention_dispatch(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        scale: f32,
        path: Option<AttentionPath>,
    ) -> Result<Tensor> {
        let dtype = q.dtype();
        if k.dtype() != dtype || v.dtype() != dtype {
            return Err(invalid(
                "attention",
                "q, k and v must share a dtype on CUDA",
            ));
        }
        let d = dims(q, k, v, heads);
        let y = self.alloc([d.b, d.lq, d.heads * d.dv], dtype)?;
        if y.elem_count() == 0 {
            return Ok(y);
        }
        if d.lk == 0 {
            return Err(invalid("attention", "no keys"));
        }
        let path = path.unwrap_or_else(|| choose(&d, dtype));
        match path {
            AttentionPath::SingleKey => self.single_key(v, &y, &d)?,
            AttentionPath::Temporal => {
                let width = (d.heads * d.d) as i64;
                let qo = SequenceStrides {
                    outer: d.lq as i64 * width,
                    inner: 0,
                    frame: width,
                };
                let kv = SequenceStrides {
                    outer: d.lk as i64 * width,
                    inner: 0,
                    frame: width,
                };
                let layout = |strides| TemporalLayout {
                    sequences: d.b,
                    inner: 1,
                    strides,
                };
                self.temporal(
                    q,
                    k,
                    v,
                    &y,
                    heads,
                    (d.lq, d.lk),
                    (layout(qo), layout(kv)),
                    scale,
                )?
            }
            AttentionPath::Flash => self.flash(q, k, v, &y, &d, scale)?,
            AttentionPath::Generic => self.generic(q, k, v, &y, &d, scale)?,
        }
        Ok(y)
    }

    /// Temporal self-attention straight on the spatial layout: `q`, `k`, `v` are
    /// `[b·frames, hw, heads·d]` and attention runs over the frames of each (b, pixel).
    /// The output has the same layout, so neither side needs a permute.
    pub fn spatial_temporal_attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        frames: usize,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        let op = "temporal_attention";
        if q.rank() != 3 || k.dims() != q.dims() || v.dims() != q.dims() {
            return Err(invalid(
                op,
                "q, k and v must share one [b·frames, hw, c] shape",
            ));
        }
        let (bf, hw, c) = (q.dims()[0], q.dims()[1], q.dims()[2]);
        if frames == 0 || bf % frames != 0 || heads == 0 || c % heads != 0 {
            return Err(invalid(op, format!("{bf} rows are not a multiple of {frames} frames, or {c} channels of {heads} heads")));
        }
        let strides = SequenceStrides {
            outer: (frames * hw * c) as i64,
            inner: c as i64,
            frame: (hw * c) as i64,
        };
        let layout = TemporalLayout {
            sequences: bf / frames * hw,
            inner: hw,
            strides,
        };
        let y = self.alloc(q.shape().clone(), q.dtype())?;
        if y.elem_count() > 0 {
            self.temporal(
                q,
                k,
                v,
                &y,
                heads,
                (frames, frames),
                (layout, layout),
                scale,
            )?;
        }
        Ok(y)
    }

    fn single_key(&self, v: &Tensor, y: &Tensor, d: &Dims) -> Result<()> {
        let f = self.function(
            Kernel::SingleKeyAttention,
            v.dtype(),
            None,
            "single_key_attention",
            0,
        )?;
        let (vp, yp) = (ptr(v, "attention")?, ptr(y, "attention")?);
        let lq = i32_arg(d.lq, "attention")?;
        let (width, total) = ((d.heads * d.dv) as i64, y.elem_count() as i64);
        // SAFETY: v is [b, 1, width] and y [b, lq, width].
        unsafe {
            launch!(self, f, super::launch::elementwise(y.elem_count()); vp, yp, lq, width, total)
        }?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn temporal(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        y: &Tensor,
        heads: usize,
        (lq, lk): (usize, usize),
        (qo, kv): (TemporalLayout, TemporalLayout),
        scale: f32,
    ) -> Result<()> {
        let path = AttentionPath::Temporal;
        let head_dim = q.dims()[q.rank() - 1] / heads;
        if !ATTENTION_HEAD_DIMS.contains(&head_dim) {
            return Err(unsupported(path, &format!("head dim {head_dim}")));
        }
        if lq > TEMPORAL_MAX_FRAMES || lk > TEMPORAL_MAX_FRAMES {
            return Err(unsupported(
                path,
                &format!("{lq} queries, {lk} keys (max {TEMPORAL_MAX_FRAMES})"),
            ));
        }
        let pairs = head_dim / 2;
        let pair_bytes = 2 * q.dtype().size_in_bytes();
        let per_warp = (TEMPORAL_MAX_FRAMES * (pairs + 1) + 2 * lk * pairs) * pair_bytes;
        let warps = (self.max_smem / per_warp).clamp(1, TEMPORAL_WARPS);
        let smem = warps * per_warp;
        let f = self.function(
            Kernel::TemporalAttention,
            q.dtype(),
            Some(head_dim),
            "temporal_attention",
            smem,
        )?;
        let tasks = qo.sequences * heads;
        let cfg = LaunchConfig {
            grid_dim: (grid_x(tasks.div_ceil(warps), "attention")?, 1, 1),
            block_dim: (32 * warps as u32, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        let op = "attention";
        let (qp, kp, vp, yp) = (ptr(q, op)?, ptr(k, op)?, ptr(v, op)?, ptr(y, op)?);
        let ints = [qo.sequences, qo.inner, heads, lq, lk]
            .iter()
            .map(|&n| i32_arg(n, op))
            .collect::<Result<Vec<_>>>()?;
        let scale_log2 = scale * std::f32::consts::LOG2_E;
        // SAFETY: the layouts address every frame of every sequence inside q, k, v and y
        // (checked by the callers); shared memory is sized for `warps` warps.
        unsafe {
            launch!(self, f, cfg; qp, kp, vp, yp, ints[0], ints[1], ints[2], ints[3], ints[4], qo.strides, kv.strides, scale_log2)
        }?;
        Ok(())
    }

    fn flash(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        y: &Tensor,
        d: &Dims,
        scale: f32,
    ) -> Result<()> {
        let path = AttentionPath::Flash;
        if !specialised(d) {
            return Err(unsupported(path, &format!("head dims {}/{}", d.d, d.dv)));
        }
        if q.dtype() == DType::F32 {
            return Err(unsupported(path, "f32 (tensor cores take f16 or bf16)"));
        }
        let bh = u32::try_from(d.b * d.heads)
            .ok()
            .filter(|&n| n < 65536)
            .ok_or_else(|| unsupported(path, "more than 65535 batch × heads"))?;
        let d_smem = d.d.div_ceil(64) * 64;
        let smem = 5 * FLASH_BLOCK * d_smem * 2;
        let f = self.function(
            Kernel::FlashAttention,
            q.dtype(),
            Some(d.d),
            "flash_attention_fwd",
            smem,
        )?;
        let cfg = LaunchConfig {
            grid_dim: (grid_x(d.lq.div_ceil(FLASH_BLOCK), "attention")?, bh, 1),
            block_dim: (32 * FLASH_WARPS, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        let op = "attention";
        let (qp, kp, vp, yp) = (ptr(q, op)?, ptr(k, op)?, ptr(v, op)?, ptr(y, op)?);
        let ints = [d.heads, d.lq, d.lk]
            .iter()
            .map(|&n| i32_arg(n, op))
            .collect::<Result<Vec<_>>>()?;
        let width = d.heads * d.d;
        let strides = [
            d.lq * width,
            width,
            d.lk * width,
            width,
            d.lq * width,
            width,
        ]
        .map(|s| s as i64);
        let scale_log2 = scale * std::f32::consts::LOG2_E;
        // SAFETY: q/y are [b, lq, heads·d] and k/v [b, lk, heads·d], contiguous, so every
        // row is 16-byte aligned (d is a multiple of 8); shared memory matches the kernel.
        unsafe {
            launch!(self, f, cfg; qp, kp, vp, yp, ints[0], ints[1], ints[2], strides[0], strides[1], strides[2], strides[3], strides[4], strides[5], scale_log2)
        }?;
        Ok(())
    }

    /// Per head: S = scale·Q·Kᵀ (cuBLAS), softmax over keys, O = P·V (cuBLAS) written into
    /// the head's columns of the output. The batch is chunked to bound the score buffer.
    fn generic(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        y: &Tensor,
        d: &Dims,
        scale: f32,
    ) -> Result<()> {
        let dtype = q.dtype();
        let size = dtype.size_in_bytes();
        let chunk = (GENERIC_SCORES / (d.lq * d.lk).max(1)).clamp(1, d.b);
        let scores = self.alloc([chunk, d.lq, d.lk], dtype)?;
        let probs = self.alloc([chunk, d.lq, d.lk], dtype)?;
        let op = "attention";
        let (qp, kp, vp, yp) = (ptr(q, op)?, ptr(k, op)?, ptr(v, op)?, ptr(y, op)?);
        let (sp, pp) = (ptr(&scores, op)?, ptr(&probs, op)?);
        let (qw, vw) = (d.heads * d.d, d.heads * d.dv);
        let mut b0 = 0;
        while b0 < d.b {
            let batch = chunk.min(d.b - b0);
            for h in 0..d.heads {
                let qk = RowMajorGemm {
                    b_trans: true,
                    lda: qw,
                    ldb: qw,
                    stride_a: d.lq * qw,
                    stride_b: d.lk * qw,
                    batch,
                    alpha: scale,
                    ..RowMajorGemm::plain(d.lq, d.lk, d.d)
                };
                let q_at = qp + ((b0 * d.lq * qw + h * d.d) * size) as u64;
                let k_at = kp + ((b0 * d.lk * qw + h * d.d) * size) as u64;
                self.gemm(dtype, &qk, q_at, k_at, sp)?;
                self.softmax_rows(sp, pp, dtype, batch * d.lq, d.lk)?;
                let pv = RowMajorGemm {
                    ldb: vw,
                    ldc: vw,
                    stride_b: d.lk * vw,
                    stride_c: d.lq * vw,
                    batch,
                    ..RowMajorGemm::plain(d.lq, d.dv, d.lk)
                };
                let v_at = vp + ((b0 * d.lk * vw + h * d.dv) * size) as u64;
                let y_at = yp + ((b0 * d.lq * vw + h * d.dv) * size) as u64;
                self.gemm(dtype, &pv, pp, v_at, y_at)?;
            }
            b0 += batch;
        }
        Ok(())
    }

    /// Softmax of `rows` rows of `width` from device address `x` into `y`.
    pub(crate) fn softmax_rows(
        &self,
        x: u64,
        y: u64,
        dtype: DType,
        rows: usize,
        width: usize,
    ) -> Result<()> {
        if rows == 0 || width == 0 {
            return Ok(());
        }
        let f = self.function(Kernel::Softmax, dtype, None, "softmax_rows", 0)?;
        let w = i32_arg(width, "softmax")?;
        // SAFETY: x and y hold rows × width elements of `dtype`.
        unsafe { launch!(self, f, per_row(rows, "softmax")?; x, y, w) }?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(b: usize, lq: usize, lk: usize, heads: usize, d: usize) -> Dims {
        Dims {
            b,
            lq,
            lk,
            heads,
            d,
            dv: d,
        }
    }

    #[test]
    fn svd_shapes_pick_their_kernels() {
        let cases = [
            // Spatial self-attention at 64×64 latents, 5 heads of 64.
            (d(50, 4096, 4096, 5, 64), DType::F16, AttentionPath::Flash),
            // Temporal attention: 25 frames for each of b·hw sequences.
            (d(8192, 25, 25, 5, 64), DType::BF16, AttentionPath::Temporal),
            // Cross-attention to the single image-embedding token.
            (d(50, 4096, 1, 5, 64), DType::F16, AttentionPath::SingleKey),
            // f32 (Whisper) and the VAE's one 512-wide head go through cuBLAS.
            (d(1, 1500, 1500, 8, 64), DType::F32, AttentionPath::Generic),
            (
                d(14, 4096, 4096, 1, 512),
                DType::F16,
                AttentionPath::Generic,
            ),
        ];
        for (dims, dtype, path) in cases {
            assert_eq!(choose(&dims, dtype), path, "lq {} lk {}", dims.lq, dims.lk);
        }
    }
}
