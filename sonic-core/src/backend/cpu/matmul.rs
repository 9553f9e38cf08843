//! Matrix products on top of the `gemm` crate.

use gemm::Parallelism;
use rayon::prelude::*;

/// A row-major or strided matrix view: element (i, j) is at `i·rs + j·cs`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major `[cols of result, rows of result]` matrix, read in place.
    pub fn transposed(data: &'a [f32], stored_cols: usize) -> Self {
        Mat {
            data,
            rs: 1,
            cs: stored_cols,
        }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// A mutable strided destination, as [`Mat`].
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
    pub cs: usize,
}

/// `dst = beta·a·b` (or `dst += beta·a·b` when `accumulate`), with `a [m, k]`, `b [k, n]`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    dst: MatMut,
    a: Mat,
    b: Mat,
    m: usize,
    k: usize,
    n: usize,
    beta: f32,
    accumulate: bool,
    threads: usize,
) {
    let dst_fits = m == 0 || n == 0 || (m - 1) * dst.rs + (n - 1) * dst.cs < dst.data.len();
    // These bounds make the raw-pointer call below sound.
    assert!(
        dst_fits && a.fits(m, k) && b.fits(k, n),
        "gemm view out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.rs + j * dst.cs] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: every view was bounds-checked above for the (m, k, n) it is read or written with.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            beta,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Work (m·k·n) under which a product is run on one thread: splitting costs more than it saves.
const PARALLEL_WORK: usize = 1 << 18;

fn threads_for(m: usize, k: usize, n: usize) -> usize {
    if m * k * n < PARALLEL_WORK {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// `batch` products `a_i [m, k] · b_i [k, n]` (or one shared `b`).
pub fn batched(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    shared_rhs: bool,
) -> Vec<f32> {
    let mut out = vec![0.0; batch * m * n];
    if out.is_empty() {
        return out;
    }
    let run = |i: usize, dst: &mut [f32], threads: usize| {
        let a = Mat::rows(&a[i * m * k..(i + 1) * m * k], k);
        let b_off = if shared_rhs { 0 } else { i * k * n };
        let b = Mat::rows(&b[b_off..b_off + k * n], n);
        gemm(
            MatMut {
                data: dst,
                rs: n,
                cs: 1,
            },
            a,
            b,
            m,
            k,
            n,
            1.0,
            false,
            threads,
        );
    };
    let threads = threads_for(m, k, n);
    if batch > 1 && threads > 1 && batch >= rayon::current_num_threads() {
        out.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, dst)| run(i, dst, 1));
    } else {
        for (i, dst) in out.chunks_mut(m * n).enumerate() {
            run(i, dst, threads);
        }
    }
    out
}

/// `x [rows, k] · wᵀ + bias` with `w [n, k]`.
pub fn linear(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    let mut out = match bias {
        Some(bias) => bias.repeat(rows),
        None => vec![0.0; rows * n],
    };
    gemm(
        MatMut {
            data: &mut out,
            rs: n,
            cs: 1,
        },
        Mat::rows(x, k),
        Mat::transposed(w, k),
        rows,
        k,
        n,
        1.0,
        bias.is_some(),
        threads_for(rows, k, n),
    );
    out
}
