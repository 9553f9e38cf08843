//! Convolution: cuDNN where its library loads, else the implicit-GEMM kernel of
//! `kernels-cu/conv_implicit_gemm.cu`, with im2col tiles + cuBLAS as the selectable
//! baseline (see [`crate::conv_algorithm`]).
//!
//! An algorithm that cannot take a shape (cuDNN's 32-bit descriptors, the kernel's 32-bit
//! offsets within an image, or cuDNN finding no algorithm) hands it to the next in that
//! order when it was picked by default, and is an error when it was asked for.

use cudarc::driver::{LaunchConfig, PushKernelArg};
use sonic_core::backend::ConvParams;
use sonic_core::{DType, Result, Tensor};

use super::blas::RowMajorGemm;
use super::cudnn::{CudnnShape, Outcome};
use super::device::{guarded, open_cudnn, CudaBackend};
use super::invalid;
use super::launch::{elementwise, grid_x, i32_arg, ConvGeometry};
use super::ops::{opt_ptr, ptr, same_dtype};
use crate::conv_algorithm::{ConvAlgorithm, ConvChoice};
use crate::registry::Kernel;

/// Output positions per im2col tile: bounds the column buffer (taps × this × dtype).
const IM2COL_POSITIONS: usize = 1 << 14;
/// Threads per block of the implicit-GEMM kernels.
const IGEMM_THREADS: u32 = 256;
/// The gather table covers whole K slices of every variant (32 for f16/bf16, 16 for f32).
const IGEMM_TABLE_ALIGN: usize = 32;
/// 32-bit words per gather-table entry (`struct Tap`), allocated as f32.
const IGEMM_TAP_WORDS: usize = 4;
/// Coordinates the kernel handles stay below its `OUTSIDE` marker's magnitude.
const IGEMM_MAX_EXTENT: usize = 1 << 30;
const I32_LIMIT: usize = i32::MAX as usize;
/// Output columns per launch: the kernel's 32-bit column index runs up to a tile past the
/// last one.
const IGEMM_MAX_COLUMNS: usize = I32_LIMIT - 128;
/// Images per cuDNN batch are a multiple of this when a call is split.
const CUDNN_BATCH_ALIGN: usize = 8;

/// One convolution call in the three-spatial-dim form the kernels take.
pub(crate) struct ConvShape {
    pub geometry: ConvGeometry,
    /// 1, 2 or 3 as called.
    pub spatial: usize,
    pub images: usize,
    pub out_channels: usize,
    /// Output positions per image.
    pub positions: usize,
    /// Rows of the column matrix: channels × kernel volume.
    pub taps: usize,
}

fn product(v: &[i32]) -> usize {
    v.iter().map(|&d| d as usize).product()
}

impl ConvShape {
    /// Checks what `Tensor::conv` checks, since [`CudaBackend::conv_with`] is public too.
    fn new(x: &Tensor, w: &Tensor, p: &ConvParams) -> Result<ConvShape> {
        let op = "conv";
        let (xd, wd) = (x.dims(), w.dims());
        let spatial = xd.len().saturating_sub(2);
        if !(1..=3).contains(&spatial) || wd.len() != xd.len() || wd[1] != xd[1] {
            return Err(invalid(
                op,
                format!(
                    "input {:?} and weight {wd:?} are not a 1-3d convolution",
                    xd
                ),
            ));
        }
        if [&p.stride, &p.padding, &p.dilation]
            .iter()
            .any(|v| v.len() != spatial)
            || p.stride.contains(&0)
            || p.dilation.contains(&0)
        {
            return Err(invalid(op, format!("bad parameters {p:?}")));
        }
        let lead = 3 - spatial;
        let mut g = ConvGeometry {
            channels: i32_arg(xd[1], op)?,
            input: [1; 3],
            kernel: [1; 3],
            stride: [1; 3],
            pad: [0; 3],
            dilation: [1; 3],
            output: [1; 3],
        };
        for i in 0..spatial {
            g.input[lead + i] = i32_arg(xd[2 + i], op)?;
            g.kernel[lead + i] = i32_arg(wd[2 + i], op)?;
            g.stride[lead + i] = i32_arg(p.stride[i], op)?;
            g.pad[lead + i] = i32_arg(p.padding[i], op)?;
            g.dilation[lead + i] = i32_arg(p.dilation[i], op)?;
            let span = p.dilation[i] * wd[2 + i].saturating_sub(1) + 1;
            let padded = xd[2 + i] + 2 * p.padding[i];
            if padded < span {
                return Err(invalid(op, "kernel larger than the padded input"));
            }
            g.output[lead + i] = i32_arg((padded - span) / p.stride[i] + 1, op)?;
        }
        Ok(ConvShape {
            geometry: g,
            spatial,
            images: xd[0],
            out_channels: wd[0],
            positions: product(&g.output),
            taps: xd[1] * product(&g.kernel),
        })
    }

