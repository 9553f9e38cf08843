//! sonic-core's `Backend` on CUDA: each op checks what the kernels need, allocates the
//! output and launches. Arguments were validated by the `Tensor` method that called it.

use cudarc::driver::{LaunchConfig, PushKernelArg};
use half::{bf16, f16};
use sonic_core::backend::{
    group_norm_residual_composed, prelu_composed, temporal_attention_composed, Backend, BinaryOp,
    ConvParams, CpuStorage, GridPadding, ResizeMode, Storage, UnaryOp,
};
use sonic_core::{DType, Device, Error, Result, Shape, Tensor};

use super::attention::temporal_kernel_fits;
use super::blas::RowMajorGemm;
use super::device::CudaBackend;
use super::invalid;
use super::launch::{
    elementwise, grid_x, i32_arg, per_row, Broadcast, GroupShape, Permutation, TransposedConv,
    MAX_RANK, THREADS,
};
use super::storage::cuda_storage;
use crate::registry::Kernel;

/// Static shared memory of the GroupNorm kernels (32 floats of reduction scratch), rounded
/// up generously.
const GROUP_NORM_STATIC_SMEM: usize = 1024;
/// Elements per chunk of the split GroupNorm path (32 KiB of f32 in shared memory).
const GROUP_NORM_CHUNK: usize = 8192;

/// Device address of a tensor on this backend.
pub(crate) fn ptr(t: &Tensor, op: &'static str) -> Result<u64> {
    Ok(cuda_storage(t, op)?.ptr())
}

/// Address of an optional tensor; kernels read a null pointer as "absent".
pub(crate) fn opt_ptr(t: Option<&Tensor>, op: &'static str) -> Result<u64> {
    t.map_or(Ok(0), |t| ptr(t, op))
}

pub(crate) fn same_dtype(
    op: &'static str,
    expected: DType,
    tensors: &[Option<&Tensor>],
) -> Result<()> {
    for t in tensors.iter().flatten() {
        if t.dtype() != expected {
            return Err(invalid(
                op,
                format!("mixed dtypes {expected} and {} on CUDA", t.dtype()),
            ));
        }
    }
    Ok(())
}

fn unary_code(op: UnaryOp) -> i32 {
    match op {
        UnaryOp::Neg => 0,
        UnaryOp::Abs => 1,
        UnaryOp::Exp => 2,
        UnaryOp::Log => 3,
        UnaryOp::Sqrt => 4,
        UnaryOp::Square => 5,
        UnaryOp::Recip => 6,
        UnaryOp::Tanh => 7,
        UnaryOp::Sin => 8,
        UnaryOp::Cos => 9,
        UnaryOp::Relu => 10,
        UnaryOp::Sigmoid => 11,
        UnaryOp::Silu => 12,
        UnaryOp::GeluErf => 13,
        UnaryOp::GeluTanh => 14,
        UnaryOp::QuickGelu => 15,
    }
}

fn binary_code(op: BinaryOp) -> i32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Minimum => 5,
    }
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Strides of `operand` over `out` under NumPy broadcasting (0 on broadcast axes).
fn broadcast_strides(operand: &[usize], out: &[usize]) -> [i64; MAX_RANK] {
    let mut result = [0i64; MAX_RANK];
    let own = strides(operand);
    let lead = out.len() - operand.len();
    for (i, (&d, &s)) in operand.iter().zip(&own).enumerate() {
        result[lead + i] = if d == 1 { 0 } else { s as i64 };
    }
    result
}

fn check_rank(op: &'static str, rank: usize) -> Result<()> {
    if rank > MAX_RANK {
        return Err(invalid(
            op,
            format!("rank {rank} exceeds the CUDA limit of {MAX_RANK}"),
        ));
    }
    Ok(())
}

fn host_bytes(storage: &CpuStorage) -> &[u8] {
    match storage {
        CpuStorage::F32(v) => bytemuck::cast_slice(v),
        CpuStorage::F16(v) => bytemuck::cast_slice(v),
        CpuStorage::BF16(v) => bytemuck::cast_slice(v),
    }
}

impl CudaBackend {
    fn launch_unary_like(
        &self,
        x: &Tensor,
        entry: &'static str,
        a: f32,
        b: f32,
        code: i32,
    ) -> Result<Tensor> {
        let y = self.alloc(x.shape().clone(), x.dtype())?;
        let n = x.elem_count();
        let f = self.function(Kernel::Elementwise, x.dtype(), None, entry, 0)?;
        let (xp, yp, count) = (ptr(x, entry)?, ptr(&y, entry)?, n as i64);
        let mut builder = self.stream.launch_builder(&f);
        builder.arg(&xp).arg(&yp).arg(&count);
        if entry == "unary" {
            builder.arg(&code);
        } else {
            builder.arg(&a).arg(&b);
        }
        // SAFETY: x and y hold n elements of the variant's dtype; the arguments follow
        // the kernel's signature in elementwise.cu.
        unsafe { builder.launch(elementwise(n)) }.map_err(|e| self.error(e))?;
        Ok(y)
    }

