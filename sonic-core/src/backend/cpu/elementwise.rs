//! Elementwise ops: unary maps, broadcasting binary ops, GEGLU.

use multiversion::multiversion;
use rayon::prelude::*;

use super::math;
use crate::backend::{BinaryOp, UnaryOp};
use crate::Shape;

/// Elements per parallel task: large enough that scheduling is negligible.
const CHUNK: usize = 1 << 15;

#[inline(always)]
fn apply(src: &[f32], dst: &mut [f32], f: impl Fn(f32) -> f32) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f(s);
    }
}

macro_rules! vectorised_unary {
    ($($name:ident => $f:expr),* $(,)?) => {
        $(
            #[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
            fn $name(src: &[f32], dst: &mut [f32]) {
                apply(src, dst, $f)
            }
        )*
    };
}

vectorised_unary! {
    neg => |x: f32| -x,
    abs => |x: f32| x.abs(),
    exp => math::exp,
    log => |x: f32| x.ln(),
    sqrt => |x: f32| x.sqrt(),
    square => |x: f32| x * x,
    recip => |x: f32| 1.0 / x,
    tanh => math::tanh,
    sin => |x: f32| x.sin(),
    cos => |x: f32| x.cos(),
    // Not `max(0.0)`, which turns NaN into 0; PyTorch's relu keeps it.
    relu => |x: f32| if x < 0.0 { 0.0 } else { x },
    sigmoid => math::sigmoid,
    silu => math::silu,
    gelu_erf => math::gelu_erf,
    gelu_tanh => math::gelu_tanh,
    quick_gelu => |x: f32| x * math::sigmoid(1.702 * x),
}

pub fn unary(src: &[f32], op: UnaryOp) -> Vec<f32> {
    let kernel: fn(&[f32], &mut [f32]) = match op {
        UnaryOp::Neg => neg,
        UnaryOp::Abs => abs,
        UnaryOp::Exp => exp,
        UnaryOp::Log => log,
        UnaryOp::Sqrt => sqrt,
        UnaryOp::Square => square,
        UnaryOp::Recip => recip,
        UnaryOp::Tanh => tanh,
        UnaryOp::Sin => sin,
        UnaryOp::Cos => cos,
        UnaryOp::Relu => relu,
        UnaryOp::Sigmoid => sigmoid,
        UnaryOp::Silu => silu,
        UnaryOp::GeluErf => gelu_erf,
        UnaryOp::GeluTanh => gelu_tanh,
        UnaryOp::QuickGelu => quick_gelu,
    };
    let mut out = vec![0.0; src.len()];
    out.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| kernel(s, d));
    out
}

/// A closure map for ops with parameters (affine, clamp).
pub fn map(src: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    let mut out = vec![0.0; src.len()];
    out.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| apply(s, d, &f));
    out
}

#[inline(always)]
fn combine(op: BinaryOp) -> fn(f32, f32) -> f32 {
    match op {
        BinaryOp::Add => |a, b| a + b,
        BinaryOp::Sub => |a, b| a - b,
        BinaryOp::Mul => |a, b| a * b,
        BinaryOp::Div => |a, b| a / b,
        BinaryOp::Maximum => |a, b| if a.is_nan() || a > b { a } else { b },
        BinaryOp::Minimum => |a, b| if a.is_nan() || a < b { a } else { b },
    }
}

/// Strides of `shape` seen from a broadcast `out` shape: 0 where the dim is broadcast.
fn broadcast_strides(shape: &Shape, out: &Shape) -> Vec<usize> {
    let pad = out.rank() - shape.rank();
    let own = shape.strides();
    (0..out.rank())
        .map(|i| {
            if i < pad || shape.dims()[i - pad] == 1 {
                0
            } else {
                own[i - pad]
            }
        })
        .collect()
}

/// Broadcasting binary op. Runs of the innermost dimension are processed as slices
/// (vector-vector, vector-scalar or scalar-vector), which covers the bias, per-channel
/// and per-row patterns the models use without index arithmetic per element.
pub fn binary(
    a: &[f32],
    ashape: &Shape,
    b: &[f32],
    bshape: &Shape,
    op: BinaryOp,
    out: &Shape,
) -> Vec<f32> {
    let f = combine(op);
    let n = out.elem_count();
    let mut dst = vec![0.0; n];
    if n == 0 {
        return dst;
    }
    if ashape == bshape {
        dst.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(d, (x, y))| {
                for ((d, &x), &y) in d.iter_mut().zip(x).zip(y) {
                    *d = f(x, y);
                }
            });
        return dst;
    }
    let rank = out.rank();
    let inner = if rank == 0 { 1 } else { out.dims()[rank - 1] };
    let sa = broadcast_strides(ashape, out);
    let sb = broadcast_strides(bshape, out);
    let (ia, ib) = if rank == 0 {
        (1, 1)
    } else {
        (sa[rank - 1], sb[rank - 1])
    };
    let outer_dims = &out.dims()[..rank.saturating_sub(1)];
    let row_offsets = |row: usize| {
        let (mut rem, mut oa, mut ob) = (row, 0, 0);
        for i in (0..outer_dims.len()).rev() {
            let idx = rem % outer_dims[i];
            rem /= outer_dims[i];
            oa += idx * sa[i];
            ob += idx * sb[i];
        }
        (oa, ob)
    };
    dst.par_chunks_mut(inner)
        .enumerate()
        .with_min_len((CHUNK / inner).max(1))
        .for_each(|(row, d)| {
            let (oa, ob) = row_offsets(row);
            match (ia, ib) {
                (1, 1) => {
                    for ((d, &x), &y) in
                        d.iter_mut().zip(&a[oa..oa + inner]).zip(&b[ob..ob + inner])
                    {
                        *d = f(x, y);
                    }
                }
                (1, 0) => {
                    let y = b[ob];
                    for (d, &x) in d.iter_mut().zip(&a[oa..oa + inner]) {
                        *d = f(x, y);
                    }
                }
                (0, 1) => {
                    let x = a[oa];
                    for (d, &y) in d.iter_mut().zip(&b[ob..ob + inner]) {
                        *d = f(x, y);
                    }
                }
                _ => d.fill(f(a[oa], b[ob])),
            }
        });
    dst
}

/// `x[.., :w/2] · gelu(x[.., w/2:])` per row of width `width`.
pub fn geglu(x: &[f32], width: usize) -> Vec<f32> {
    let half = width / 2;
    let rows = x.len() / width.max(1);
    let mut out = vec![0.0; rows * half];
    out.par_chunks_mut(half.max(1))
        .zip(x.par_chunks(width.max(1)))
        .for_each(|(o, row)| geglu_row(&row[..half], &row[half..], o));
    out
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma", "x86_64+avx2+fma"))]
fn geglu_row(a: &[f32], gate: &[f32], out: &mut [f32]) {
    for ((o, &a), &g) in out.iter_mut().zip(a).zip(gate) {
        *o = a * math::gelu_erf(g);
    }
}
