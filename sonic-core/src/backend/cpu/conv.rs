//! 1-3d convolution as tiled im2col followed by a matrix product. Tiling the output
//! positions bounds the column buffer, so a full-resolution VAE layer needs megabytes,
//! not gigabytes.

use std::cell::Cell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::matmul::{gemm, Mat, MatMut};
use crate::backend::ConvParams;

/// Upper bound on column-buffer elements per tile (16 MiB of f32).
const TILE_ELEMS: usize = 1 << 22;

thread_local! {
    /// The column buffer, kept for the thread's next convolution: allocated anew, a buffer
    /// this large comes fresh from the system each time and its page faults cost more than
    /// the copy into it. Taken out while in use, so a nested call just gets its own.
    static COLS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Geometry normalised to three spatial dims (missing leading dims have size 1).
struct Geometry {
    c: usize,
    input: [usize; 3],
    kernel: [usize; 3],
    stride: [usize; 3],
    pad: [usize; 3],
    dil: [usize; 3],
    output: [usize; 3],
}

impl Geometry {
    fn new(x: &[usize], w: &[usize], p: &ConvParams) -> Self {
        let spatial = x.len() - 2;
        let lead = 3 - spatial;
        let fill = |v: &[usize], default: usize| {
            let mut a = [default; 3];
            a[lead..].copy_from_slice(v);
            a
        };
        let input = fill(&x[2..], 1);
        let kernel = fill(&w[2..], 1);
        let stride = fill(&p.stride, 1);
        let pad = fill(&p.padding, 0);
        let dil = fill(&p.dilation, 1);
        let output = std::array::from_fn(|i| {
            (input[i] + 2 * pad[i] - dil[i] * (kernel[i] - 1) - 1) / stride[i] + 1
        });
        Geometry {
            c: x[1],
            input,
            kernel,
            stride,
            pad,
            dil,
            output,
        }
    }

    fn is_pointwise(&self) -> bool {
        self.kernel == [1; 3] && self.stride == [1; 3] && self.pad == [0; 3]
    }

    fn col_rows(&self) -> usize {
        self.c * self.kernel.iter().product::<usize>()
    }

    fn positions(&self) -> usize {
        self.output.iter().product()
    }

    /// Fills `dst` (the tile of output positions `l0..l0+dst.len()`) for one column row:
    /// channel `c` at kernel offset `k`. Every element of `dst` is written.
    fn fill_row(&self, img: &[f32], row: usize, l0: usize, dst: &mut [MaybeUninit<f32>]) {
        let [kd, kh, kw] = self.kernel;
        let kidx = row % (kd * kh * kw);
        let c = row / (kd * kh * kw);
        let k = [kidx / (kh * kw), (kidx / kw) % kh, kidx % kw];
        let [id, ih, iw] = self.input;
        let [_, oh, ow] = self.output;
        let plane = &img[c * id * ih * iw..(c + 1) * id * ih * iw];
        // Output coordinates of the first position, then advanced run by run (no divisions
        // per run: with narrow images the runs are short).
        let (mut od, rest) = (l0 / (oh * ow), l0 % (oh * ow));
        let (mut orow, mut ocol) = (rest / ow, rest % ow);
        let mut out = dst;
        while !out.is_empty() {
            let run = (ow - ocol).min(out.len());
            let (seg, tail) = out.split_at_mut(run);
            let zd = (od * self.stride[0] + k[0] * self.dil[0]) as isize - self.pad[0] as isize;
            let zh = (orow * self.stride[1] + k[1] * self.dil[1]) as isize - self.pad[1] as isize;
            if zd < 0 || zd >= id as isize || zh < 0 || zh >= ih as isize {
                zero(seg);
            } else {
                let line = &plane[(zd as usize * ih + zh as usize) * iw..][..iw];
                let s = self.stride[2] as isize;
                // Input column of seg[j]: first + j·s; inside the line for j in lo..hi.
                let first =
                    (k[2] * self.dil[2]) as isize - self.pad[2] as isize + ocol as isize * s;
                let (lo, hi) = inside(first, s, iw as isize, seg.len());
                let (head, rest) = seg.split_at_mut(lo);
                let (mid, tail) = rest.split_at_mut(hi - lo);
                zero(head);
                zero(tail);
                let start = (first + lo as isize * s) as usize;
                if s == 1 {
                    let src = &line[start..start + mid.len()];
                    for (v, &x) in mid.iter_mut().zip(src) {
                        v.write(x);
                    }
                } else {
                    for (v, &x) in mid.iter_mut().zip(line[start..].iter().step_by(s as usize)) {
                        v.write(x);
                    }
                }
            }
            out = tail;
            ocol = 0;
            orow += 1;
            if orow == oh {
                orow = 0;
                od += 1;
            }
        }
    }
}

fn zero(dst: &mut [MaybeUninit<f32>]) {
    for v in dst {
        v.write(0.0);
    }
}

/// The range `lo..hi` of `j < n` with `0 <= first + j·s < len` (`s > 0`), `lo <= hi`.
fn inside(first: isize, s: isize, len: isize, n: usize) -> (usize, usize) {
    let lo = if first >= 0 {
        0
    } else {
        ((-first + s - 1) / s) as usize
    };
    let hi = if first >= len {
        0
    } else {
        ((len - 1 - first) / s + 1) as usize
    };
    let lo = lo.min(n);
    (lo, hi.clamp(lo, n))
}

/// Returns the output data and shape `[n, o, out…]` (with the input's spatial rank).
pub fn conv(
    x: &[f32],
    xd: &[usize],
    w: &[f32],
    wd: &[usize],
    bias: Option<&[f32]>,
    p: &ConvParams,
) -> (Vec<f32>, Vec<usize>) {
    let g = Geometry::new(xd, wd, p);
    let (n, o) = (xd[0], wd[0]);
    let (rows, positions) = (g.col_rows(), g.positions());
    let in_len = g.c * g.input.iter().product::<usize>();
    let mut out = vec![0.0; n * o * positions];
    let threads = rayon::current_num_threads();
    let weights = Mat::rows(w, rows);
    let tile = (TILE_ELEMS / rows.max(1)).clamp(1, positions.max(1));
    // Filled in full by `fill_row` for each tile, so never zeroed.
    let mut cols = COLS.take();
    if !g.is_pointwise() {
        cols.clear();
        cols.reserve(rows * tile);
    }
    for (img, dst) in x.chunks(in_len).zip(out.chunks_mut(o * positions)) {
        if let Some(b) = bias {
            for (plane, &bv) in dst.chunks_mut(positions).zip(b) {
                plane.fill(bv);
            }
        }
        if g.is_pointwise() {
            let dst = MatMut {
                data: dst,
                rs: positions,
                cs: 1,
            };
            gemm(
                dst,
                weights,
                Mat::rows(img, positions),
                o,
                rows,
                positions,
                1.0,
                bias.is_some(),
                threads,
            );
            continue;
        }
        for l0 in (0..positions).step_by(tile) {
            let width = tile.min(positions - l0);
            cols.clear();
            cols.spare_capacity_mut()[..rows * width]
                .par_chunks_mut(width)
                .enumerate()
                .with_min_len((1 << 14) / width.max(1) + 1)
                .for_each(|(r, line)| g.fill_row(img, r, l0, line));
            // SAFETY: the lines tile the first `rows·width` elements and `fill_row` writes
            // every element of its line.
            unsafe { cols.set_len(rows * width) };
            let dst = MatMut {
                data: &mut dst[l0..],
                rs: positions,
                cs: 1,
            };
            gemm(
                dst,
                weights,
                Mat::rows(&cols, width),
                o,
                rows,
                width,
                1.0,
                bias.is_some(),
                threads,
            );
        }
    }
    COLS.set(cols);
    let mut shape = vec![n, o];
    shape.extend_from_slice(&g.output[3 - (xd.len() - 2)..]);
    (out, shape)
}

/// The taps of a transposed convolution along one axis that reach output positions of one
/// phase `r` (`(o + padding) mod stride == r`): kernel offsets `r, r + stride, …`.
fn phase_taps(kernel: usize, stride: usize, r: usize) -> usize {
    kernel.saturating_sub(r).div_ceil(stride)
}

/// A transposed 2d convolution split into `stride²` ordinary ones, one per output phase:
/// output row `o = stride·m + r − padding` only receives kernel rows `r + stride·t` from input
/// row `m − t`, which is a stride-1 convolution of the input with those rows, flipped. This
/// skips the zeros a spread-out input would multiply, and runs through the im2col path
/// above. `w` is `[c, o, kh, kw]`; the caller has checked `padding < kh, kw`.
pub fn conv_transpose2d(
    x: &[f32],
    xd: &[usize],
    w: &[f32],
    wd: &[usize],
    bias: Option<&[f32]>,
    stride: usize,
    padding: usize,
) -> (Vec<f32>, Vec<usize>) {
    let (n, c, h, wi) = (xd[0], xd[1], xd[2], xd[3]);
    let (o, kh, kw) = (wd[1], wd[2], wd[3]);
    let (oh, ow) = (
        (h - 1) * stride + kh - 2 * padding,
        (wi - 1) * stride + kw - 2 * padding,
    );
    let mut out = vec![0.0f32; n * o * oh * ow];
    for (plane, dst) in out.chunks_mut(oh * ow).enumerate() {
        dst.fill(bias.map_or(0.0, |b| b[plane % o]));
    }
    for ry in 0..stride {
        for rx in 0..stride {
            let (th, tw) = (phase_taps(kh, stride, ry), phase_taps(kw, stride, rx));
            if th == 0 || tw == 0 {
                continue;
            }
            // Sub-kernel [o, c, th, tw], flipped so that tap (th − 1 − t) meets input m − t.
            let mut sub = vec![0.0f32; o * c * th * tw];
            for ci in 0..c {
                for oi in 0..o {
                    let src = &w[(ci * o + oi) * kh * kw..][..kh * kw];
                    let dst = &mut sub[(oi * c + ci) * th * tw..][..th * tw];
                    for t in 0..th {
                        for u in 0..tw {
                            let (ky, kx) = (ry + stride * t, rx + stride * u);
                            dst[(th - 1 - t) * tw + (tw - 1 - u)] = src[ky * kw + kx];
                        }
                    }
                }
            }
            let p = ConvParams {
                stride: vec![1, 1],
                padding: vec![th - 1, tw - 1],
                dilation: vec![1, 1],
            };
            // Rows m = 0 .. h + th − 2 of this phase.
            let (part, pd) = conv(x, xd, &sub, &[o, c, th, tw], None, &p);
            let (mh, mw) = (pd[2], pd[3]);
            let rows: Vec<(usize, usize)> = (0..mh)
                .filter_map(|m| {
                    let oy = (stride * m + ry).checked_sub(padding)?;
                    (oy < oh).then_some((m, oy))
                })
                .collect();
            let cols: Vec<(usize, usize)> = (0..mw)
                .filter_map(|m| {
                    let ox = (stride * m + rx).checked_sub(padding)?;
                    (ox < ow).then_some((m, ox))
                })
                .collect();
            out.par_chunks_mut(oh * ow)
                .zip(part.par_chunks(mh * mw))
                .for_each(|(dst, src)| {
                    for &(m, oy) in &rows {
                        let (drow, srow) = (&mut dst[oy * ow..][..ow], &src[m * mw..][..mw]);
                        for &(mx, ox) in &cols {
                            drow[ox] += srow[mx];
                        }
                    }
                });
        }
    }
    (out, vec![n, o, oh, ow])
}