    /// `y[r·dst_pitch + dst_offset + c] = x[r·src_pitch + src_offset + c]`.
    fn copy_rows(
        &self,
        x: &Tensor,
        y: &Tensor,
        rows: usize,
        width: usize,
        src: (usize, usize),
        dst: (usize, usize),
    ) -> Result<()> {
        let n = rows * width;
        if n == 0 {
            return Ok(());
        }
        let f = self.function(Kernel::Layout, x.dtype(), None, "copy_rows", 0)?;
        let (xp, yp) = (ptr(x, "copy")?, ptr(y, "copy")?);
        let args = [rows, width, src.0, src.1, dst.0, dst.1].map(|v| v as i64);
        // SAFETY: the caller sizes x and y for these rows, pitches and offsets.
        unsafe {
            launch!(self, f, elementwise(n); xp, yp, args[0], args[1], args[2], args[3], args[4], args[5])
        }?;
        Ok(())
    }

    /// `y = a · b` on whole tensors of one dtype.
    fn gemm_tensors(&self, g: &RowMajorGemm, a: &Tensor, b: &Tensor, y: &Tensor) -> Result<()> {
        let (ap, bp, yp) = (ptr(a, "gemm")?, ptr(b, "gemm")?, ptr(y, "gemm")?);
        self.gemm(a.dtype(), g, ap, bp, yp)
    }

    /// Sums axis `axis` of `x` into a size-1 axis.
    fn sum_axis(&self, x: &Tensor, axis: usize) -> Result<Tensor> {
        let dims = x.dims();
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let mut shape = dims.to_vec();
        shape[axis] = 1;
        let y = self.alloc(shape, x.dtype())?;
        let f = self.function(Kernel::Layout, x.dtype(), None, "sum_axis", 0)?;
        let (xp, yp) = (ptr(x, "sum")?, ptr(&y, "sum")?);
        let (o, s, i) = (outer as i64, dims[axis] as i64, inner as i64);
        // SAFETY: x is [outer, size, inner] and y [outer, 1, inner], contiguous.
        unsafe { launch!(self, f, elementwise(outer * inner); xp, yp, o, s, i) }?;
        Ok(y)
    }

    /// Adds `bias [c]` along axis 1 of `y [n, c, …]` (convolution) or along the last axis.
    pub(crate) fn add_bias(&self, y: Tensor, bias: &Tensor, axis: usize) -> Result<Tensor> {
        let mut shape = vec![1; y.rank()];
        shape[axis] = bias.elem_count();
        let bias = bias.reshape(shape)?;
        self.binary(&y, &bias, BinaryOp::Add, &y.shape().clone())
    }

