//! GroupNorm, LayerNorm and softmax. Statistics are exact two-pass (mean, then the mean of
//! squared deviations) with f64 accumulation across blocks, so large groups stay accurate.

use multiversion::multiversion;
use rayon::prelude::*;

use super::math;

const LANES: usize = 16;

/// Sum of `x` with 16 independent f32 lanes per block, blocks added in f64.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
fn sum(x: &[f32]) -> f64 {
    let mut total = 0.0f64;
    for block in x.chunks(4096) {
        let mut acc = [0.0f32; LANES];
        let mut chunks = block.chunks_exact(LANES);
        for c in &mut chunks {
            for i in 0..LANES {
                acc[i] += c[i];
            }
        }
        let tail: f32 = chunks.remainder().iter().sum();
        total += acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64;
    }
    total
}

/// Σ (x − mean)², as [`sum`].
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
fn sum_sq_dev(x: &[f32], mean: f32) -> f64 {
    let mut total = 0.0f64;
    for block in x.chunks(4096) {
        let mut acc = [0.0f32; LANES];
        let mut chunks = block.chunks_exact(LANES);
        for c in &mut chunks {
            for i in 0..LANES {
                let d = c[i] - mean;
                acc[i] += d * d;
            }
        }
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|&v| (v - mean) * (v - mean))
            .sum();
        total += acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64;
    }
    total
}

/// Mean and 1/√(var + eps) of `x` (biased variance, as PyTorch's norms).
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len().max(1) as f64;
    let mean = sum(x) / n;
    let var = sum_sq_dev(x, mean as f32) / n;
    (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
fn scale_shift(x: &[f32], out: &mut [f32], scale: f32, shift: f32, silu: bool) {
    if silu {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = math::silu(v * scale + shift);
        }
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v * scale + shift;
        }
    }
}

/// GroupNorm over `[n, c, spatial…]` laid out contiguously.
#[allow(clippy::too_many_arguments)]
pub fn group_norm(
    x: &[f32],
    n: usize,
    c: usize,
    groups: usize,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    silu: bool,
) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    let group_len = x.len() / (n * groups).max(1);
    if group_len == 0 {
        return out;
    }
    let per_group = c / groups;
    let spatial = group_len / per_group;
    out.par_chunks_mut(group_len)
        .zip(x.par_chunks(group_len))
        .enumerate()
        .for_each(|(ng, (o, xs))| {
            let (mean, rstd) = moments(xs, eps);
            let g = ng % groups;
            for (ci, (oc, xc)) in o.chunks_mut(spatial).zip(xs.chunks(spatial)).enumerate() {
                let ch = g * per_group + ci;
                let scale = rstd * weight.map_or(1.0, |w| w[ch]);
                let shift = bias.map_or(0.0, |b| b[ch]) - mean * scale;
                scale_shift(xc, oc, scale, shift, silu);
            }
        });
    out
}

/// LayerNorm over rows of `width`.
pub fn layer_norm(
    x: &[f32],
    width: usize,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    if width == 0 {
        return out;
    }
    out.par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .with_min_len((1 << 14) / width + 1)
        .for_each(|(o, row)| {
            let (mean, rstd) = moments(row, eps);
            affine_row(row, o, mean, rstd, weight, bias);
        });
    out
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
fn affine_row(
    row: &[f32],
    out: &mut [f32],
    mean: f32,
    rstd: f32,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
) {
    match (weight, bias) {
        (Some(w), Some(b)) => {
            for (((o, &v), &w), &b) in out.iter_mut().zip(row).zip(w).zip(b) {
                *o = (v - mean) * rstd * w + b;
            }
        }
        _ => {
            for (i, (o, &v)) in out.iter_mut().zip(row).enumerate() {
                *o = (v - mean) * rstd * weight.map_or(1.0, |w| w[i]) + bias.map_or(0.0, |b| b[i]);
            }
        }
    }
}

/// Softmax of each row in place, with the row scaled by `scale` first.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
pub fn softmax_row_in_place(row: &mut [f32], scale: f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let shift = if max.is_finite() { max * scale } else { 0.0 };
    let mut total = 0.0f32;
    for v in row.iter_mut() {
        let e = math::exp(*v * scale - shift);
        *v = e;
        total += e;
    }
    let inv = 1.0 / total;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

pub fn softmax(x: &[f32], width: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    if width == 0 {
        return out;
    }
    out.par_chunks_mut(width)
        .with_min_len((1 << 14) / width + 1)
        .for_each(|row| softmax_row_in_place(row, 1.0));
    out
}