    fn output_dims(&self) -> Vec<usize> {
        let mut dims = vec![self.images, self.out_channels];
        dims.extend(
            self.geometry.output[3 - self.spatial..]
                .iter()
                .map(|&v| v as usize),
        );
        dims
    }

    /// Input elements per image.
    fn image_elems(&self) -> usize {
        self.geometry.channels as usize * product(&self.geometry.input)
    }

    /// Whether the depth dim is trivial (1d and 2d), so the kernel can skip its test.
    fn flat(&self) -> bool {
        let g = &self.geometry;
        g.input[0] == 1 && g.kernel[0] == 1 && g.pad[0] == 0
    }
}

/// The algorithm tried after `a` when `a` cannot take a shape.
fn fallback(a: ConvAlgorithm) -> ConvAlgorithm {
    match a {
        ConvAlgorithm::Cudnn => ConvAlgorithm::ImplicitGemm,
        ConvAlgorithm::ImplicitGemm | ConvAlgorithm::Im2col => ConvAlgorithm::Im2col,
    }
}

/// Device addresses of one call: input, weights, optional bias (0 when absent), output.
#[derive(Clone, Copy)]
struct ConvBuffers {
    x: u64,
    w: u64,
    bias: u64,
    y: u64,
}

impl CudaBackend {
    /// The algorithm `conv` runs (when the shape allows), and why it was chosen.
    pub fn conv_choice(&self) -> &ConvChoice {
        &self.conv
    }

    /// Convolution through a chosen algorithm (tests and benches); an error where that
    /// algorithm cannot run the call.
    pub fn conv_with(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        p: &ConvParams,
        algorithm: ConvAlgorithm,
    ) -> Result<Tensor> {
        self.conv_dispatch(x, w, bias, p, Some(algorithm))
    }

    pub(crate) fn conv_dispatch(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        p: &ConvParams,
        requested: Option<ConvAlgorithm>,
    ) -> Result<Tensor> {
        let op = "conv";
        same_dtype(op, x.dtype(), &[Some(w), bias])?;
        let shape = ConvShape::new(x, w, p)?;
        if let Some(b) = bias {
            if b.elem_count() != shape.out_channels {
                return Err(invalid(
                    op,
                    format!("bias {:?} for {} outputs", b.dims(), shape.out_channels),
                ));
            }
        }
        let y = self.alloc(shape.output_dims(), x.dtype())?;
        if y.elem_count() == 0 {
            return Ok(y);
        }
        let io = ConvBuffers {
            x: ptr(x, op)?,
            w: ptr(w, op)?,
            bias: opt_ptr(bias, op)?,
            y: ptr(&y, op)?,
        };
        let mut algorithm = requested.unwrap_or(self.conv.algorithm);
        loop {
            let declined = match algorithm {
                ConvAlgorithm::Cudnn => self.conv_cudnn(io, x.dtype(), &shape)?,
                ConvAlgorithm::ImplicitGemm => self.conv_implicit_gemm(io, x.dtype(), &shape)?,
                ConvAlgorithm::Im2col => {
                    self.conv_im2col(io, x.dtype(), &shape)?;
                    None
                }
            };
            match (declined, requested) {
                (None, _) => break,
                (Some(why), Some(_)) => {
                    return Err(invalid(
                        op,
                        format!("{algorithm} cannot run this call: {why}"),
                    ))
                }
                (Some(_), None) => algorithm = fallback(algorithm),
            }
        }
        match bias {
            // The implicit GEMM adds the bias in its epilogue.
            Some(bias) if algorithm != ConvAlgorithm::ImplicitGemm => self.add_bias(y, bias, 1),
            _ => Ok(y),
        }
    }