    /// GroupNorm with an optional residual added first: `act(GN(x + residual))`. The
    /// residual has `x`'s shape or is one value per (n, c), `[n, c, 1, …]`.
    #[allow(clippy::too_many_arguments)]
    pub fn group_norm_residual(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        let op = "group_norm";
        let dtype = x.dtype();
        same_dtype(op, dtype, &[residual, weight, bias])?;
        let residual_inner = match residual {
            None => 1,
            Some(r) => residual_inner(x.dims(), r.dims()).ok_or_else(|| Error::ShapeMismatch {
                op,
                expected: x.shape().clone(),
                found: r.shape().clone(),
            })?,
        };
        let (n, c) = (x.dims()[0], x.dims()[1]);
        if groups == 0 || c % groups != 0 {
            return Err(invalid(op, format!("{c} channels in {groups} groups")));
        }
        let hw = x.elem_count() / (n * c).max(1);
        let y = self.alloc(x.shape().clone(), dtype)?;
        let group_len = c / groups * hw;
        if y.elem_count() == 0 {
            return Ok(y);
        }
        let shape = GroupShape {
            channels: i32_arg(c, op)?,
            groups: i32_arg(groups, op)?,
            hw: hw as i64,
            residual_inner: residual_inner as i64,
        };
        let (xp, rp, wp, bp, yp) = (
            ptr(x, op)?,
            opt_ptr(residual, op)?,
            opt_ptr(weight, op)?,
            opt_ptr(bias, op)?,
            ptr(&y, op)?,
        );
        let silu = i32::from(silu);
        let fused_smem = group_len * 4;
        // The kernel's static scratch shares the opt-in limit with the dynamic part.
        if fused_smem + GROUP_NORM_STATIC_SMEM <= self.max_smem {
            let f = self.function(
                Kernel::GroupNorm,
                dtype,
                None,
                "group_norm_fused",
                fused_smem,
            )?;
            let cfg = LaunchConfig {
                grid_dim: (grid_x(n * groups, op)?, 1, 1),
                block_dim: (1024, 1, 1),
                shared_mem_bytes: fused_smem as u32,
            };
            // SAFETY: one block per (n, g) over contiguous groups of group_len elements;
            // shared memory holds the group as f32.
            unsafe { launch!(self, f, cfg; xp, rp, wp, bp, yp, shape, eps, silu) }?;
            return Ok(y);
        }
        // Split path: per-chunk moments, then merge and normalise.
        let chunks = group_len.div_ceil(GROUP_NORM_CHUNK);
        let stats = self.alloc([n * groups, chunks, 2], DType::F32)?;
        let sp = ptr(&stats, op)?;
        let chunk = GROUP_NORM_CHUNK as i64;
        let grid = (
            grid_x(chunks, op)?,
            u32::try_from(n * groups)
                .ok()
                .filter(|&g| g < 65536)
                .ok_or_else(|| invalid(op, "too many groups for the split path"))?,
            1,
        );
        let partial = self.function(
            Kernel::GroupNorm,
            dtype,
            None,
            "group_norm_partial",
            GROUP_NORM_CHUNK * 4,
        )?;
        let cfg = LaunchConfig {
            grid_dim: grid,
            block_dim: (THREADS * 2, 1, 1),
            shared_mem_bytes: (GROUP_NORM_CHUNK * 4) as u32,
        };
        // SAFETY: grid (chunks, n·groups); each block reads one chunk and writes its two
        // moments into `stats` [n·groups, chunks, 2].
        unsafe { launch!(self, partial, cfg; xp, rp, sp, shape, chunk) }?;
        let apply = self.function(Kernel::GroupNorm, dtype, None, "group_norm_apply", 0)?;
        let cfg = LaunchConfig {
            shared_mem_bytes: 0,
            ..cfg
        };
        // SAFETY: same grid; reads the moments written above (stream order) and writes
        // each chunk of y once.
        unsafe { launch!(self, apply, cfg; xp, rp, sp, wp, bp, yp, shape, chunk, eps, silu) }?;
        Ok(y)
    }
}

impl Backend for CudaBackend {
    fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    fn from_f32(&self, data: &[f32], shape: &Shape, dtype: DType) -> Result<Tensor> {
        match dtype {
            DType::F32 => self.upload_bytes(bytemuck::cast_slice(data), dtype, shape),
            DType::F16 => {
                let v: Vec<f16> = data.iter().map(|&x| f16::from_f32(x)).collect();
                self.upload_bytes(bytemuck::cast_slice(&v), dtype, shape)
            }
            DType::BF16 => {
                let v: Vec<bf16> = data.iter().map(|&x| bf16::from_f32(x)).collect();
                self.upload_bytes(bytemuck::cast_slice(&v), dtype, shape)
            }
        }
    }

    fn upload(&self, cpu: &Tensor) -> Result<Tensor> {
        match cpu.storage() {
            Storage::Cpu(s) => self.upload_bytes(host_bytes(s), s.dtype(), cpu.shape()),
            Storage::Device(_) => Err(invalid("upload", "not a CPU tensor")),
        }
    }

    fn download(&self, t: &Tensor) -> Result<Tensor> {
        let storage = cuda_storage(t, "download")?;
        let bytes: Vec<u8> = if t.elem_count() == 0 {
            Vec::new()
        } else {
            self.stream
                .clone_dtoh(storage.buffer())
                .map_err(|e| self.error(e))?
        };
        let bytes = &bytes[..t.elem_count() * t.dtype().size_in_bytes()];
        let cpu = match t.dtype() {
            DType::F32 => CpuStorage::F32(bytemuck::pod_collect_to_vec::<u8, f32>(bytes).into()),
            DType::F16 => CpuStorage::F16(bytemuck::pod_collect_to_vec(bytes)),
            DType::BF16 => CpuStorage::BF16(bytemuck::pod_collect_to_vec(bytes)),
        };
        Tensor::from_storage(Storage::Cpu(cpu), t.shape().clone())
    }

    fn to_dtype(&self, t: &Tensor, dtype: DType) -> Result<Tensor> {
        let entry = match dtype {
            DType::F32 => "convert_to_f32",
            DType::F16 => "convert_to_f16",
            DType::BF16 => "convert_to_bf16",
        };
        let y = self.alloc(t.shape().clone(), dtype)?;
        let n = t.elem_count();
        let f = self.function(Kernel::Elementwise, t.dtype(), None, entry, 0)?;
        let (xp, yp, count) = (ptr(t, "to_dtype")?, ptr(&y, "to_dtype")?, n as i64);
        // SAFETY: x holds n elements of its dtype, y n of the target dtype.
        unsafe { launch!(self, f, elementwise(n); xp, yp, count) }?;
        Ok(y)
    }

