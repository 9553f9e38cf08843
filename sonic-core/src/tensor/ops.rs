//! Tensor ops: argument and shape checks, then a call into the device's backend.

use crate::backend::{BinaryOp, ConvParams, GridPadding, ResizeMode, UnaryOp};
use crate::{Error, Result, Shape, Tensor};

fn same_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.device() != b.device() {
        return Err(Error::DeviceMismatch {
            op,
            lhs: a.device(),
            rhs: b.device(),
        });
    }
    Ok(())
}

fn expect_shape(op: &'static str, t: &Tensor, expected: &[usize]) -> Result<()> {
    if t.dims() != expected {
        return Err(Error::ShapeMismatch {
            op,
            expected: Shape::new(expected),
            found: t.shape().clone(),
        });
    }
    Ok(())
}

/// A per-channel vector (norm weight or bias) of length `n` on `x`'s device.
fn check_vector(op: &'static str, x: &Tensor, v: Option<&Tensor>, n: usize) -> Result<()> {
    if let Some(v) = v {
        same_device(op, x, v)?;
        expect_shape(op, v, &[n])?;
    }
    Ok(())
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        $( $(#[$doc])* pub fn $name(&self) -> Result<Tensor> { self.unary(UnaryOp::$op) } )*
    };
}

macro_rules! binary_ops {
    ($($name:ident => $op:ident),* $(,)?) => {
        $( pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> { self.binary(rhs, BinaryOp::$op) } )*
    };
}

impl Tensor {
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        self.backend().unary(self, op)
    }

    unary_ops! {
        neg => Neg, abs => Abs, exp => Exp, log => Log, sqrt => Sqrt, sqr => Square,
        recip => Recip, tanh => Tanh, sin => Sin, cos => Cos, relu => Relu,
        sigmoid => Sigmoid, silu => Silu,
        /// Exact GELU with erf.
        gelu => GeluErf,
        gelu_tanh => GeluTanh, quick_gelu => QuickGelu,
    }

    /// `self·mul + add`.
    pub fn affine(&self, mul: f32, add: f32) -> Result<Tensor> {
        self.backend().affine(self, mul, add)
    }

    pub fn add_scalar(&self, v: f32) -> Result<Tensor> {
        self.affine(1.0, v)
    }

    pub fn mul_scalar(&self, v: f32) -> Result<Tensor> {
        self.affine(v, 0.0)
    }

    pub fn clamp(&self, min: f32, max: f32) -> Result<Tensor> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(Error::invalid("clamp", format!("bad range [{min}, {max}]")));
        }
        self.backend().clamp(self, min, max)
    }

    /// Elementwise op with NumPy broadcasting.
    pub fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        same_device("binary", self, rhs)?;
        let out = self.shape().broadcast(rhs.shape(), "binary")?;
        self.backend().binary(self, rhs, op, &out)
    }

    binary_ops! {
        add => Add, sub => Sub, mul => Mul, div => Div, maximum => Maximum, minimum => Minimum,
    }

    /// Batched matrix product; see [`crate::Backend::matmul`] for the accepted shapes.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        same_device("matmul", self, rhs)?;
        let (a, b) = (self.dims(), rhs.dims());
        let bad = || Error::invalid("matmul", format!("cannot multiply {a:?} by {b:?}"));
        if a.len() < 2 || b.len() < 2 || a[a.len() - 1] != b[b.len() - 2] {
            return Err(bad());
        }
        if b.len() > 2 && a[..a.len() - 2] != b[..b.len() - 2] {
            return Err(bad());
        }
        self.backend().matmul(self, rhs)
    }

    /// `self […, in] · wᵀ + bias` with PyTorch's `Linear` weight layout `w [out, in]`.
    pub fn linear(&self, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        same_device("linear", self, w)?;
        if w.rank() != 2 || self.rank() == 0 || self.dims()[self.rank() - 1] != w.dims()[1] {
            return Err(Error::invalid(
                "linear",
                format!("input {} does not fit weight {}", self.shape(), w.shape()),
            ));
        }
        check_vector("linear", self, bias, w.dims()[0])?;
        self.backend().linear(self, w, bias)
    }

    /// Convolution with `w [out, in, k…]` over the 1 to 3 dims after `[n, c]`.
    pub fn conv(&self, w: &Tensor, bias: Option<&Tensor>, p: &ConvParams) -> Result<Tensor> {
        same_device("conv", self, w)?;
        let spatial = self.rank().saturating_sub(2);
        if !(1..=3).contains(&spatial) || w.rank() != self.rank() {
            return Err(Error::invalid(
                "conv",
                format!(
                    "input {} and weight {} are not a 1-3d convolution",
                    self.shape(),
                    w.shape()
                ),
            ));
        }
        if w.dims()[1] != self.dims()[1] {
            return Err(Error::invalid(
                "conv",
                format!(
                    "input has {} channels but weight {} expects {} (groups other than 1 are not supported)",
                    self.dims()[1], w.shape(), w.dims()[1]
                ),
            ));
        }
        if [&p.stride, &p.padding, &p.dilation]
            .iter()
            .any(|v| v.len() != spatial)
            || p.stride.contains(&0)
            || p.dilation.contains(&0)
        {
            return Err(Error::invalid(
                "conv",
                format!("bad parameters {p:?} for {spatial} spatial dims"),
            ));
        }
        for i in 0..spatial {
            let span = p.dilation[i] * (w.dims()[2 + i] - 1) + 1;
            if self.dims()[2 + i] + 2 * p.padding[i] < span {
                return Err(Error::invalid(
                    "conv",
                    format!(
                        "kernel {} larger than padded input {}",
                        w.shape(),
                        self.shape()
                    ),
                ));
            }
        }
        check_vector("conv", self, bias, w.dims()[0])?;
        self.backend().conv(self, w, bias, p)
    }

    pub fn conv1d(
        &self,
        w: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        self.conv(w, bias, &ConvParams::uniform(1, stride, padding))
    }

    pub fn conv2d(
        &self,
        w: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        self.conv(w, bias, &ConvParams::uniform(2, stride, padding))
    }

    /// 3d convolution with per-dimension padding (the temporal VAE pads time and space differently).
    pub fn conv3d(
        &self,
        w: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: [usize; 3],
    ) -> Result<Tensor> {
        let p = ConvParams {
            stride: vec![stride; 3],
            padding: padding.to_vec(),
            dilation: vec![1; 3],
        };
        self.conv(w, bias, &p)
    }

    pub fn group_norm(
        &self,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        self.group_norm_impl(groups, weight, bias, eps, false)
    }

    /// GroupNorm followed by SiLU in one pass.
    pub fn group_norm_silu(
        &self,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        self.group_norm_impl(groups, weight, bias, eps, true)
    }

    fn group_norm_impl(
        &self,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        self.check_group_norm(groups, weight, bias)?;
        self.backend()
            .group_norm(self, groups, weight, bias, eps, silu)
    }

    fn check_group_norm(
        &self,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
    ) -> Result<()> {
        if self.rank() < 2 || groups == 0 || !self.dims()[1].is_multiple_of(groups) {
            return Err(Error::invalid(
                "group_norm",
                format!(
                    "{groups} groups do not divide the channels of {}",
                    self.shape()
                ),
            ));
        }
        let c = self.dims()[1];
        check_vector("group_norm", self, weight, c)?;
        check_vector("group_norm", self, bias, c)
    }

    pub fn layer_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        let n = self.dim(-1)?;
        check_vector("layer_norm", self, weight, n)?;
        check_vector("layer_norm", self, bias, n)?;
        self.backend().layer_norm(self, weight, bias, eps)
    }

    /// Softmax over the last dimension.
    pub fn softmax_last(&self) -> Result<Tensor> {
        self.dim(-1)?;
        self.backend().softmax(self)
    }

    /// Scaled dot-product attention in token-major layout (see [`crate::Backend::attention`]).
    /// With a single key the softmax is exactly 1, so the output is `v` broadcast over queries.
    pub fn attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        Tensor::check_attention(q, k, v, heads)?;
        if k.dims()[1] == 1 {
            let (b, lq) = (q.dims()[0], q.dims()[1]);
            let zeros = Tensor::zeros([b, lq, 1], q.device())?.to_dtype(v.dtype())?;
            return zeros.add(v);
        }
        q.backend().attention(q, k, v, heads, scale)
    }

    /// What [`Tensor::attention`] requires of its operands: one device, `[b, l, width]`
    /// each with matching batches, keys and values of one length (at least 1), and widths
    /// that split into `heads`. Backends that take attention calls directly check it too.
    pub fn check_attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize) -> Result<()> {
        same_device("attention", q, k)?;
        same_device("attention", q, v)?;
        let ok = q.rank() == 3
            && k.rank() == 3
            && v.rank() == 3
            && heads > 0
            && q.dims()[0] == k.dims()[0]
            && q.dims()[0] == v.dims()[0]
            && k.dims()[1] == v.dims()[1]
            && q.dims()[2] == k.dims()[2]
            && q.dims()[2].is_multiple_of(heads)
            && v.dims()[2].is_multiple_of(heads)
            && k.dims()[1] > 0;
        if !ok {
            return Err(Error::invalid(
                "attention",
                format!(
                    "q {}, k {}, v {} with {heads} heads",
                    q.shape(),
                    k.shape(),
                    v.shape()
                ),
            ));
        }
        Ok(())
    }

    /// Self-attention over the frames of each pixel with `q`, `k`, `v` in the spatial layout
    /// `[b·frames, hw, ·]` (see [`crate::Backend::temporal_attention`]); the output keeps it.
    pub fn temporal_attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        frames: usize,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        same_device("temporal_attention", q, k)?;
        same_device("temporal_attention", q, v)?;
        let ok = q.rank() == 3
            && k.dims() == q.dims()
            && v.rank() == 3
            && v.dims()[..2] == q.dims()[..2]
            && frames > 0
            && q.dims()[0].is_multiple_of(frames)
            && heads > 0
            && q.dims()[2].is_multiple_of(heads)
            && v.dims()[2].is_multiple_of(heads);
        if !ok {
            return Err(Error::invalid(
                "temporal_attention",
                format!(
                    "q {}, k {}, v {} with {frames} frames and {heads} heads",
                    q.shape(),
                    k.shape(),
                    v.shape()
                ),
            ));
        }
        q.backend()
            .temporal_attention(q, k, v, frames, heads, scale)
    }

    /// `GroupNorm(self + residual)`, followed by SiLU when `silu`; `residual` broadcasts to
    /// `self`'s shape (see [`crate::Backend::group_norm_residual`]).
    #[allow(clippy::too_many_arguments)]
    pub fn group_norm_residual(
        &self,
        residual: &Tensor,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        same_device("group_norm", self, residual)?;
        // The sum must keep x's shape: a residual may broadcast into x, never widen it.
        let out = self.shape().broadcast(residual.shape(), "group_norm")?;
        if &out != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "group_norm",
                expected: self.shape().clone(),
                found: residual.shape().clone(),
            });
        }
        self.check_group_norm(groups, weight, bias)?;
        self.backend()
            .group_norm_residual(self, residual, groups, weight, bias, eps, silu)
    }

    /// Diffusers' GEGLU activation on an already projected tensor.
    pub fn geglu(&self) -> Result<Tensor> {
        if self.rank() == 0 || self.dim(-1)? % 2 != 0 {
            return Err(Error::invalid(
                "geglu",
                format!("last dim of {} is not even", self.shape()),
            ));
        }
        self.backend().geglu(self)
    }

    /// Reorders dimensions; the result is a contiguous copy.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        if dims.len() != self.rank()
            || dims
                .iter()
                .any(|&d| d >= self.rank() || std::mem::replace(&mut seen[d], true))
        {
            return Err(Error::invalid(
                "permute",
                format!("{dims:?} is not a permutation for {}", self.shape()),
            ));
        }
        if dims.iter().enumerate().all(|(i, &d)| i == d) {
            return Ok(self.clone());
        }
        self.backend().permute(self, dims)
    }

    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (
            self.shape().axis(a, "transpose")?,
            self.shape().axis(b, "transpose")?,
        );
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    pub fn cat(xs: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = xs
            .first()
            .ok_or_else(|| Error::invalid("cat", "no tensors"))?;
        let axis = first.shape().axis(axis, "cat")?;
        for x in &xs[1..] {
            same_device("cat", first, x)?;
            let compatible = x.rank() == first.rank()
                && (0..first.rank()).all(|i| i == axis || x.dims()[i] == first.dims()[i]);
            if !compatible || x.dtype() != first.dtype() {
                return Err(Error::invalid(
                    "cat",
                    format!(
                        "{} ({}) cannot join {} ({}) along axis {axis}",
                        x.shape(),
                        x.dtype(),
                        first.shape(),
                        first.dtype()
                    ),
                ));
            }
        }
        if xs.len() == 1 {
            return Ok((*first).clone());
        }
        first.backend().concat(xs, axis)
    }

    /// `len` entries of `axis` starting at `start`, copied.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let axis = self.shape().axis(axis, "narrow")?;
        let size = self.dims()[axis];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} out of bounds for axis {axis} of {}",
                    start.saturating_add(len),
                    self.shape()
                ),
            ));
        }
        if start == 0 && len == size {
            return Ok(self.clone());
        }
        self.backend().narrow(self, axis, start, len)
    }

    /// Splits `axis` into `n` equal parts.
    pub fn chunk(&self, n: usize, axis: isize) -> Result<Vec<Tensor>> {
        let ax = self.shape().axis(axis, "chunk")?;
        let size = self.dims()[ax];
        if n == 0 || !size.is_multiple_of(n) {
            return Err(Error::invalid(
                "chunk",
                format!("axis {ax} of {} is not divisible by {n}", self.shape()),
            ));
        }
        (0..n)
            .map(|i| self.narrow(axis, i * size / n, size / n))
            .collect()
    }

    /// Gathers entries of `axis` in the given order (repeats allowed).
    pub fn index_select(&self, axis: isize, indices: &[usize]) -> Result<Tensor> {
        let axis = self.shape().axis(axis, "index_select")?;
        let size = self.dims()[axis];
        if let Some(bad) = indices.iter().find(|&&i| i >= size) {
            return Err(Error::invalid(
                "index_select",
                format!(
                    "index {bad} out of range for axis {axis} of {}",
                    self.shape()
                ),
            ));
        }
        self.backend().index_select(self, axis, indices)
    }

    fn reduce_axes(&self, axes: &[isize], op: &'static str) -> Result<Vec<usize>> {
        let mut resolved = axes
            .iter()
            .map(|&a| self.shape().axis(a, op))
            .collect::<Result<Vec<_>>>()?;
        resolved.sort_unstable();
        resolved.dedup();
        if resolved.len() != axes.len() {
            return Err(Error::invalid(op, format!("repeated axis in {axes:?}")));
        }
        Ok(resolved)
    }

    fn drop_axes(&self, t: Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        if keepdim {
            return Ok(t);
        }
        let dims: Vec<usize> = (0..self.rank())
            .filter(|i| !axes.contains(i))
            .map(|i| self.dims()[i])
            .collect();
        t.reshape(dims)
    }

    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let axes = self.reduce_axes(axes, "sum")?;
        let t = self.backend().sum_keepdim(self, &axes)?;
        self.drop_axes(t, &axes, keepdim)
    }

    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let axes = self.reduce_axes(axes, "mean")?;
        let count: usize = axes.iter().map(|&a| self.dims()[a]).product();
        if count == 0 {
            return Err(Error::invalid(
                "mean",
                format!("mean over an empty axis of {}", self.shape()),
            ));
        }
        let t = self
            .backend()
            .sum_keepdim(self, &axes)?
            .mul_scalar(1.0 / count as f32)?;
        self.drop_axes(t, &axes, keepdim)
    }

    /// Nearest-neighbour upsampling of the last two dims by integer factors.
    pub fn upsample_nearest2d(&self, scale_h: usize, scale_w: usize) -> Result<Tensor> {
        if self.rank() < 2 || scale_h == 0 || scale_w == 0 {
            return Err(Error::invalid(
                "upsample_nearest2d",
                format!("{} by {scale_h}x{scale_w}", self.shape()),
            ));
        }
        self.backend().upsample_nearest2d(self, scale_h, scale_w)
    }

    /// `torch.nn.functional.max_pool2d(x, kernel, stride, padding)` on the last two dims
    /// (floor mode, no dilation); padding may be at most half the kernel, as in torch.
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        let fits = self.rank() >= 2
            && kernel > 0
            && stride > 0
            && padding <= kernel / 2
            && self.dim(-1)? + 2 * padding >= kernel
            && self.dim(-2)? + 2 * padding >= kernel;
        if !fits {
            return Err(Error::invalid(
                "max_pool2d",
                format!(
                    "kernel {kernel}, stride {stride}, padding {padding} do not fit {}",
                    self.shape()
                ),
            ));
        }
        self.backend().max_pool2d(self, kernel, stride, padding)
    }

    /// `torch.nn.functional.interpolate(x, size=(h, w), mode, align_corners)` on the last two dims.
    pub fn resize2d(
        &self,
        out_h: usize,
        out_w: usize,
        mode: ResizeMode,
        align_corners: bool,
    ) -> Result<Tensor> {
        if self.rank() < 2 || out_h == 0 || out_w == 0 || self.dim(-1)? == 0 || self.dim(-2)? == 0 {
            return Err(Error::invalid(
                "resize2d",
                format!("{} to {out_h}x{out_w}", self.shape()),
            ));
        }
        self.backend()
            .resize2d(self, out_h, out_w, mode, align_corners)
    }

    /// `torch.nn.functional.conv_transpose2d(x, w, bias, stride, padding)` with
    /// `w [in, out, kh, kw]`; groups 1, no dilation or output padding.
    pub fn conv_transpose2d(
        &self,
        w: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        same_device("conv_transpose2d", self, w)?;
        let bad = |msg: String| Err(Error::invalid("conv_transpose2d", msg));
        if self.rank() != 4 || w.rank() != 4 || w.dims()[0] != self.dims()[1] {
            return bad(format!(
                "input {} does not fit weight {} (expected [n, c, h, w] and [c, out, kh, kw])",
                self.shape(),
                w.shape()
            ));
        }
        let (h, wi, kh, kw) = (self.dims()[2], self.dims()[3], w.dims()[2], w.dims()[3]);
        if stride == 0 || h == 0 || wi == 0 || padding >= kh || padding >= kw {
            return bad(format!(
                "stride {stride} and padding {padding} do not fit input {} and kernel {kh}x{kw}",
                self.shape()
            ));
        }
        if (h - 1) * stride + kh <= 2 * padding || (wi - 1) * stride + kw <= 2 * padding {
            return bad(format!("padding {padding} leaves an empty output"));
        }
        check_vector("conv_transpose2d", self, bias, w.dims()[1])?;
        self.backend()
            .conv_transpose2d(self, w, bias, stride, padding)
    }

    /// `torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode, align_corners)`:
    /// `self [n, c, h, w]`, `grid [n, ho, wo, 2]` holding (x, y) in [−1, 1].
    pub fn grid_sample(
        &self,
        grid: &Tensor,
        padding: GridPadding,
        align_corners: bool,
    ) -> Result<Tensor> {
        same_device("grid_sample", self, grid)?;
        let ok = self.rank() == 4
            && grid.rank() == 4
            && grid.dims()[0] == self.dims()[0]
            && grid.dims()[3] == 2;
        if !ok {
            return Err(Error::invalid(
                "grid_sample",
                format!(
                    "input {} and grid {} are not [n, c, h, w] and [n, ho, wo, 2]",
                    self.shape(),
                    grid.shape()
                ),
            ));
        }
        self.backend()
            .grid_sample(self, grid, padding, align_corners)
    }

    /// `torch.nn.functional.prelu`: one slope per channel of axis 1, or one shared slope.
    pub fn prelu(&self, weight: &Tensor) -> Result<Tensor> {
        same_device("prelu", self, weight)?;
        let channels = if self.rank() >= 2 { self.dims()[1] } else { 1 };
        let n = weight.elem_count();
        if weight.rank() != 1 || (n != 1 && n != channels) {
            return Err(Error::invalid(
                "prelu",
                format!(
                    "weight {} is neither [1] nor [{channels}] for input {}",
                    weight.shape(),
                    self.shape()
                ),
            ));
        }
        self.backend().prelu(self, weight)
    }
}
