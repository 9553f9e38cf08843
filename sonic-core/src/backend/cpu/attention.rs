//! Multi-head attention over token-major tensors, blocked over queries: each task takes a
//! block of up to 64 queries of one (batch, head) and walks the keys in chunks with an
//! online softmax (running maximum and sum; earlier partial results are rescaled when the
//! maximum grows), so its scratch stays in L1/L2 however long the sequence.
//!
//! The work runs across queries, one query per SIMD lane: the scaled queries of the block
//! are packed transposed (`[d][queries]`), so a chunk of scores is `[keys][queries]`, its
//! softmax needs no horizontal reductions, and both products are register-tiled
//! broadcast-and-FMA loops that read keys and values in place (heads are addressed through
//! strides; no permute copies are made). The output tile is `[dv][queries]`, transposed
//! when written out.

use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

use super::math;

pub struct Shape {
    pub b: usize,
    pub heads: usize,
    pub lq: usize,
    pub lk: usize,
    pub d: usize,
    pub dv: usize,
}

/// Queries per task: a multiple of every SIMD width.
const QUERY_BLOCK: usize = 64;
/// Keys per softmax chunk: a multiple of every key tile height below.
const KEY_CHUNK: usize = 96;

/// Per-thread scratch: packed queries, one chunk of scores, the output tile.
struct Scratch {
    qt: Vec<f32>,
    scores: Vec<f32>,
    tile: Vec<f32>,
}

/// The output buffer, shared across tasks that each write a disjoint set of (row, head) cells.
struct Out(*mut f32);
unsafe impl Sync for Out {}

impl Out {
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// One task: queries `q0..q0 + rows` of batch `b`, head `h`.
struct Task<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    s: &'a Shape,
    scale: f32,
    b: usize,
    h: usize,
    q0: usize,
    rows: usize,
}

pub fn attention(q: &[f32], k: &[f32], v: &[f32], s: &Shape, scale: f32) -> Vec<f32> {
    let hdv = s.heads * s.dv;
    let mut out = vec![0.0f32; s.b * s.lq * hdv];
    let block = QUERY_BLOCK.min(s.lq).max(1);
    let blocks = s.lq.div_ceil(block);
    let out_ptr = Out(out.as_mut_ptr());
    let out_len = out.len();
    let arch = Arch::new();
    (0..s.b * s.heads * blocks).into_par_iter().for_each_init(
        || Scratch {
            qt: vec![0.0; s.d * QUERY_BLOCK],
            scores: vec![0.0; KEY_CHUNK * QUERY_BLOCK],
            tile: vec![0.0; s.dv * QUERY_BLOCK],
        },
        |scratch, task| {
            let (bh, blk) = (task / blocks, task % blocks);
            let q0 = blk * block;
            let t = Task {
                q,
                k,
                v,
                s,
                scale,
                b: bh / s.heads,
                h: bh % s.heads,
                q0,
                rows: block.min(s.lq - q0),
            };
            // The tile is [dv][width] with `width` the rows rounded up to the SIMD width.
            let width = arch.dispatch(Block {
                t: &t,
                qt: &mut scratch.qt,
                scores: &mut scratch.scores,
                tile: &mut scratch.tile,
            });
            for i in 0..t.rows {
                let at = (t.b * s.lq + q0 + i) * hdv + t.h * s.dv;
                assert!(at + s.dv <= out_len);
                for c in 0..s.dv {
                    let value = scratch.tile[c * width + i];
                    // SAFETY: in bounds (checked above); the cells of (row, head h) are
                    // written by this task alone and no reference into `out` is alive.
                    unsafe { out_ptr.at(at + c).write(value) };
                }
            }
        },
    );
    out
}

struct Block<'a> {
    t: &'a Task<'a>,
    qt: &'a mut [f32],
    scores: &'a mut [f32],
    tile: &'a mut [f32],
}

impl WithSimd for Block<'_> {
    /// The row width of the output tile.
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> usize {
        block(simd, self.t, self.qt, self.scores, self.tile)
    }
}

/// e^x, with fused multiply-adds where the SIMD level has them.
#[inline(always)]
fn exp<S: Simd>(x: f32) -> f32 {
    if S::IS_SCALAR {
        math::exp(x)
    } else {
        math::exp_fma(x)
    }
}