    fn unary(&self, x: &Tensor, op: UnaryOp) -> Result<Tensor> {
        self.launch_unary_like(x, "unary", 0.0, 0.0, unary_code(op))
    }

    fn affine(&self, x: &Tensor, mul: f32, add: f32) -> Result<Tensor> {
        self.launch_unary_like(x, "affine", mul, add, 0)
    }

    fn clamp(&self, x: &Tensor, min: f32, max: f32) -> Result<Tensor> {
        self.launch_unary_like(x, "clamp", min, max, 0)
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp, out_shape: &Shape) -> Result<Tensor> {
        let name = "binary";
        if a.dtype() != b.dtype() {
            // PyTorch's promotion: any two different float dtypes meet in f32.
            let (a, b) = (self.to_dtype(a, DType::F32)?, self.to_dtype(b, DType::F32)?);
            return self.binary(&a, &b, op, out_shape);
        }
        let out = out_shape.dims();
        check_rank(name, out.len())?;
        let mut shape = Broadcast {
            rank: out.len() as i32,
            a_stride: broadcast_strides(a.dims(), out),
            b_stride: broadcast_strides(b.dims(), out),
            ..Broadcast::default()
        };
        for (s, &d) in shape.shape.iter_mut().zip(out) {
            *s = d as i64;
        }
        let y = self.alloc(out_shape.clone(), a.dtype())?;
        let n = y.elem_count();
        let f = self.function(Kernel::Elementwise, a.dtype(), None, "binary_broadcast", 0)?;
        let (ap, bp, yp) = (ptr(a, name)?, ptr(b, name)?, ptr(&y, name)?);
        let (count, code) = (n as i64, binary_code(op));
        // SAFETY: the strides address a and b within their shapes for every output index.
        unsafe { launch!(self, f, elementwise(n); ap, bp, yp, count, code, shape) }?;
        Ok(y)
    }

