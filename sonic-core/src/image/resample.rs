//! Pillow's `Image.resize` for 8-bit images, reproduced exactly (libImaging/Resample.c).
//!
//! The reference pipeline resizes the portrait, its face mask and the CLIP input with Pillow,
//! and Pillow's result depends on details a textbook resampler does differently: the filter
//! is widened by the downscale factor, taps are normalised in f64 and then quantised to
//! fixed point with 22 fraction bits, each pass rounds and clips to a byte, and the order
//! of the two passes depends on the sizes. Every one of those is kept here.

use super::pixels::Image;
use crate::{Error, Result};

/// The Pillow resampling filters the reference pipeline uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Keys' cubic convolution with a = −0.5 (`Image.BICUBIC`).
    Bicubic,
    /// Sinc windowed by sinc, 3 lobes (`Image.LANCZOS`).
    Lanczos,
}

impl Filter {
    /// Half-width of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    // The operation order follows Resample.c: a reordered polynomial or sinc would change the
    // last bits of a tap, and sometimes the fixed-point tap it rounds to.
    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// Fraction bits of the fixed-point taps: 8 bits of result, 2 bits of headroom for the
/// negative lobes and for tap sums above one.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The taps of every output position along one axis.
struct Taps {
    /// Per output: first input index and number of taps.
    spans: Vec<(usize, usize)>,
    /// `stride` fixed-point weights per output, the first `len` of them used.
    weights: Vec<i32>,
    stride: usize,
}

impl Taps {
    /// Pillow's `precompute_coeffs` for the whole input (box 0..in_size) followed by
    /// `normalize_coeffs_8bpc`.
    fn new(in_size: usize, out_size: usize, filter: Filter) -> Taps {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let stride = support.ceil() as usize * 2 + 1;
        let inv = 1.0 / filterscale;
        let mut spans = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * stride];
        let mut row = Vec::with_capacity(stride);
        for (out, fixed) in weights.chunks_exact_mut(stride).enumerate() {
            let center = (out as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero; clamping follows it.
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            row.clear();
            row.extend((min..max).map(|i| filter.weight((i as f64 - center + 0.5) * inv)));
            let sum: f64 = row.iter().sum();
            for (w, f) in row.iter().zip(fixed.iter_mut()) {
                let w = if sum != 0.0 { w / sum } else { *w };
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                *f = if w < 0.0 {
                    (scaled - 0.5) as i32
                } else {
                    (scaled + 0.5) as i32
                };
            }
            spans.push((min, row.len()));
        }
        Taps {
            spans,
            weights,
            stride,
        }
    }

    fn of(&self, out: usize) -> (usize, &[i32]) {
        let (start, len) = self.spans[out];
        (start, &self.weights[out * self.stride..][..len])
    }
}

/// Rounds a fixed-point accumulator (which starts at one half) to a byte, clipping.
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i64 = 1 << (PRECISION_BITS - 1);

/// Resizes `img` to `width`×`height` exactly as Pillow's `Image.resize((width, height),
/// filter)` does for an 8-bit image of the same mode ("RGB" or "L").
pub fn resize<const C: usize>(
    img: &Image<C>,
    width: usize,
    height: usize,
    filter: Filter,
) -> Result<Image<C>> {
    if width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(C))
        .unwrap_or(0)
        == 0
    {
        return Err(Error::invalid(
            "resize",
            format!(
                "cannot resize {}x{} to {width}x{height}",
                img.width(),
                img.height()
            ),
        ));
    }
    let (in_w, in_h) = (img.width(), img.height());
    if (width, height) == (in_w, in_h) {
        return Ok(img.clone());
    }
    let data = img.data();
    let out = if height == in_h {
        horizontal_pass::<C>(data, in_w, width, &Taps::new(in_w, width, filter))
    } else if width == in_w {
        vertical_pass::<C>(data, width, &Taps::new(in_h, height, filter), 0)
    } else if vertical_first(in_w, in_h, width, height) {
        let tall = vertical_pass::<C>(data, in_w, &Taps::new(in_h, height, filter), 0);
        horizontal_pass::<C>(&tall, in_w, width, &Taps::new(in_w, width, filter))
    } else {
        let vertical = Taps::new(in_h, height, filter);
        // Only the rows the vertical pass reads go through the horizontal pass.
        let first = vertical.spans[0].0;
        let last = vertical.spans[height - 1].0 + vertical.spans[height - 1].1;
        let rows = &data[first * in_w * C..last * in_w * C];
        let wide = horizontal_pass::<C>(rows, in_w, width, &Taps::new(in_w, width, filter));
        vertical_pass::<C>(&wide, width, &vertical, first)
    };
    Image::new(width, height, out)
}

/// Pillow 13 runs the vertical pass first when it removes more than twice as many rows as
/// the horizontal pass removes columns (older releases always start horizontally). It is
/// a speed choice, but each pass rounds to bytes, so the order shows in the result.
fn vertical_first(in_w: usize, in_h: usize, width: usize, height: usize) -> bool {
    let rows_removed = in_h as i64 - height as i64;
    rows_removed > 0 && rows_removed > 2 * (in_w as i64 - width as i64)
}

/// Pillow's `Image.resize(..., Image.LANCZOS)`.
pub fn resize_lanczos<const C: usize>(
    img: &Image<C>,
    width: usize,
    height: usize,
) -> Result<Image<C>> {
    resize(img, width, height, Filter::Lanczos)
}

/// Pillow's `Image.resize(..., Image.BICUBIC)`.
pub fn resize_bicubic<const C: usize>(
    img: &Image<C>,
    width: usize,
    height: usize,
) -> Result<Image<C>> {
    resize(img, width, height, Filter::Bicubic)
}

fn horizontal_pass<const C: usize>(rows: &[u8], in_w: usize, out_w: usize, taps: &Taps) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() / in_w * out_w);
    for row in rows.chunks_exact(in_w * C) {
        for x in 0..out_w {
            let (start, weights) = taps.of(x);
            let mut acc = [HALF; C];
            for (px, &w) in row[start * C..].chunks_exact(C).zip(weights) {
                for (a, &v) in acc.iter_mut().zip(px) {
                    *a += i64::from(v) * i64::from(w);
                }
            }
            out.extend(acc.map(clip8));
        }
    }
    out
}

/// `src` holds rows of `width` pixels starting at input row `first_row` (taps index the
/// full input).
fn vertical_pass<const C: usize>(
    src: &[u8],
    width: usize,
    taps: &Taps,
    first_row: usize,
) -> Vec<u8> {
    let stride = width * C;
    let mut out = Vec::with_capacity(taps.spans.len() * stride);
    let mut acc = vec![0i64; stride];
    for y in 0..taps.spans.len() {
        let (start, weights) = taps.of(y);
        acc.fill(HALF);
        let rows = src[(start - first_row) * stride..].chunks_exact(stride);
        for (row, &w) in rows.zip(weights) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += i64::from(v) * i64::from(w);
            }
        }
        out.extend(acc.iter().map(|&a| clip8(a)));
    }
    out
}
