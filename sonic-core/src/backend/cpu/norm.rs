//! GroupNorm, LayerNorm and softmax. Statistics are exact two-pass (mean, then the mean of
//! squared deviations) with f64 accumulation across blocks, so large groups stay accurate.

use std::mem::MaybeUninit;

use multiversion::multiversion;
use multiversion::target::target_cfg_f;
use rayon::prelude::*;

use super::math;

const LANES: usize = 16;
/// f32 partial sums per block: four vectors of 16 lanes, so that the adds of a pass do not
/// wait on each other.
const PARTIALS: usize = 4 * LANES;

/// Σ f(x) over one block: `PARTIALS` f32 partial sums, added up in f64.
#[inline(always)]
fn block_sum(block: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f32; PARTIALS];
    let mut chunks = block.chunks_exact(PARTIALS);
    for c in &mut chunks {
        for i in 0..PARTIALS {
            acc[i] += f(c[i]);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

/// Sum of `x`, in blocks of f32 lane sums added in f64.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
fn sum(x: &[f32]) -> f64 {
    x.chunks(4096).map(|block| block_sum(block, |v| v)).sum()
}

/// Σ (x − mean)², as [`sum`].
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
fn sum_sq_dev(x: &[f32], mean: f32) -> f64 {
    x.chunks(4096)
        .map(|block| block_sum(block, |v| (v - mean) * (v - mean)))
        .sum()
}

/// Mean and 1/√(var + eps) of `x` (biased variance, as PyTorch's norms).
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len().max(1) as f64;
    let mean = sum(x) / n;
    let var = sum_sq_dev(x, mean as f32) / n;
    (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}

/// One group of GroupNorm: exact two-pass statistics over the (cache-resident) group, then
/// each channel's affine map, with SiLU fused, written straight to `out`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
#[allow(clippy::too_many_arguments)]
fn normalize_group(
    xs: &[f32],
    out: &mut [MaybeUninit<f32>],
    spatial: usize,
    ch0: usize,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    silu: bool,
) {
    let n = xs.len().max(1) as f64;
    let mean = (xs.chunks(4096).map(|b| block_sum(b, |v| v)).sum::<f64>() / n) as f32;
    let var = xs
        .chunks(4096)
        .map(|b| block_sum(b, |v| (v - mean) * (v - mean)))
        .sum::<f64>()
        / n;
    let rstd = (1.0 / (var + eps as f64).sqrt()) as f32;
    let fma = target_cfg_f!(target_feature = "fma");
    for (ci, (oc, xc)) in out.chunks_mut(spatial).zip(xs.chunks(spatial)).enumerate() {
        let ch = ch0 + ci;
        let scale = rstd * weight.map_or(1.0, |w| w[ch]);
        let shift = bias.map_or(0.0, |b| b[ch]) - mean * scale;
        if silu && fma {
            for (o, &v) in oc.iter_mut().zip(xc) {
                o.write(math::silu_fma(v.mul_add(scale, shift)));
            }
        } else if silu {
            for (o, &v) in oc.iter_mut().zip(xc) {
                o.write(math::silu(v * scale + shift));
            }
        } else {
            for (o, &v) in oc.iter_mut().zip(xc) {
                o.write(v * scale + shift);
            }
        }
    }
}

/// GroupNorm over `[n, c, spatial…]` laid out contiguously, one task per (sample, group).
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
    let len = x.len();
    let group_len = len / (n * groups).max(1);
    if group_len == 0 {
        return vec![0.0; len];
    }
    let per_group = c / groups;
    let spatial = group_len / per_group;
    let run = |(ng, (o, xs)): (usize, (&mut [MaybeUninit<f32>], &[f32]))| {
        let ch0 = (ng % groups) * per_group;
        normalize_group(xs, o, spatial, ch0, weight, bias, eps, silu);
    };
    // Written in full below, so not zeroed first (a zeroing pass costs as much as the
    // normalisation of a cached group).
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let dst = &mut out.spare_capacity_mut()[..len];
    if rayon::current_num_threads() > 1 {
        dst.par_chunks_mut(group_len)
            .zip(x.par_chunks(group_len))
            .enumerate()
            .for_each(run);
    } else {
        // On the calling thread: a hand-off to a one-thread pool costs more than a small
        // norm.
        dst.chunks_mut(group_len)
            .zip(x.chunks(group_len))
            .enumerate()
            .for_each(run);
    }
    // SAFETY: the group chunks tile `0..len` (`len` is `n·groups·group_len`), the channel
    // chunks tile each group, and `normalize_group` writes every element of its group.
    unsafe { out.set_len(len) };
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

/// Softmax of each row in place, with the row scaled by `scale` first. The max and the sum
/// run on 16 independent lanes so that both loops vectorise (a plain float fold cannot be
/// reordered by the compiler and stays scalar).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
pub fn softmax_row_in_place(row: &mut [f32], scale: f32) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            // NaN never wins the comparison, so NaNs are skipped as `f32::max` would.
            lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let shift = if max.is_finite() { max * scale } else { 0.0 };
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            let e = math::exp(c[i] * scale - shift);
            c[i] = e;
            acc[i] += e;
        }
    }
    let mut total = 0.0f32;
    for v in chunks.into_remainder() {
        let e = math::exp(*v * scale - shift);
        *v = e;
        total += e;
    }
    let total = total + acc.iter().sum::<f32>();
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