    /// cuDNN, in batches of images whose tensors stay below 2³¹ elements (its descriptors
    /// are 32-bit). `Some(reason)` when it cannot run the shape.
    fn conv_cudnn(&self, io: ConvBuffers, dtype: DType, s: &ConvShape) -> Result<Option<String>> {
        let per_image = s.image_elems().max(s.out_channels * s.positions);
        if per_image > I32_LIMIT || s.out_channels * s.taps > I32_LIMIT {
            return Ok(Some("a tensor exceeds cuDNN's 32-bit sizes".to_owned()));
        }
        let g = &s.geometry;
        // 1d runs as 2d with height 1; 2d and 3d keep their dims.
        let dims = if s.spatial == 3 { 0 } else { 1 };
        let spatial = |v: &[i32; 3]| v[dims..].to_vec();
        let mut batch = (I32_LIMIT / per_image).min(s.images);
        if batch < s.images {
            // Batches of 8 images start on 16-byte boundaries, as cuDNN's vector loads want.
            batch -= batch % CUDNN_BATCH_ALIGN;
            if batch == 0 {
                return Ok(Some(
                    "images too large to split into aligned batches".to_owned(),
                ));
            }
        }
        let size = dtype.size_in_bytes() as u64;
        let mut slot = self.cudnn.lock().unwrap_or_else(|e| e.into_inner());
        let cudnn = match &mut *slot {
            Some(cudnn) => cudnn,
            empty => empty.insert(open_cudnn(self.ordinal, &self.stream)?),
        };
        self.ctx.bind_to_thread().map_err(|e| self.error(e))?;
        let mut start = 0;
        while start < s.images {
            let count = batch.min(s.images - start);
            let mut x = vec![count as i32, g.channels];
            x.extend(spatial(&g.input));
            let mut w = vec![s.out_channels as i32, g.channels];
            w.extend(spatial(&g.kernel));
            let mut y = vec![count as i32, s.out_channels as i32];
            y.extend(spatial(&g.output));
            let shape = CudnnShape {
                dtype,
                x,
                w,
                y,
                pad: spatial(&g.pad),
                stride: spatial(&g.stride),
                dilation: spatial(&g.dilation),
            };
            let xp = io.x + (start * s.image_elems()) as u64 * size;
            let yp = io.y + (start * s.out_channels * s.positions) as u64 * size;
            let outcome = guarded(self.ordinal, "cuDNN", || {
                cudnn.forward(&shape, [xp, io.w, yp])
            })?
            .map_err(|e| self.error(e))?;
            if let Outcome::Unsupported(why) = outcome {
                // The next algorithm rewrites the whole output, batches done here included.
                return Ok(Some(why));
            }
            start += count;
        }
        Ok(None)
    }

