//! Model-free seam and smoothness measures on a frame sequence (latents or RGB).

use serde::Serialize;

use crate::{Error, Result, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Smoothness {
    /// Median frame difference across the given boundaries over the median elsewhere;
    /// above 1 means visible seams. `None` without boundaries or without interior pairs.
    pub seam_ratio: Option<f64>,
    /// VBench-style temporal flicker score: 1 − mean |F_{t+1} − F_t| / value range (1 is still).
    pub flicker: f64,
    /// Mean absolute second temporal difference |F_{t−1} − 2F_t + F_{t+1}|: jerks and pops.
    pub second_difference: f64,
    /// Mean absolute frame-to-frame difference. Always read it beside flicker: a frozen video
    /// scores a perfect flicker with zero motion.
    pub motion: f64,
    /// |F_{N−1} − F_0| over the median consecutive difference: how well the end meets the start.
    pub loop_seam: Option<f64>,
}

fn mean_abs(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x - y).abs() as f64)
        .sum::<f64>()
        / a.len().max(1) as f64
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// Seam ratio for `boundaries` (a boundary `b` separates frames `b − 1` and `b`) from the
/// consecutive differences `d` (`d[t]` between frames `t` and `t + 1`).
pub(crate) fn seam_ratio(d: &[f64], boundaries: &[usize]) -> Option<f64> {
    let at: Vec<f64> = boundaries
        .iter()
        .filter(|&&b| b >= 1 && b <= d.len())
        .map(|&b| d[b - 1])
        .collect();
    let elsewhere: Vec<f64> = (0..d.len())
        .filter(|t| !boundaries.contains(&(t + 1)))
        .map(|t| d[t])
        .collect();
    let (num, den) = (median(at)?, median(elsewhere)?);
    Some(if den > 0.0 {
        num / den
    } else if num > 0.0 {
        f64::INFINITY
    } else {
        1.0
    })
}

/// Consecutive mean absolute differences of `frames` (`[N, …]`).
pub(crate) fn frame_differences(frames: &Tensor) -> Result<Vec<f64>> {
    let n = frames.dims().first().copied().unwrap_or(0);
    let data = frames.to_vec()?;
    let len = data.len() / n.max(1);
    Ok((0..n.saturating_sub(1))
        .map(|t| {
            mean_abs(
                &data[t * len..(t + 1) * len],
                &data[(t + 1) * len..(t + 2) * len],
            )
        })
        .collect())
}

/// Measures `frames` (`[N, …]`). `value_range` scales the flicker score: 255 for 8-bit RGB,
/// 1 for RGB in [0, 1]; `None` uses the data's own range (for latents).
pub fn smoothness(
    frames: &Tensor,
    boundaries: &[usize],
    value_range: Option<f32>,
) -> Result<Smoothness> {
    let n = frames.dims().first().copied().unwrap_or(0);
    if n < 2 {
        return Err(Error::invalid(
            "smoothness",
            format!("need at least 2 frames, got {}", frames.shape()),
        ));
    }
    let data = frames.to_vec()?;
    let len = data.len() / n;
    let frame = |t: usize| &data[t * len..(t + 1) * len];
    let d = frame_differences(frames)?;
    let motion = d.iter().sum::<f64>() / d.len() as f64;
    let range = value_range.map(f64::from).unwrap_or_else(|| {
        let (lo, hi) = data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        (hi - lo) as f64
    });
    let second: Vec<f64> = (1..n - 1)
        .map(|t| {
            let (a, b, c) = (frame(t - 1), frame(t), frame(t + 1));
            a.iter()
                .zip(b)
                .zip(c)
                .map(|((&a, &b), &c)| (a - 2.0 * b + c).abs() as f64)
                .sum::<f64>()
                / len as f64
        })
        .collect();
    let typical = median(d.clone());
    Ok(Smoothness {
        seam_ratio: seam_ratio(&d, boundaries),
        flicker: if range > 0.0 {
            1.0 - motion / range
        } else {
            1.0
        },
        second_difference: if second.is_empty() {
            0.0
        } else {
            second.iter().sum::<f64>() / second.len() as f64
        },
        motion,
        loop_seam: typical
            .filter(|&m| m > 0.0)
            .map(|m| mean_abs(frame(n - 1), frame(0)) / m),
    })
}
