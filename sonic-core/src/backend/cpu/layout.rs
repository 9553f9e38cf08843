//! Copies that change layout: permute, concat, gather along an axis, reductions.

use rayon::prelude::*;

use crate::Shape;

pub fn permute(x: &[f32], dims: &[usize], perm: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let src_strides = Shape::new(dims).strides();
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| src_strides[p]).collect();
    let mut out = vec![0.0; x.len()];
    let rank = out_dims.len();
    let inner = out_dims[rank - 1];
    if out.is_empty() {
        return (out, out_dims);
    }
    let inner_stride = strides[rank - 1];
    let outer = &out_dims[..rank - 1];
    out.par_chunks_mut(inner)
        .enumerate()
        .with_min_len((1 << 13) / inner + 1)
        .for_each(|(row, dst)| {
            let (mut rem, mut base) = (row, 0);
            for i in (0..outer.len()).rev() {
                base += (rem % outer[i]) * strides[i];
                rem /= outer[i];
            }
            for (j, d) in dst.iter_mut().enumerate() {
                *d = x[base + j * inner_stride];
            }
        });
    (out, out_dims)
}

pub fn concat(parts: &[(&[f32], &[usize])], axis: usize) -> (Vec<f32>, Vec<usize>) {
    let mut dims = parts[0].1.to_vec();
    dims[axis] = parts.iter().map(|(_, d)| d[axis]).sum();
    let (outer, _, inner) = Shape::new(dims.clone()).split_at_axis(axis);
    let mut out = Vec::with_capacity(dims.iter().product());
    for o in 0..outer {
        for (data, d) in parts {
            let run = d[axis] * inner;
            out.extend_from_slice(&data[o * run..(o + 1) * run]);
        }
    }
    (out, dims)
}

pub fn index_select(x: &[f32], shape: &Shape, axis: usize, indices: &[usize]) -> Vec<f32> {
    let (outer, size, inner) = shape.split_at_axis(axis);
    let mut out = vec![0.0; outer * indices.len() * inner];
    if inner == 0 {
        return out;
    }
    out.par_chunks_mut(inner)
        .enumerate()
        .with_min_len((1 << 13) / inner + 1)
        .for_each(|(row, dst)| {
            let (o, j) = (row / indices.len(), row % indices.len());
            let src = (o * size + indices[j]) * inner;
            dst.copy_from_slice(&x[src..src + inner]);
        });
    out
}

/// Sums over `axes` (sorted, distinct), one axis at a time, accumulating in f64.
pub fn sum_keepdim(x: &[f32], dims: &[usize], axes: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let mut data = x.to_vec();
    let mut dims = dims.to_vec();
    for &axis in axes {
        let (outer, size, inner) = Shape::new(dims.clone()).split_at_axis(axis);
        let mut out = vec![0.0f32; outer * inner];
        if inner > 0 {
            out.par_chunks_mut(inner).enumerate().for_each(|(o, dst)| {
                let mut acc = vec![0.0f64; inner];
                for j in 0..size {
                    let row = &data[(o * size + j) * inner..][..inner];
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += v as f64;
                    }
                }
                for (d, a) in dst.iter_mut().zip(acc) {
                    *d = a as f32;
                }
            });
        }
        data = out;
        dims[axis] = 1;
    }
    (data, dims)
}