/// Computes the normalised output tile `[dv][width]` of one task and returns `width`.
#[inline(always)]
fn block<S: Simd>(
    simd: S,
    t: &Task,
    qt: &mut [f32],
    scores: &mut [f32],
    tile: &mut [f32],
) -> usize {
    let s = t.s;
    let (d, dv, hd, hdv) = (s.d, s.dv, s.heads * s.d, s.heads * s.dv);
    let lanes = S::F32_LANES;
    let vectors = t.rows.div_ceil(lanes);
    let width = vectors * lanes;
    // Queries, scaled and transposed: qt[dd·width + i] = scale·q[q0 + i][dd].
    let qt = &mut qt[..d * width];
    // Column by column: the reads stride through a few cached rows, the writes are contiguous.
    let rows: &[f32] = &t.q[(t.b * s.lq + t.q0) * hd + t.h * d..];
    for (dd, col) in qt.chunks_exact_mut(width).enumerate() {
        let (col, pad) = col.split_at_mut(t.rows);
        for (i, x) in col.iter_mut().enumerate() {
            *x = rows[i * hd + dd] * t.scale;
        }
        pad.fill(0.0);
    }
    let tile = &mut tile[..dv * width];
    tile.fill(0.0);
    let k = &t.k[t.b * s.lk * hd + t.h * d..];
    let v = &t.v[t.b * s.lk * hdv + t.h * dv..];
    let mut max = [f32::NEG_INFINITY; QUERY_BLOCK];
    let mut shift = [f32::NEG_INFINITY; QUERY_BLOCK];
    let mut total = [0.0f32; QUERY_BLOCK];
    let (max, shift, total) = (&mut max[..width], &mut shift[..width], &mut total[..width]);
    for j0 in (0..s.lk).step_by(KEY_CHUNK) {
        let kc = KEY_CHUNK.min(s.lk - j0);
        let chunk = &mut scores[..kc * width];
        let q_vec: &[S::f32s] = bytemuck::cast_slice(qt);
        score_tiles(
            simd,
            q_vec,
            vectors,
            &k[j0 * hd..],
            hd,
            d,
            kc,
            bytemuck::cast_slice_mut(chunk),
            bytemuck::cast_slice_mut(max),
        );
        // With the running maximum updated, the shift it gives (0 when not finite, so that
        // rows of -inf or +inf give what a plain softmax gives) and the rescale of earlier
        // chunks.
        let mut alpha = [1.0f32; QUERY_BLOCK];
        for ((a, sh), &m) in alpha.iter_mut().zip(shift.iter_mut()).zip(max.iter()) {
            let new = if m.is_finite() { m } else { 0.0 };
            *a = exp::<S>(*sh - new);
            *sh = new;
        }
        let mut sum = [0.0f32; QUERY_BLOCK];
        for row in chunk.chunks_exact_mut(width) {
            for ((x, &sh), acc) in row.iter_mut().zip(shift.iter()).zip(sum.iter_mut()) {
                let e = exp::<S>(*x - sh);
                *x = e;
                *acc += e;
            }
        }
        for ((t, &a), &s) in total.iter_mut().zip(&alpha).zip(&sum) {
            *t = *t * a + s;
        }
        if j0 > 0 {
            for row in tile.chunks_exact_mut(width) {
                for (x, &a) in row.iter_mut().zip(&alpha) {
                    *x *= a;
                }
            }
        }
        let p_vec: &[S::f32s] = bytemuck::cast_slice(chunk);
        value_tiles(
            simd,
            p_vec,
            vectors,
            kc,
            &v[j0 * hdv..],
            hdv,
            dv,
            bytemuck::cast_slice_mut(tile),
        );
    }
    let mut inv = [0.0f32; QUERY_BLOCK];
    for (i, &t) in inv.iter_mut().zip(total.iter()) {
        *i = 1.0 / t;
    }
    for row in tile.chunks_exact_mut(width) {
        for (x, &i) in row.iter_mut().zip(&inv) {
            *x *= i;
        }
    }
    width
}

