//! The CPU reference backend: f32 compute, rayon for parallel loops, `gemm` for matrix
//! products. It is the numerical reference every other backend is tested against.

mod attention;
mod conv;
mod elementwise;
mod layout;
pub(crate) mod math;
mod matmul;
mod norm;
mod resize;
mod sample;
mod storage;

pub use storage::{CpuStorage, F32Buf};

use crate::backend::{Backend, BinaryOp, ConvParams, GridPadding, ResizeMode, Storage, UnaryOp};
use crate::{DType, Device, Error, Result, Shape, Tensor};

#[derive(Debug, Default)]
pub struct CpuBackend;

/// The f32 data of a CPU tensor; other dtypes must be converted first.
fn f32s<'a>(t: &'a Tensor, op: &'static str) -> Result<&'a [f32]> {
    match t.storage() {
        Storage::Cpu(CpuStorage::F32(buf)) => Ok(buf),
        _ => Err(Error::UnsupportedDType {
            op,
            dtype: t.dtype(),
            device: t.device(),
        }),
    }
}

fn opt_f32s<'a>(t: Option<&'a Tensor>, op: &'static str) -> Result<Option<&'a [f32]>> {
    t.map(|t| f32s(t, op)).transpose()
}

fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_storage(Storage::Cpu(CpuStorage::F32(data.into())), shape)
}

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }

    fn from_f32(&self, data: &[f32], shape: &Shape, dtype: DType) -> Result<Tensor> {
        let storage = CpuStorage::F32(data.to_vec().into());
        let storage = if dtype == DType::F32 {
            storage
        } else {
            storage.convert(dtype)
        };
        Tensor::from_storage(Storage::Cpu(storage), shape)
    }

    fn upload(&self, cpu: &Tensor) -> Result<Tensor> {
        Ok(cpu.clone())
    }

    fn download(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }

    fn to_dtype(&self, t: &Tensor, dtype: DType) -> Result<Tensor> {
        match t.storage() {
            Storage::Cpu(s) => Tensor::from_storage(Storage::Cpu(s.convert(dtype)), t.shape()),
            Storage::Device(_) => Err(Error::invalid("to_dtype", "not a CPU tensor")),
        }
    }

    fn unary(&self, x: &Tensor, op: UnaryOp) -> Result<Tensor> {
        tensor(elementwise::unary(f32s(x, "unary")?, op), x.shape())
    }

    fn affine(&self, x: &Tensor, mul: f32, add: f32) -> Result<Tensor> {
        let data = elementwise::map(f32s(x, "affine")?, |v| v * mul + add);
        tensor(data, x.shape())
    }

    fn clamp(&self, x: &Tensor, min: f32, max: f32) -> Result<Tensor> {
        let data = elementwise::map(f32s(x, "clamp")?, |v| v.clamp(min, max));
        tensor(data, x.shape())
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp, out: &Shape) -> Result<Tensor> {
        let data = elementwise::binary(
            f32s(a, "binary")?,
            a.shape(),
            f32s(b, "binary")?,
            b.shape(),
            op,
            out,
        );
        tensor(data, out)
    }

    fn matmul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let (ad, bd) = (a.dims(), b.dims());
        let (m, k, n) = (ad[ad.len() - 2], ad[ad.len() - 1], bd[bd.len() - 1]);
        let batch: usize = ad[..ad.len() - 2].iter().product();
        let shared_rhs = bd.len() == 2;
        let data = matmul::batched(
            f32s(a, "matmul")?,
            f32s(b, "matmul")?,
            batch,
            m,
            k,
            n,
            shared_rhs,
        );
        let mut shape = ad[..ad.len() - 2].to_vec();
        shape.extend([m, n]);
        tensor(data, shape)
    }

    fn linear(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (n, k) = (w.dims()[0], w.dims()[1]);
        let rows = x.elem_count() / k;
        let data = matmul::linear(
            f32s(x, "linear")?,
            f32s(w, "linear")?,
            opt_f32s(bias, "linear")?,
            rows,
            k,
            n,
        );
        let mut shape = x.dims().to_vec();
        *shape.last_mut().expect("linear input has rank >= 1") = n;
        tensor(data, shape)
    }

    fn conv(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        p: &ConvParams,
    ) -> Result<Tensor> {
        let (data, shape) = conv::conv(
            f32s(x, "conv")?,
            x.dims(),
            f32s(w, "conv")?,
            w.dims(),
            opt_f32s(bias, "conv")?,
            p,
        );
        tensor(data, shape)
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
        let (n, c) = (x.dims()[0], x.dims()[1]);
        let data = norm::group_norm(
            f32s(x, "group_norm")?,
            n,
            c,
            groups,
            opt_f32s(weight, "group_norm")?,
            opt_f32s(bias, "group_norm")?,
            eps,
            silu,
        );
        tensor(data, x.shape())
    }

    fn layer_norm(
        &self,
        x: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f32,
    ) -> Result<Tensor> {
        let data = norm::layer_norm(
            f32s(x, "layer_norm")?,
            x.dims()[x.rank() - 1],
            opt_f32s(weight, "layer_norm")?,
            opt_f32s(bias, "layer_norm")?,
            eps,
        );
        tensor(data, x.shape())
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        let data = norm::softmax(f32s(x, "softmax")?, x.dims()[x.rank() - 1]);
        tensor(data, x.shape())
    }

    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        scale: f32,
    ) -> Result<Tensor> {
        let (b, lq, lk) = (q.dims()[0], q.dims()[1], k.dims()[1]);
        let (d, dv) = (q.dims()[2] / heads, v.dims()[2] / heads);
        let shape = attention::Shape {
            b,
            heads,
            lq,
            lk,
            d,
            dv,
        };
        let data = attention::attention(
            f32s(q, "attention")?,
            f32s(k, "attention")?,
            f32s(v, "attention")?,
            &shape,
            scale,
        );
        tensor(data, [b, lq, heads * dv])
    }

    fn geglu(&self, x: &Tensor) -> Result<Tensor> {
        let width = x.dims()[x.rank() - 1];
        let data = elementwise::geglu(f32s(x, "geglu")?, width);
        let mut shape = x.dims().to_vec();
        *shape.last_mut().expect("geglu input has rank >= 1") = width / 2;
        tensor(data, shape)
    }

    fn permute(&self, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
        let (data, shape) = layout::permute(f32s(x, "permute")?, x.dims(), dims);
        tensor(data, shape)
    }

    fn concat(&self, xs: &[&Tensor], axis: usize) -> Result<Tensor> {
        let parts = xs
            .iter()
            .map(|t| Ok((f32s(t, "cat")?, t.dims())))
            .collect::<Result<Vec<_>>>()?;
        let (data, shape) = layout::concat(&parts, axis);
        tensor(data, shape)
    }

    fn narrow(&self, x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        let indices: Vec<usize> = (start..start + len).collect();
        self.index_select(x, axis, &indices)
    }

    fn index_select(&self, x: &Tensor, axis: usize, indices: &[usize]) -> Result<Tensor> {
        let data = layout::index_select(f32s(x, "index_select")?, x.shape(), axis, indices);
        let mut shape = x.dims().to_vec();
        shape[axis] = indices.len();
        tensor(data, shape)
    }

    fn sum_keepdim(&self, x: &Tensor, axes: &[usize]) -> Result<Tensor> {
        let (data, shape) = layout::sum_keepdim(f32s(x, "sum")?, x.dims(), axes);
        tensor(data, shape)
    }

    fn upsample_nearest2d(&self, x: &Tensor, sh: usize, sw: usize) -> Result<Tensor> {
        let (data, shape) =
            resize::upsample_nearest2d(f32s(x, "upsample_nearest2d")?, x.dims(), sh, sw);
        tensor(data, shape)
    }

    fn max_pool2d(&self, x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
        let (data, shape) = resize::max_pool2d(f32s(x, "max_pool2d")?, x.dims(), k, stride, pad);
        tensor(data, shape)
    }

    fn resize2d(
        &self,
        x: &Tensor,
        out_h: usize,
        out_w: usize,
        mode: ResizeMode,
        align_corners: bool,
    ) -> Result<Tensor> {
        let (data, shape) = resize::resize2d(
            f32s(x, "resize2d")?,
            x.dims(),
            out_h,
            out_w,
            mode,
            align_corners,
        );
        tensor(data, shape)
    }

    fn conv_transpose2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        let (data, shape) = conv::conv_transpose2d(
            f32s(x, "conv_transpose2d")?,
            x.dims(),
            f32s(w, "conv_transpose2d")?,
            w.dims(),
            opt_f32s(bias, "conv_transpose2d")?,
            stride,
            padding,
        );
        tensor(data, shape)
    }

    fn grid_sample(
        &self,
        x: &Tensor,
        grid: &Tensor,
        padding: GridPadding,
        align_corners: bool,
    ) -> Result<Tensor> {
        let (data, shape) = sample::grid_sample(
            f32s(x, "grid_sample")?,
            x.dims(),
            f32s(grid, "grid_sample")?,
            grid.dims(),
            padding,
            align_corners,
        );
        tensor(data, shape)
    }

    fn prelu(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let channels = if x.rank() >= 2 { x.dims()[1] } else { 1 };
        let inner: usize = x.dims().iter().skip(2).product();
        let data = sample::prelu(f32s(x, "prelu")?, channels, inner, f32s(weight, "prelu")?);
        tensor(data, x.shape())
    }
}

#[cfg(test)]
mod sample_tests;
#[cfg(test)]
mod tests;