    /// The implicit-GEMM kernel, in launches of fewer than 2³¹ output columns; adds the
    /// bias. `Some(reason)` when offsets within an image would overflow 32 bits.
    fn conv_implicit_gemm(
        &self,
        io: ConvBuffers,
        dtype: DType,
        s: &ConvShape,
    ) -> Result<Option<String>> {
        let op = "conv";
        let g = &s.geometry;
        // Every offset the kernel forms within an image (channel, padded position and
        // dilated tap together) is below this bound.
        let extent: [usize; 3] = std::array::from_fn(|i| {
            let span = (g.kernel[i] as usize).saturating_sub(1) * g.dilation[i] as usize;
            g.input[i] as usize + 2 * g.pad[i] as usize + span
        });
        let volume = extent
            .iter()
            .try_fold(g.channels as usize, |v, &e| v.checked_mul(e));
        if volume.is_none_or(|v| v > I32_LIMIT)
            || extent.iter().any(|&e| e >= IGEMM_MAX_EXTENT)
            || s.positions > IGEMM_MAX_COLUMNS
            || s.taps + IGEMM_TABLE_ALIGN > I32_LIMIT
        {
            return Ok(Some(
                "an image exceeds the kernel's 32-bit offsets".to_owned(),
            ));
        }
        let k_padded = s.taps.div_ceil(IGEMM_TABLE_ALIGN).max(1) * IGEMM_TABLE_ALIGN;
        let table = self.alloc([k_padded, IGEMM_TAP_WORDS], DType::F32)?;
        let tp = ptr(&table, op)?;
        let f = self.function(
            Kernel::ConvImplicitGemm,
            dtype,
            None,
            "conv_gather_table",
            0,
        )?;
        let (k_total, k_arg) = (i32_arg(s.taps, op)?, i32_arg(k_padded, op)?);
        // SAFETY: the table holds k_padded 16-byte entries.
        unsafe { launch!(self, f, elementwise(k_padded); tp, *g, k_total, k_arg) }?;

        let entry = if s.flat() {
            "conv_implicit_gemm"
        } else {
            "conv_implicit_gemm_3d"
        };
        let f = self.function(Kernel::ConvImplicitGemm, dtype, None, entry, 0)?;
        // BM × BN of the kernel's variants.
        let (bm, bn) = match dtype {
            DType::F32 => (64, 64),
            DType::F16 | DType::BF16 => (128, 128),
        };
        let size = dtype.size_in_bytes() as u64;
        let out_channels = i32_arg(s.out_channels, op)?;
        let batch = (IGEMM_MAX_COLUMNS / s.positions).min(s.images);
        let mut start = 0;
        while start < s.images {
            let count = batch.min(s.images - start);
            let columns = count * s.positions;
            let cfg = LaunchConfig {
                grid_dim: (
                    grid_x(s.out_channels.div_ceil(bm) * columns.div_ceil(bn), op)?,
                    1,
                    1,
                ),
                block_dim: (IGEMM_THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            let xp = io.x + (start * s.image_elems()) as u64 * size;
            let yp = io.y + (start * s.out_channels * s.positions) as u64 * size;
            let columns = i32_arg(columns, op)?;
            // SAFETY: x holds `count` images of the geometry's input, w is [O, K], the bias
            // O elements or null, y `count` images of [O, P]; the table is built above.
            unsafe { launch!(self, f, cfg; xp, io.w, io.bias, yp, tp, *g, out_channels, columns) }?;
            start += count;
        }
        Ok(None)
    }

    /// Tiles of im2col, one GEMM per tile, image by image.
    fn conv_im2col(&self, io: ConvBuffers, dtype: DType, s: &ConvShape) -> Result<()> {
        let g = &s.geometry;
        let cols = self.alloc([s.taps, IM2COL_POSITIONS.min(s.positions)], dtype)?;
        let cp = ptr(&cols, "conv")?;
        let f = self.function(Kernel::Layout, dtype, None, "im2col", 0)?;
        let size = dtype.size_in_bytes() as u64;
        for image in 0..s.images {
            let x = io.x + (image * s.image_elems()) as u64 * size;
            let y = io.y + (image * s.out_channels * s.positions) as u64 * size;
            let mut p0 = 0;
            while p0 < s.positions {
                let tile = IM2COL_POSITIONS.min(s.positions - p0);
                let (p0_arg, tile_arg) = (p0 as i64, tile as i64);
                // SAFETY: `cols` holds taps × IM2COL_POSITIONS elements; x is one image.
                unsafe {
                    launch!(self, f, elementwise(s.taps * tile); x, cp, *g, p0_arg, tile_arg)
                }?;
                // y[o, p0..p0+tile] = W[o, taps] · cols[taps, tile]
                let gemm = RowMajorGemm {
                    ldb: tile,
                    ldc: s.positions,
                    ..RowMajorGemm::plain(s.out_channels, tile, s.taps)
                };
                self.gemm(dtype, &gemm, io.w, cp, y + p0 as u64 * size)?;
                p0 += tile;
            }
        }
        Ok(())
    }
}
