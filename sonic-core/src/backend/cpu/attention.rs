//! Multi-head attention over token-major tensors, blocked over queries: each task takes a
//! block of queries of one (batch, head), computes its score block with one matrix product,
//! a row softmax and a second product into the output. Heads are addressed through strides,
//! so no permute copies are made; scratch memory is one score block and one output tile.

use rayon::prelude::*;

use super::matmul::{gemm, Mat, MatMut};
use super::norm::softmax_row_in_place;

pub struct Shape {
    pub b: usize,
    pub heads: usize,
    pub lq: usize,
    pub lk: usize,
    pub d: usize,
    pub dv: usize,
}

/// Queries per task: small enough that the score block stays in cache.
const QUERY_BLOCK: usize = 64;

/// The output buffer, shared across tasks that each write a disjoint set of (row, head) cells.
struct Out(*mut f32);
unsafe impl Sync for Out {}

impl Out {
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

pub fn attention(q: &[f32], k: &[f32], v: &[f32], s: &Shape, scale: f32) -> Vec<f32> {
    let (hd, hdv) = (s.heads * s.d, s.heads * s.dv);
    let mut out = vec![0.0f32; s.b * s.lq * hdv];
    let blocks = s.lq.div_ceil(QUERY_BLOCK);
    let out_ptr = Out(out.as_mut_ptr());
    let out_len = out.len();
    (0..s.b * s.heads * blocks).into_par_iter().for_each_init(
        || vec![0.0f32; QUERY_BLOCK * (s.lk + s.dv)],
        |scratch, task| {
            let (bh, blk) = (task / blocks, task % blocks);
            let (b, h) = (bh / s.heads, bh % s.heads);
            let q0 = blk * QUERY_BLOCK;
            let rows = QUERY_BLOCK.min(s.lq - q0);
            let scores = &mut scratch[..rows * s.lk];
            let qb = &q[(b * s.lq + q0) * hd + h * s.d..];
            let kb = &k[b * s.lk * hd + h * s.d..];
            let vb = &v[b * s.lk * hdv + h * s.dv..];
            gemm(
                MatMut {
                    data: scores,
                    rs: s.lk,
                    cs: 1,
                },
                Mat {
                    data: qb,
                    rs: hd,
                    cs: 1,
                },
                Mat {
                    data: kb,
                    rs: 1,
                    cs: hd,
                },
                rows,
                s.d,
                s.lk,
                1.0,
                false,
                1,
            );
            for row in scores.chunks_mut(s.lk) {
                softmax_row_in_place(row, scale);
            }
            let (scores, tile) = scratch.split_at_mut(QUERY_BLOCK * s.lk);
            let tile = &mut tile[..rows * s.dv];
            gemm(
                MatMut {
                    data: tile,
                    rs: s.dv,
                    cs: 1,
                },
                Mat {
                    data: &scores[..rows * s.lk],
                    rs: s.lk,
                    cs: 1,
                },
                Mat {
                    data: vb,
                    rs: hdv,
                    cs: 1,
                },
                rows,
                s.lk,
                s.dv,
                1.0,
                false,
                1,
            );
            for (r, line) in tile.chunks(s.dv).enumerate() {
                let at = (b * s.lq + q0 + r) * hdv + h * s.dv;
                assert!(at + s.dv <= out_len);
                // SAFETY: in bounds (checked above); the cells of (row, head h) are written
                // by this task alone and no reference into `out` is alive meanwhile.
                unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), out_ptr.at(at), s.dv) };
            }
        },
    );
    out
}