/// Scores of `kc` keys (rows `j·ks` of `k`, `d` wide) against the packed queries
/// (`qt[dd·vectors + jj]`), into `out[j·vectors + jj]`, tile by tile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn score_tiles<S: Simd>(
    simd: S,
    qt: &[S::f32s],
    vectors: usize,
    k: &[f32],
    ks: usize,
    d: usize,
    kc: usize,
    out: &mut [S::f32s],
    max: &mut [S::f32s],
) {
    macro_rules! tiles {
        ($($jt:literal => $r:literal),*) => {{
            let mut jg = 0;
            while jg < vectors {
                let jt = (vectors - jg).min(max_group(S::F32_LANES));
                match jt {
                    $($jt => {
                        let full = kc - kc % $r;
                        for j in (0..full).step_by($r) {
                            score_tile::<S, $r, $jt>(simd, qt, vectors, jg, &k[j * ks..], ks, d, &mut out[j * vectors..], &mut max[jg..]);
                        }
                        for j in full..kc {
                            score_tile::<S, 1, $jt>(simd, qt, vectors, jg, &k[j * ks..], ks, d, &mut out[j * vectors..], &mut max[jg..]);
                        }
                    })*
                    _ => unreachable!(),
                }
                jg += jt;
            }
        }};
    }
    if S::F32_LANES >= 16 {
        tiles!(1 => 16, 2 => 12, 3 => 8, 4 => 6)
    } else if S::F32_LANES >= 8 {
        tiles!(1 => 12, 2 => 6)
    } else {
        tiles!(1 => 8, 2 => 4, 3 => 4, 4 => 3)
    }
}

/// Query vectors per register tile: all four with 16 lanes, two with 8, four scalars.
#[inline(always)]
fn max_group(lanes: usize) -> usize {
    match lanes {
        16.. => 4,
        8.. => 2,
        _ => 4,
    }
}