    fn matmul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        same_dtype("matmul", a.dtype(), &[Some(b)])?;
        let (ad, bd) = (a.dims(), b.dims());
        let (m, k, n) = (ad[ad.len() - 2], ad[ad.len() - 1], bd[bd.len() - 1]);
        let batch: usize = ad[..ad.len() - 2].iter().product();
        let mut shape = ad[..ad.len() - 2].to_vec();
        shape.extend([m, n]);
        let y = self.alloc(shape, a.dtype())?;
        let gemm = RowMajorGemm {
            batch,
            stride_b: if bd.len() == 2 { 0 } else { k * n },
            ..RowMajorGemm::plain(m, n, k)
        };
        self.gemm_tensors(&gemm, a, b, &y)?;
        Ok(y)
    }

    fn linear(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        same_dtype("linear", x.dtype(), &[Some(w), bias])?;
        let (n, k) = (w.dims()[0], w.dims()[1]);
        let rows = x.elem_count() / k.max(1);
        let mut shape = x.dims().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        let y = self.alloc(shape, x.dtype())?;
        let gemm = RowMajorGemm {
            b_trans: true,
            ldb: k,
            ..RowMajorGemm::plain(rows, n, k)
        };
        self.gemm_tensors(&gemm, x, w, &y)?;
        match bias {
            Some(bias) => {
                let axis = y.rank() - 1;
                self.add_bias(y, bias, axis)
            }
            None => Ok(y),
        }
    }

    fn conv(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        p: &ConvParams,
    ) -> Result<Tensor> {
        self.conv_dispatch(x, w, bias, p, None)
    }

    fn group_norm(
        &self,
        x: &Tensor,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        self.group_norm_residual(x, None, groups, weight, bias, eps, silu)
    }

    fn layer_norm(
        &self,
        x: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        let op = "layer_norm";
        same_dtype(op, x.dtype(), &[weight, bias])?;
        let width = x.dims()[x.rank() - 1];
        let rows = x.elem_count() / width.max(1);
        let y = self.alloc(x.shape().clone(), x.dtype())?;
        if rows == 0 || width == 0 {
            return Ok(y);
        }
        let f = self.function(Kernel::LayerNorm, x.dtype(), None, "layer_norm", 0)?;
        let (xp, wp, bp, yp) = (
            ptr(x, op)?,
            opt_ptr(weight, op)?,
            opt_ptr(bias, op)?,
            ptr(&y, op)?,
        );
        let w = i32_arg(width, op)?;
        // SAFETY: one block per row of `width` elements.
        unsafe { launch!(self, f, per_row(rows, op)?; xp, wp, bp, yp, w, eps) }?;
        Ok(y)
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.alloc(x.shape().clone(), x.dtype())?;
        let width = x.dims()[x.rank() - 1];
        self.softmax_rows(
            ptr(x, "softmax")?,
            ptr(&y, "softmax")?,
            x.dtype(),
            x.elem_count() / width.max(1),
            width,
        )?;
        Ok(y)
    }

    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        self.attention_dispatch(q, k, v, heads, scale, None)
    }

    fn temporal_attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        frames: usize,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        if temporal_kernel_fits(q, k, v, frames, heads) {
            self.spatial_temporal_attention(q, k, v, frames, heads, scale)
        } else {
            temporal_attention_composed(q, k, v, frames, heads, scale)
        }
    }

    fn group_norm_residual(
        &self,
        x: &Tensor,
        residual: &Tensor,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        // The kernels read a full or a per-channel residual in place; any other broadcast
        // would have to be expanded first, which is the add itself.
        if residual_inner(x.dims(), residual.dims()).is_some() && residual.dtype() == x.dtype() {
            CudaBackend::group_norm_residual(
                self,
                x,
                Some(residual),
                groups,
                weight,
                bias,
                eps,
                silu,
            )
        } else {
            group_norm_residual_composed(x, residual, groups, weight, bias, eps, silu)
        }
    }

    fn geglu(&self, x: &Tensor) -> Result<Tensor> {
        let width = x.dims()[x.rank() - 1];
        let half = width / 2;
        let mut shape = x.dims().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = half;
        }
        let y = self.alloc(shape, x.dtype())?;
        let n = y.elem_count();
        let f = self.function(Kernel::Geglu, x.dtype(), None, "geglu", 0)?;
        let (xp, yp, h, total) = (ptr(x, "geglu")?, ptr(&y, "geglu")?, half as i64, n as i64);
        // SAFETY: x is [rows, 2·half], y [rows, half].
        unsafe { launch!(self, f, elementwise(n); xp, yp, h, total) }?;
        Ok(y)
    }

    fn permute(&self, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
        check_rank("permute", dims.len())?;
        let in_strides = strides(x.dims());
        let out: Vec<usize> = dims.iter().map(|&d| x.dims()[d]).collect();
        let mut p = Permutation {
            rank: dims.len() as i32,
            ..Permutation::default()
        };
        for (i, &d) in dims.iter().enumerate() {
            p.shape[i] = out[i] as i64;
            p.in_stride[i] = in_strides[d] as i64;
        }
        let y = self.alloc(out, x.dtype())?;
        let n = y.elem_count();
        let f = self.function(Kernel::Layout, x.dtype(), None, "permute", 0)?;
        let (xp, yp, count) = (ptr(x, "permute")?, ptr(&y, "permute")?, n as i64);
        // SAFETY: the permutation addresses x within its shape for every output index.
        unsafe { launch!(self, f, elementwise(n); xp, yp, count, p) }?;
        Ok(y)
    }

    fn concat(&self, xs: &[&Tensor], axis: usize) -> Result<Tensor> {
        let first = xs.first().ok_or_else(|| invalid("cat", "no tensors"))?;
        same_dtype(
            "cat",
            first.dtype(),
            &xs.iter().map(|t| Some(*t)).collect::<Vec<_>>(),
        )?;
        let mut shape = first.dims().to_vec();
        shape[axis] = xs.iter().map(|t| t.dims()[axis]).sum();
        let outer: usize = shape[..axis].iter().product();
        let pitch: usize = shape[axis..].iter().product();
        let y = self.alloc(shape, first.dtype())?;
        let mut offset = 0;
        for t in xs {
            let width: usize = t.dims()[axis..].iter().product();
            self.copy_rows(t, &y, outer, width, (width, 0), (pitch, offset))?;
            offset += width;
        }
        Ok(y)
    }

    fn narrow(&self, x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        let dims = x.dims();
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let mut shape = dims.to_vec();
        shape[axis] = len;
        let y = self.alloc(shape, x.dtype())?;
        let width = len * inner;
        self.copy_rows(
            x,
            &y,
            outer,
            width,
            (dims[axis] * inner, start * inner),
            (width, 0),
        )?;
        Ok(y)
    }

    fn index_select(&self, x: &Tensor, axis: usize, indices: &[usize]) -> Result<Tensor> {
        let dims = x.dims();
        let outer: usize = dims[..axis].iter().product();
        let inner: usize = dims[axis + 1..].iter().product();
        let mut shape = dims.to_vec();
        shape[axis] = indices.len();
        let y = self.alloc(shape, x.dtype())?;
        let n = y.elem_count();
        if n == 0 {
            return Ok(y);
        }
        let index: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let index = self.stream.clone_htod(&index).map_err(|e| self.error(e))?;
        let f = self.function(Kernel::Layout, x.dtype(), None, "index_select", 0)?;
        let (xp, yp) = (ptr(x, "index_select")?, ptr(&y, "index_select")?);
        let args = [outer, indices.len(), dims[axis], inner].map(|v| v as i64);
        // SAFETY: every index was checked against the axis by the Tensor method.
        unsafe {
            launch!(self, f, elementwise(n); xp, index, yp, args[0], args[1], args[2], args[3])
        }?;
        Ok(y)
    }

    fn sum_keepdim(&self, x: &Tensor, axes: &[usize]) -> Result<Tensor> {
        let mut out = x.clone();
        for &axis in axes {
            out = self.sum_axis(&out, axis)?;
        }
        Ok(out)
    }

    fn upsample_nearest2d(&self, x: &Tensor, scale_h: usize, scale_w: usize) -> Result<Tensor> {
        let op = "upsample_nearest2d";
        let (h, w) = plane_dims(x);
        let (y, planes) = self.alloc_planes(x, h * scale_h, w * scale_w)?;
        let n = y.elem_count();
        let f = self.function(Kernel::Layout, x.dtype(), None, op, 0)?;
        let (xp, yp) = (ptr(x, op)?, ptr(&y, op)?);
        let ints = i32_args(&[h, w, scale_h, scale_w], op)?;
        // SAFETY: x is [planes, h, w], y [planes, h·sh, w·sw].
        unsafe {
            launch!(self, f, elementwise(n); xp, yp, planes, ints[0], ints[1], ints[2], ints[3])
        }?;
        Ok(y)
    }

    fn resize2d(
        &self,
        x: &Tensor,
        out_h: usize,
        out_w: usize,
        mode: ResizeMode,
        align_corners: bool,
    ) -> Result<Tensor> {
        let op = "resize2d";
        let (h, w) = plane_dims(x);
        let (y, planes) = self.alloc_planes(x, out_h, out_w)?;
        let n = y.elem_count();
        let f = self.function(Kernel::Layout, x.dtype(), None, op, 0)?;
        let (xp, yp) = (ptr(x, op)?, ptr(&y, op)?);
        let ints = i32_args(&[h, w, out_h, out_w], op)?;
        let bicubic = i32::from(mode == ResizeMode::Bicubic);
        let align = i32::from(align_corners);
        // SAFETY: x is [planes, h, w], y [planes, out_h, out_w]; taps are clamped in-range.
        unsafe {
            launch!(self, f, elementwise(n); xp, yp, planes, ints[0], ints[1], ints[2], ints[3], bicubic, align)
        }?;
        Ok(y)
    }

    fn conv_transpose2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        let op = "conv_transpose2d";
        same_dtype(op, x.dtype(), &[Some(w), bias])?;
        let g = transposed_conv(x.dims(), w.dims(), stride, padding)?;
        let shape = [x.dims()[0], w.dims()[1], g.out_h as usize, g.out_w as usize];
        let y = self.alloc(shape, x.dtype())?;
        let n = y.elem_count();
        let f = self.function(Kernel::Sampling, x.dtype(), None, op, 0)?;
        let (xp, wp, bp, yp) = (ptr(x, op)?, ptr(w, op)?, opt_ptr(bias, op)?, ptr(&y, op)?);
        let count = n as i64;
        // SAFETY: x is [n, c, h, w], w [c, o, kh, kw], bias [o] or null and y
        // [n, o, out_h, out_w] as `g` describes; every tap the kernel reads is in range.
        unsafe { launch!(self, f, elementwise(n); xp, wp, bp, yp, count, g) }?;
        Ok(y)
    }

    fn grid_sample(
        &self,
        x: &Tensor,
        grid: &Tensor,
        padding: GridPadding,
        align_corners: bool,
    ) -> Result<Tensor> {
        let op = "grid_sample";
        // The kernel reads coordinates as f32 whatever x's dtype: RIFE's grid is f32 (its
        // base grid is) even for a half-precision image, and half-precision coordinates
        // would not address the pixels of a wide image.
        let grid = match grid.dtype() {
            DType::F32 => grid.clone(),
            _ => self.to_dtype(grid, DType::F32)?,
        };
        let (xd, gd) = (x.dims(), grid.dims());
        let (n, c, h, w) = (xd[0], xd[1], xd[2], xd[3]);
        let (ho, wo) = (gd[1], gd[2]);
        let y = self.alloc([n, c, ho, wo], x.dtype())?;
        let points = n * ho * wo;
        let f = self.function(Kernel::Sampling, x.dtype(), None, op, 0)?;
        let (xp, gp, yp) = (ptr(x, op)?, ptr(&grid, op)?, ptr(&y, op)?);
        let ints = i32_args(&[c, h, w], op)?;
        let (count, out_plane) = (points as i64, (ho * wo) as i64);
        let border = match padding {
            GridPadding::Zeros => 0i32,
            GridPadding::Border => 1,
        };
        let align = i32::from(align_corners);
        // SAFETY: x is [n, c, h, w], grid [n, ho, wo, 2] of f32 and y [n, c, ho, wo]; the
        // kernel reads only taps it has checked to be inside the plane.
        unsafe {
            launch!(self, f, elementwise(points); xp, gp, yp, count, ints[0], ints[1], ints[2], out_plane, border, align)
        }?;
        Ok(y)
    }

    fn max_pool2d(
        &self,
        x: &Tensor,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        let op = "max_pool2d";
        let (h, w) = plane_dims(x);
        let oh = pooled_len(h, kernel, stride, padding)?;
        let ow = pooled_len(w, kernel, stride, padding)?;
        let (y, _) = self.alloc_planes(x, oh, ow)?;
        let n = y.elem_count();
        let f = self.function(Kernel::Sampling, x.dtype(), None, op, 0)?;
        let (xp, yp, count) = (ptr(x, op)?, ptr(&y, op)?, n as i64);
        let ints = i32_args(&[h, w, oh, ow, kernel, stride, padding], op)?;
        // SAFETY: x is [planes, h, w], y [planes, oh, ow]; windows are clipped to the plane.
        unsafe {
            launch!(self, f, elementwise(n); xp, yp, count, ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6])
        }?;
        Ok(y)
    }

    fn prelu(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let op = "prelu";
        if weight.dtype() != x.dtype() {
            // The composition promotes mixed dtypes as the binary ops do.
            return prelu_composed(x, weight);
        }
        // A single slope is shared by every element; otherwise there is one per channel.
        let channels = if weight.elem_count() == 1 {
            1
        } else {
            x.dims()[1]
        };
        let inner = x.dims().iter().skip(2).product::<usize>().max(1);
        let y = self.alloc(x.shape().clone(), x.dtype())?;
        let n = y.elem_count();
        let f = self.function(Kernel::Elementwise, x.dtype(), None, op, 0)?;
        let (xp, wp, yp) = (ptr(x, op)?, ptr(weight, op)?, ptr(&y, op)?);
        let (count, inner, channels) = (n as i64, inner as i64, i32_arg(channels, op)?);
        // SAFETY: x and y hold n elements; weight holds `channels` slopes (or one), and
        // the slope index is taken modulo `channels`.
        unsafe { launch!(self, f, elementwise(n); xp, wp, yp, count, inner, channels) }?;
        Ok(y)
    }
}

