//! Resampling of the last two dims with PyTorch's `interpolate` semantics.

use rayon::prelude::*;

use crate::backend::ResizeMode;

pub fn upsample_nearest2d(
    x: &[f32],
    dims: &[usize],
    sh: usize,
    sw: usize,
) -> (Vec<f32>, Vec<usize>) {
    let r = dims.len();
    let (h, w) = (dims[r - 2], dims[r - 1]);
    let (oh, ow) = (h * sh, w * sw);
    let planes = x.len() / (h * w).max(1);
    let mut out = vec![0.0; planes * oh * ow];
    if !out.is_empty() {
        out.par_chunks_mut(ow).enumerate().for_each(|(row, dst)| {
            let (p, y) = (row / oh, row % oh);
            let src = &x[(p * h + y / sh) * w..][..w];
            for (j, d) in dst.iter_mut().enumerate() {
                *d = src[j / sw];
            }
        });
    }
    let mut shape = dims.to_vec();
    shape[r - 2] = oh;
    shape[r - 1] = ow;
    (out, shape)
}

/// Max over `k`×`k` windows; padded taps are skipped, which is the same as reading −∞
/// since every window holds at least one real value when `pad ≤ k/2`.
pub fn max_pool2d(
    x: &[f32],
    dims: &[usize],
    k: usize,
    stride: usize,
    pad: usize,
) -> (Vec<f32>, Vec<usize>) {
    let r = dims.len();
    let (h, w) = (dims[r - 2], dims[r - 1]);
    let (oh, ow) = (
        (h + 2 * pad - k) / stride + 1,
        (w + 2 * pad - k) / stride + 1,
    );
    let planes = x.len() / (h * w).max(1);
    let mut out = vec![0.0; planes * oh * ow];
    // Which input indices along one axis a window starting at output `o` covers.
    let span = |o: usize, n: usize| {
        let start = (o * stride).saturating_sub(pad);
        let end = (o * stride + k).saturating_sub(pad).min(n);
        start..end
    };
    if !out.is_empty() {
        out.par_chunks_mut(ow).enumerate().for_each(|(row, dst)| {
            let (p, oy) = (row / oh, row % oh);
            let plane = &x[p * h * w..][..h * w];
            for (ox, d) in dst.iter_mut().enumerate() {
                let mut m = f32::NEG_INFINITY;
                for y in span(oy, h) {
                    for &v in &plane[y * w..][span(ox, w)] {
                        // NaN propagates, as in torch.
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
                *d = m;
            }
        });
    }
    let mut shape = dims.to_vec();
    shape[r - 2] = oh;
    shape[r - 1] = ow;
    (out, shape)
}

/// Source indices and weights of each output position along one axis.
struct Taps {
    index: Vec<usize>,
    weight: Vec<f32>,
    per_output: usize,
}

/// PyTorch's `area_pixel_compute_scale` for a size-given resize.
fn scale(input: usize, output: usize, align_corners: bool) -> f64 {
    if align_corners {
        if output > 1 {
            (input as f64 - 1.0) / (output as f64 - 1.0)
        } else {
            0.0
        }
    } else {
        input as f64 / output as f64
    }
}

/// Keys' cubic convolution kernel with a = −0.75.
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.75;
    let x = x.abs();
    if x <= 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

fn taps(input: usize, output: usize, mode: ResizeMode, align_corners: bool) -> Taps {
    let s = scale(input, output, align_corners);
    let last = input as isize - 1;
    let clampi = |i: isize| i.clamp(0, last) as usize;
    let per_output = match mode {
        ResizeMode::Bilinear => 2,
        ResizeMode::Bicubic => 4,
    };
    let mut index = Vec::with_capacity(output * per_output);
    let mut weight = Vec::with_capacity(output * per_output);
    for o in 0..output {
        let src = if align_corners {
            o as f64 * s
        } else {
            (o as f64 + 0.5) * s - 0.5
        };
        match mode {
            ResizeMode::Bilinear => {
                // Linear modes clamp negative source coordinates to 0; cubic does not.
                let src = src.max(0.0);
                let i0 = (src.floor() as isize).min(last);
                let t = src - i0 as f64;
                index.extend([clampi(i0), clampi(i0 + 1)]);
                weight.extend([(1.0 - t) as f32, t as f32]);
            }
            ResizeMode::Bicubic => {
                let i0 = src.floor() as isize;
                let t = src - i0 as f64;
                for k in -1..=2isize {
                    index.push(clampi(i0 + k));
                    weight.push(cubic(t - k as f64) as f32);
                }
            }
        }
    }
    Taps {
        index,
        weight,
        per_output,
    }
}

pub fn resize2d(
    x: &[f32],
    dims: &[usize],
    oh: usize,
    ow: usize,
    mode: ResizeMode,
    align_corners: bool,
) -> (Vec<f32>, Vec<usize>) {
    let r = dims.len();
    let (h, w) = (dims[r - 2], dims[r - 1]);
    let ty = taps(h, oh, mode, align_corners);
    let tx = taps(w, ow, mode, align_corners);
    let planes = x.len() / (h * w);
    let mut out = vec![0.0; planes * oh * ow];
    out.par_chunks_mut(ow).enumerate().for_each(|(row, dst)| {
        let (p, y) = (row / oh, row % oh);
        let plane = &x[p * h * w..(p + 1) * h * w];
        let mut line = vec![0.0f32; w];
        for k in 0..ty.per_output {
            let (iy, wy) = (
                ty.index[y * ty.per_output + k],
                ty.weight[y * ty.per_output + k],
            );
            for (l, &v) in line.iter_mut().zip(&plane[iy * w..(iy + 1) * w]) {
                *l += wy * v;
            }
        }
        for (xo, d) in dst.iter_mut().enumerate() {
            let base = xo * tx.per_output;
            *d = (0..tx.per_output)
                .map(|k| tx.weight[base + k] * line[tx.index[base + k]])
                .sum();
        }
    });
    let mut shape = dims.to_vec();
    shape[r - 2] = oh;
    shape[r - 1] = ow;
    (out, shape)
}