/// `R` keys against `JT` query vectors starting at vector `jg`; `max[jj]` takes the
/// running maximum of the scores (NaN skipped).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn score_tile<S: Simd, const R: usize, const JT: usize>(
    simd: S,
    qt: &[S::f32s],
    vectors: usize,
    jg: usize,
    k: &[f32],
    ks: usize,
    d: usize,
    out: &mut [S::f32s],
    max: &mut [S::f32s],
) {
    let keys: [&[f32]; R] = std::array::from_fn(|r| &k[r * ks..][..d]);
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; JT]; R];
    for dd in 0..d {
        let q = &qt[dd * vectors + jg..][..JT];
        for r in 0..R {
            let x = simd.splat_f32s(keys[r][dd]);
            for jj in 0..JT {
                acc[r][jj] = simd.mul_add_e_f32s(x, q[jj], acc[r][jj]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        out[r * vectors + jg..][..JT].copy_from_slice(row);
    }
    for (jj, m) in max[..JT].iter_mut().enumerate() {
        for row in &acc {
            *m = simd.select_f32s(simd.greater_than_f32s(row[jj], *m), row[jj], *m);
        }
    }
}

/// Adds the weighted values over `kc` keys to the tile: `tile[c·vectors + jj] +=
/// Σ_j v[j·vs + c] · p[j·vectors + jj]`, tile by tile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn value_tiles<S: Simd>(
    simd: S,
    p: &[S::f32s],
    vectors: usize,
    kc: usize,
    v: &[f32],
    vs: usize,
    dv: usize,
    tile: &mut [S::f32s],
) {
    macro_rules! tiles {
        ($($jt:literal => ($r:literal, $r2:literal)),*) => {{
            let mut jg = 0;
            while jg < vectors {
                let jt = (vectors - jg).min(max_group(S::F32_LANES));
                match jt {
                    $($jt => {
                        let mut c = 0;
                        while c + $r <= dv {
                            value_tile::<S, $r, $jt>(simd, p, vectors, jg, kc, &v[c..], vs, &mut tile[c * vectors..]);
                            c += $r;
                        }
                        while c + $r2 <= dv {
                            value_tile::<S, $r2, $jt>(simd, p, vectors, jg, kc, &v[c..], vs, &mut tile[c * vectors..]);
                            c += $r2;
                        }
                        while c < dv {
                            value_tile::<S, 1, $jt>(simd, p, vectors, jg, kc, &v[c..], vs, &mut tile[c * vectors..]);
                            c += 1;
                        }
                    })*
                    _ => unreachable!(),
                }
                jg += jt;
            }
        }};
    }
    if S::F32_LANES >= 16 {
        tiles!(1 => (16, 8), 2 => (12, 4), 3 => (8, 4), 4 => (6, 4))
    } else if S::F32_LANES >= 8 {
        tiles!(1 => (12, 4), 2 => (6, 4))
    } else {
        tiles!(1 => (8, 4), 2 => (4, 2), 3 => (4, 2), 4 => (3, 2))
    }
}

/// `R` value channels against `JT` query vectors starting at vector `jg`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn value_tile<S: Simd, const R: usize, const JT: usize>(
    simd: S,
    p: &[S::f32s],
    vectors: usize,
    jg: usize,
    kc: usize,
    v: &[f32],
    vs: usize,
    tile: &mut [S::f32s],
) {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[zero; JT]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        row.copy_from_slice(&tile[r * vectors + jg..][..JT]);
    }
    for j in 0..kc {
        let w = &p[j * vectors + jg..][..JT];
        let vals = &v[j * vs..][..R];
        for r in 0..R {
            let x = simd.splat_f32s(vals[r]);
            for jj in 0..JT {
                acc[r][jj] = simd.mul_add_e_f32s(x, w[jj], acc[r][jj]);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        tile[r * vectors + jg..][..JT].copy_from_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::FrameNoise;

    fn reference(q: &[f32], k: &[f32], v: &[f32], s: &Shape, scale: f32) -> Vec<f64> {
        let (hd, hdv) = (s.heads * s.d, s.heads * s.dv);
        let mut out = vec![0.0; s.b * s.lq * hdv];
        for b in 0..s.b {
            for h in 0..s.heads {
                for i in 0..s.lq {
                    let qr = &q[(b * s.lq + i) * hd + h * s.d..][..s.d];
                    let scores: Vec<f64> = (0..s.lk)
                        .map(|j| {
                            let kr = &k[(b * s.lk + j) * hd + h * s.d..][..s.d];
                            let dot: f64 =
                                qr.iter().zip(kr).map(|(&a, &b)| a as f64 * b as f64).sum();
                            dot * scale as f64
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                    let total: f64 = e.iter().sum();
                    let o = &mut out[(b * s.lq + i) * hdv + h * s.dv..][..s.dv];
                    for (j, w) in e.iter().enumerate() {
                        let vr = &v[(b * s.lk + j) * hdv + h * s.dv..][..s.dv];
                        for (o, &x) in o.iter_mut().zip(vr) {
                            *o += w / total * x as f64;
                        }
                    }
                }
            }
        }
        out
    }

    fn check(b: usize, heads: usize, lq: usize, lk: usize, d: usize, dv: usize, spread: f32) {
        let s = Shape {
            b,
            heads,
            lq,
            lk,
            d,
            dv,
        };
        let noise = |stream, len| -> Vec<f32> {
            FrameNoise::new(7)
                .frame(stream, len)
                .into_iter()
                .map(|x| x * spread)
                .collect()
        };
        let q = noise(0, b * lq * heads * d);
        // Keys grow along the sequence, so later chunks raise the running maximum.
        let k: Vec<f32> = noise(1, b * lk * heads * d)
            .iter()
            .enumerate()
            .map(|(i, &x)| x * (1.0 + (i / (heads * d) % lk) as f32 / lk as f32))
            .collect();
        let v = noise(2, b * lk * heads * dv);
        let scale = 1.0 / (d as f32).sqrt();
        let got = attention(&q, &k, &v, &s, scale);
        let want = reference(&q, &k, &v, &s, scale);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 2e-5 * w.abs().max(1.0),
                "b{b} h{heads} lq{lq} lk{lk} d{d} dv{dv}: element {i} is {g}, expected {w}"
            );
        }
    }

    /// Several key chunks (online softmax rescaling), partial query blocks and vectors,
    /// value widths that leave tile remainders.
    #[test]
    fn matches_reference_across_chunks_and_tiles() {
        check(1, 2, 70, 300, 64, 64, 1.0);
        check(2, 1, 64, 97, 16, 10, 2.0);
        check(1, 3, 17, 193, 8, 7, 3.0);
        check(3, 2, 25, 25, 64, 64, 1.0);
        check(1, 1, 130, 1000, 32, 33, 1.5);
    }

    /// A NaN in one query row makes that row NaN and leaves the others finite.
    #[test]
    fn nan_stays_in_its_row() {
        let s = Shape {
            b: 1,
            heads: 1,
            lq: 3,
            lk: 200,
            d: 4,
            dv: 4,
        };
        let mut q = FrameNoise::new(1).frame(0, 12);
        q[4] = f32::NAN;
        let k = FrameNoise::new(1).frame(1, 800);
        let v = FrameNoise::new(1).frame(2, 800);
        let out = attention(&q, &k, &v, &s, 0.5);
        assert!(out[4..8].iter().all(|x| x.is_nan()));
        assert!(out[..4].iter().chain(&out[8..]).all(|x| x.is_finite()));
    }
}