/// The last two dimensions of `x`: the planes resampling kernels work on.
fn plane_dims(x: &Tensor) -> (usize, usize) {
    let r = x.rank();
    (x.dims()[r - 2], x.dims()[r - 1])
}

fn i32_args(values: &[usize], op: &'static str) -> Result<Vec<i32>> {
    values.iter().map(|&v| i32_arg(v, op)).collect()
}

/// How many consecutive elements of `x` share one element of a residual of shape `r` in the
/// GroupNorm kernels: 1 for a residual of `x`'s shape, the spatial size for one value per
/// (n, c); `None` for any other broadcast.
fn residual_inner(x: &[usize], r: &[usize]) -> Option<usize> {
    if r == x {
        return Some(1);
    }
    let per_channel =
        x.len() > 2 && r.len() == x.len() && r[..2] == x[..2] && r[2..].iter().all(|&d| d == 1);
    per_channel.then(|| x[2..].iter().product())
}

/// The sampling kernel's geometry of a transposed convolution of `x [n, c, h, w]` with
/// `w [c, o, kh, kw]`. Its index arithmetic is 32-bit up to the uncropped output length
/// `(h − 1)·stride + kh`, so that must fit as well as every size.
fn transposed_conv(
    xd: &[usize],
    wd: &[usize],
    stride: usize,
    padding: usize,
) -> Result<TransposedConv> {
    let op = "conv_transpose2d";
    if stride == 0 {
        return Err(invalid(op, "stride 0"));
    }
    let out_len = |input: usize, kernel: usize| -> Result<i32> {
        let full = input
            .checked_sub(1)
            .and_then(|v| v.checked_mul(stride))
            .and_then(|v| v.checked_add(kernel))
            .ok_or_else(|| invalid(op, format!("input {input} by stride {stride} overflows")))?;
        i32_arg(full, op)?;
        let out = padding
            .checked_mul(2)
            .and_then(|p| full.checked_sub(p))
            .filter(|&v| v > 0)
            .ok_or_else(|| invalid(op, format!("padding {padding} leaves an empty output")))?;
        i32_arg(out, op)
    };
    Ok(TransposedConv {
        in_channels: i32_arg(xd[1], op)?,
        out_channels: i32_arg(wd[1], op)?,
        in_h: i32_arg(xd[2], op)?,
        in_w: i32_arg(xd[3], op)?,
        kernel_h: i32_arg(wd[2], op)?,
        kernel_w: i32_arg(wd[3], op)?,
        out_h: out_len(xd[2], wd[2])?,
        out_w: out_len(xd[3], wd[3])?,
        stride: i32_arg(stride, op)?,
        pad: i32_arg(padding, op)?,
    })
}

