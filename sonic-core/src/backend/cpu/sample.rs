//! Sampling at arbitrary points: `grid_sample` (bilinear) and the per-channel PReLU, the two
//! pieces of optical-flow warping models beyond convolutions.

use rayon::prelude::*;

use crate::backend::GridPadding;

/// PyTorch's `grid_sampler_compute_source_index` for bilinear mode.
fn source_index(coord: f32, size: usize, padding: GridPadding, align_corners: bool) -> f32 {
    let size_f = size as f32;
    let ix = if align_corners {
        (coord + 1.0) / 2.0 * (size_f - 1.0)
    } else {
        ((coord + 1.0) * size_f - 1.0) / 2.0
    };
    match padding {
        GridPadding::Zeros => ix,
        // NaN stays NaN through clamp, and then reads as out of range below.
        GridPadding::Border => ix.clamp(0.0, size_f - 1.0),
    }
}

/// The four taps of one sample point: flat indices into the plane (or `None` when out of
/// range, which reads zero) and their weights.
fn taps(ix: f32, iy: f32, h: usize, w: usize) -> [(Option<usize>, f32); 4] {
    let (x0, y0) = (ix.floor(), iy.floor());
    let (tx, ty) = (ix - x0, iy - y0);
    let at = |x: f32, y: f32| {
        let inside = x >= 0.0 && y >= 0.0 && x < w as f32 && y < h as f32;
        inside.then(|| y as usize * w + x as usize)
    };
    [
        (at(x0, y0), (1.0 - tx) * (1.0 - ty)),
        (at(x0 + 1.0, y0), tx * (1.0 - ty)),
        (at(x0, y0 + 1.0), (1.0 - tx) * ty),
        (at(x0 + 1.0, y0 + 1.0), tx * ty),
    ]
}

/// `x [n, c, h, w]` at `grid [n, ho, wo, 2]` → `[n, c, ho, wo]`.
pub fn grid_sample(
    x: &[f32],
    xd: &[usize],
    grid: &[f32],
    gd: &[usize],
    padding: GridPadding,
    align_corners: bool,
) -> (Vec<f32>, Vec<usize>) {
    let (n, c, h, w) = (xd[0], xd[1], xd[2], xd[3]);
    let (ho, wo) = (gd[1], gd[2]);
    let mut out = vec![0.0f32; n * c * ho * wo];
    if !out.is_empty() {
        out.par_chunks_mut(wo).enumerate().for_each(|(row, dst)| {
            let (plane, y) = (row / ho, row % ho);
            let b = plane / c;
            let src = &x[plane * h * w..][..h * w];
            let points = &grid[(b * ho + y) * wo * 2..][..wo * 2];
            for (d, p) in dst.iter_mut().zip(points.chunks_exact(2)) {
                let ix = source_index(p[0], w, padding, align_corners);
                let iy = source_index(p[1], h, padding, align_corners);
                *d = taps(ix, iy, h, w)
                    .iter()
                    .filter_map(|&(i, wt)| i.map(|i| src[i] * wt))
                    .sum();
            }
        });
    }
    (out, vec![n, c, ho, wo])
}

/// `max(x, 0) + a·min(x, 0)` with `a` per channel of axis 1 (`slopes.len() == channels`) or
/// shared (`slopes.len() == 1`). `inner` is the element count after axis 1.
pub fn prelu(x: &[f32], channels: usize, inner: usize, slopes: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(inner.max(1))
        .zip(x.par_chunks(inner.max(1)))
        .enumerate()
        .for_each(|(plane, (dst, src))| {
            let a = slopes[if slopes.len() == 1 {
                0
            } else {
                plane % channels
            }];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = if v < 0.0 { a * v } else { v };
            }
        });
    out
}
