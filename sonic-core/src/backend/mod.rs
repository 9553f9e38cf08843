//! The backend seam: one trait that every device implements. Tensor methods validate
//! arguments and shapes, then call the backend of the tensor's device, so a backend may
//! assume well-formed input.

pub mod cpu;
mod registry;

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

pub use cpu::{CpuBackend, CpuStorage};
pub use registry::register_device_backend;
pub(crate) use registry::{cpu, device_backend};

use crate::{DType, Device, Result, Tensor};

/// A buffer owned by a non-CPU backend.
pub trait DeviceStorage: Send + Sync + Debug + Any {
    fn backend(&self) -> Arc<dyn Backend>;
    fn dtype(&self) -> DType;
    fn elem_count(&self) -> usize;
    fn as_any(&self) -> &dyn Any;
}

#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    Device(Arc<dyn DeviceStorage>),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            Storage::Device(s) => s.dtype(),
        }
    }

    pub fn elem_count(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.elem_count(),
            Storage::Device(s) => s.elem_count(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Square,
    Recip,
    Tanh,
    Sin,
    Cos,
    Relu,
    Sigmoid,
    Silu,
    /// `0.5·x·(1 + erf(x/√2))`, PyTorch's default GELU.
    GeluErf,
    /// PyTorch's `approximate="tanh"` GELU.
    GeluTanh,
    /// `x·σ(1.702·x)`, used by OpenAI CLIP configs.
    QuickGelu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

/// Stride, padding and dilation per spatial dimension (1 to 3 of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
    pub dilation: Vec<usize>,
}

impl ConvParams {
    /// The same stride and padding on every one of `rank` spatial dimensions, dilation 1.
    pub fn uniform(rank: usize, stride: usize, padding: usize) -> Self {
        ConvParams {
            stride: vec![stride; rank],
            padding: vec![padding; rank],
            dilation: vec![1; rank],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    Bilinear,
    /// Keys' cubic convolution with a = −0.75, as PyTorch.
    Bicubic,
}

/// What `grid_sample` reads for sample points outside the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridPadding {
    /// Out-of-range taps read zero.
    Zeros,
    /// Coordinates are clamped to the edge, so the edge pixels repeat.
    Border,
}

/// The error of an op a backend does not implement yet. New ops get a default method that
/// returns it, so adding an op never breaks another backend's build.
pub fn unsupported_op(device: Device, op: &str) -> crate::Error {
    crate::Error::Backend {
        device,
        msg: format!("{op} is not implemented on this device"),
    }
}

/// Every op a model needs. Arguments have been validated by the `Tensor` method that
/// calls it; outputs are new contiguous tensors on the same device.
pub trait Backend: Send + Sync + Debug {
    fn device(&self) -> Device;

    /// Copies host f32 data into a tensor of `dtype` on this device.
    #[allow(clippy::wrong_self_convention)]
    fn from_f32(&self, data: &[f32], shape: &crate::Shape, dtype: DType) -> Result<Tensor>;
    /// Takes a CPU tensor of any dtype onto this device, keeping its dtype.
    fn upload(&self, cpu: &Tensor) -> Result<Tensor>;
    /// Brings a tensor of this device to the CPU, keeping its dtype.
    fn download(&self, t: &Tensor) -> Result<Tensor>;
    fn to_dtype(&self, t: &Tensor, dtype: DType) -> Result<Tensor>;

    fn unary(&self, x: &Tensor, op: UnaryOp) -> Result<Tensor>;
    /// `x·mul + add`, elementwise.
    fn affine(&self, x: &Tensor, mul: f32, add: f32) -> Result<Tensor>;
    fn clamp(&self, x: &Tensor, min: f32, max: f32) -> Result<Tensor>;
    /// Elementwise with NumPy broadcasting to `out_shape`.
    fn binary(
        &self,
        a: &Tensor,
        b: &Tensor,
        op: BinaryOp,
        out_shape: &crate::Shape,
    ) -> Result<Tensor>;

    /// `a [batch…, m, k] · b [batch…, k, n]`; `b` may also be a single `[k, n]` shared by
    /// every batch entry.
    fn matmul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;
    /// `x […, k] · wᵀ + bias` with `w [n, k]`, PyTorch's layout.
    fn linear(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor>;
    /// Convolution over 1 to 3 spatial dims: `x [n, c, …]`, `w [o, c, k…]`, groups 1.
    fn conv(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: &ConvParams)
        -> Result<Tensor>;

    /// GroupNorm over `x [n, c, …]` with per-channel affine, optionally followed by SiLU.
    fn group_norm(
        &self,
        x: &Tensor,
        groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor>;
    /// LayerNorm over the last dimension.
    fn layer_norm(
        &self,
        x: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor>;
    /// Softmax over the last dimension.
    fn softmax(&self, x: &Tensor) -> Result<Tensor>;
    /// Multi-head scaled dot-product attention in token-major layout:
    /// `q [b, lq, h·d]`, `k [b, lk, h·d]`, `v [b, lk, h·dv]` → `[b, lq, h·dv]`.
    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor>;
    /// `a · gelu(b)` where `a` and `b` are the two halves of the last dimension.
    fn geglu(&self, x: &Tensor) -> Result<Tensor>;

    fn permute(&self, x: &Tensor, dims: &[usize]) -> Result<Tensor>;
    fn concat(&self, xs: &[&Tensor], axis: usize) -> Result<Tensor>;
    fn narrow(&self, x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor>;
    fn index_select(&self, x: &Tensor, axis: usize, indices: &[usize]) -> Result<Tensor>;
    /// Sum over the given (sorted, distinct) axes, keeping them as size 1.
    fn sum_keepdim(&self, x: &Tensor, axes: &[usize]) -> Result<Tensor>;
    /// Nearest-neighbour upsampling of the last two dims by integer factors.
    fn upsample_nearest2d(&self, x: &Tensor, scale_h: usize, scale_w: usize) -> Result<Tensor>;
    /// Resize of the last two dims with PyTorch's `interpolate` semantics (no antialias).
    fn resize2d(
        &self,
        x: &Tensor,
        out_h: usize,
        out_w: usize,
        mode: ResizeMode,
        align_corners: bool,
    ) -> Result<Tensor>;

    /// `torch.nn.functional.conv_transpose2d` with groups 1, dilation 1 and no output
    /// padding: `x [n, c, h, w]`, `w [c, o, kh, kw]` (PyTorch's layout) → `[n, o, h', w']`
    /// with `h' = (h − 1)·stride − 2·padding + kh`.
    fn conv_transpose2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        let _ = (x, w, bias, stride, padding);
        Err(unsupported_op(self.device(), "conv_transpose2d"))
    }

    /// `torch.nn.functional.grid_sample` in bilinear mode: `x [n, c, h, w]` sampled at
    /// `grid [n, ho, wo, 2]` (x then y, normalised to [−1, 1]) → `[n, c, ho, wo]`.
    fn grid_sample(
        &self,
        x: &Tensor,
        grid: &Tensor,
        padding: GridPadding,
        align_corners: bool,
    ) -> Result<Tensor> {
        let _ = (x, grid, padding, align_corners);
        Err(unsupported_op(self.device(), "grid_sample"))
    }

    /// `torch.nn.functional.max_pool2d` over the last two dims with a square `kernel`,
    /// `stride` and implicit −∞ `padding`, floor mode: `h' = (h + 2·padding − kernel)/stride + 1`.
    fn max_pool2d(
        &self,
        x: &Tensor,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        let _ = (x, kernel, stride, padding);
        Err(unsupported_op(self.device(), "max_pool2d"))
    }

    /// `torch.nn.PReLU`: `max(x, 0) + weight·min(x, 0)` with one slope per channel (axis 1)
    /// or a single shared slope (`weight [1]`). The default composes existing ops, so every
    /// backend has it; the CPU backend fuses it.
    fn prelu(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        prelu_composed(x, weight)
    }

    /// Self-attention over the frames of every pixel, in the spatial layout the UNet keeps
    /// its activations in: `q`, `k` `[b·frames, hw, h·d]` and `v` `[b·frames, hw, h·dv]`
    /// (frames of a video adjacent) → `[b·frames, hw, h·dv]`. The default permutes to
    /// `[b·hw, frames, ·]`, attends and permutes back; a backend that can address the
    /// frames in place saves both copies.
    fn temporal_attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        frames: usize,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        temporal_attention_composed(q, k, v, frames, heads, scale)
    }

    /// `act(GroupNorm(x + residual))` where `residual` broadcasts to `x` (a full tensor, or
    /// per-channel `[n, c, 1, …]` as the resnet blocks' time embedding). The default adds
    /// then normalises; a backend can fold the add into the statistics pass.
    #[allow(clippy::too_many_arguments)]
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
        group_norm_residual_composed(x, residual, groups, weight, bias, eps, silu)
    }
}

/// Temporal attention as permute, attention, permute: the default for backends without a
/// kernel that reads the spatial layout directly.
pub fn temporal_attention_composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    frames: usize,
    heads: usize,
    scale: f32,
) -> Result<Tensor> {
    let (bf, hw) = (q.dims()[0], q.dims()[1]);
    let b = bf / frames;
    let per_pixel = |t: &Tensor| -> Result<Tensor> {
        let c = t.dims()[2];
        t.reshape([b, frames, hw, c])?
            .permute(&[0, 2, 1, 3])?
            .reshape([b * hw, frames, c])
    };
    let y = Tensor::attention(&per_pixel(q)?, &per_pixel(k)?, &per_pixel(v)?, heads, scale)?;
    let cv = y.dims()[2];
    y.reshape([b, hw, frames, cv])?
        .permute(&[0, 2, 1, 3])?
        .reshape([bf, hw, cv])
}

/// GroupNorm of a sum as an add followed by the (optionally SiLU-fused) GroupNorm.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_residual_composed(
    x: &Tensor,
    residual: &Tensor,
    groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f32,
    silu: bool,
) -> Result<Tensor> {
    let sum = x.add(residual)?;
    if silu {
        sum.group_norm_silu(groups, weight, bias, eps)
    } else {
        sum.group_norm(groups, weight, bias, eps)
    }
}

/// PReLU from `relu`, `minimum`, `mul` and `add`: the default for backends without a fused one.
pub fn prelu_composed(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let slope = if x.rank() >= 2 && weight.elem_count() > 1 {
        let mut dims = vec![1; x.rank()];
        dims[1] = weight.elem_count();
        weight.reshape(dims)?
    } else {
        weight.clone()
    };
    let zero = Tensor::zeros([1], x.device())?.to_dtype(x.dtype())?;
    let neg = x.minimum(&zero)?;
    x.relu()?.add(&neg.mul(&slope)?)
}