/// Output length of a max pool along an axis of `len` (floor mode). The kernel's window
/// bounds reach `len + 2·padding`, which must fit its 32-bit arithmetic.
fn pooled_len(len: usize, kernel: usize, stride: usize, padding: usize) -> Result<usize> {
    let op = "max_pool2d";
    let padded = padding
        .checked_mul(2)
        .and_then(|p| p.checked_add(len))
        .ok_or_else(|| invalid(op, format!("padding {padding} overflows")))?;
    i32_arg(padded, op)?;
    if stride == 0 || kernel == 0 || kernel > padded {
        return Err(invalid(
            op,
            format!("kernel {kernel} and stride {stride} do not fit the padded length {padded}"),
        ));
    }
    Ok((padded - kernel) / stride + 1)
}

impl CudaBackend {
    /// `x`'s shape with its planes resized to `out_h`×`out_w`, allocated; and how many planes.
    fn alloc_planes(&self, x: &Tensor, out_h: usize, out_w: usize) -> Result<(Tensor, i64)> {
        let (h, w) = plane_dims(x);
        let r = x.rank();
        let mut shape = x.dims().to_vec();
        shape[r - 2] = out_h;
        shape[r - 1] = out_w;
        let planes = (x.elem_count() / (h * w).max(1)) as i64;
        Ok((self.alloc(shape, x.dtype())?, planes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_is_full_or_per_channel() {
        let x = [2, 6, 5, 7];
        assert_eq!(residual_inner(&x, &x), Some(1));
        assert_eq!(residual_inner(&x, &[2, 6, 1, 1]), Some(35));
        assert_eq!(
            residual_inner(&[2, 6, 3, 5, 7], &[2, 6, 1, 1, 1]),
            Some(105)
        );
        assert_eq!(residual_inner(&[2, 6], &[2, 6]), Some(1));
        // Broadcasts the kernels cannot read in place.
        for r in [
            &[1, 6, 1, 1][..],
            &[2, 1, 1, 1],
            &[6, 1, 1],
            &[2, 6, 5, 1],
            &[2, 6, 1, 7],
            &[1, 1, 1, 1],
            &[7],
        ] {
            assert_eq!(residual_inner(&x, r), None, "{r:?}");
        }
    }

    #[test]
    fn transposed_conv_geometry_follows_pytorch() {
        // RIFE's upsampling: 4×4 kernel, stride 2, padding 1 doubles the size.
        let g = transposed_conv(&[1, 16, 9, 13], &[16, 24, 4, 4], 2, 1).expect("geometry");
        assert_eq!(
            g,
            TransposedConv {
                in_channels: 16,
                out_channels: 24,
                in_h: 9,
                in_w: 13,
                kernel_h: 4,
                kernel_w: 4,
                out_h: 18,
                out_w: 26,
                stride: 2,
                pad: 1,
            }
        );
        let g = transposed_conv(&[2, 3, 5, 1], &[3, 2, 3, 2], 3, 0).expect("geometry");
        assert_eq!((g.out_h, g.out_w), (15, 2));
    }

    #[test]
    fn transposed_conv_rejects_what_the_kernel_cannot_address() {
        let bad = [
            transposed_conv(&[1, 1, 4, 4], &[1, 1, 3, 3], 0, 0),
            // An empty output.
            transposed_conv(&[1, 1, 1, 1], &[1, 1, 2, 2], 1, 1),
            transposed_conv(&[1, 1, 0, 4], &[1, 1, 3, 3], 1, 0),
            // The uncropped output exceeds 32-bit indexing even though padding crops it.
            transposed_conv(&[1, 1, 2, 1], &[1, 1, 3, 3], (1 << 31) - 3, 1),
            transposed_conv(&[1, 1, 3, 3], &[1, 1, 3, 3], usize::MAX, 0),
            transposed_conv(&[1, 1 << 31, 3, 3], &[1 << 31, 1, 3, 3], 1, 0),
        ];
        for (i, result) in bad.iter().enumerate() {
            let err = result.as_ref().expect_err("accepted");
            assert!(
                err.to_string().contains("conv_transpose2d"),
                "case {i}: {err}"
            );
        }
    }

    #[test]
    fn pooled_length_is_floor_mode() {
        assert_eq!(pooled_len(7, 3, 2, 1).expect("pool"), 4);
        assert_eq!(pooled_len(8, 2, 2, 0).expect("pool"), 4);
        // YOLOv5's SPP pools keep the size: kernel k, stride 1, padding k/2.
        for k in [5, 9, 13] {
            assert_eq!(pooled_len(20, k, 1, k / 2).expect("pool"), 20);
        }
        assert!(pooled_len(7, 3, 0, 1).is_err());
        assert!(pooled_len(2, 5, 1, 1).is_err());
        assert!(pooled_len(i32::MAX as usize, 3, 1, 1).is_err());
        assert!(pooled_len(3, 3, 1, usize::MAX).is_err());
    }
}
