//! A model-free stand-in denoiser for ablations: the exact denoiser of a simple video
//! model, applied to one window at a time, so windows processed apart disagree where they meet.

use super::WindowDenoiser;
use crate::{Result, Tensor};

/// Videos are a known moving pattern (the "conditioning") plus one appearance offset z
/// shared by every frame, z ~ N(0, s²) per element. Seen through one window of n noisy
/// frames, the best estimate of z is the window's mean residual shrunk by
/// s²/(s² + σ²/n), so the estimate of every frame depends on the whole window, as with
/// temporal attention. Two windows that never share frames settle on different offsets and
/// leave a seam between them; schedules that mix windows across steps do not.
#[derive(Clone, Debug)]
pub struct SyntheticDenoiser {
    pub data_std: f32,
    /// Frames per period of the pattern: sets how much the video moves.
    pub period: f32,
}

impl Default for SyntheticDenoiser {
    fn default() -> Self {
        SyntheticDenoiser {
            data_std: 0.5,
            period: 40.0,
        }
    }
}

impl SyntheticDenoiser {
    /// The clean pattern of `frame`, `len` values.
    pub fn target(&self, frame: usize, len: usize) -> Vec<f32> {
        let t = std::f32::consts::TAU * frame as f32 / self.period;
        (0..len)
            .map(|j| 0.25 * (t + 0.37 * j as f32).sin())
            .collect()
    }
}

impl WindowDenoiser for SyntheticDenoiser {
    fn denoise_window(
        &mut self,
        x: &Tensor,
        sigma: f32,
        _step: usize,
        frames: &[usize],
    ) -> Result<Tensor> {
        let data = x.to_vec()?;
        let n = frames.len().max(1);
        let len = data.len() / n;
        let target: Vec<f32> = frames.iter().flat_map(|&f| self.target(f, len)).collect();
        let mut mean = vec![0.0f32; len];
        for (chunk, t) in data.chunks(len).zip(target.chunks(len)) {
            for ((m, &x), &t) in mean.iter_mut().zip(chunk).zip(t) {
                *m += (x - t) / n as f32;
            }
        }
        let s2 = self.data_std * self.data_std;
        let shrink = s2 / (s2 + sigma * sigma / n as f32);
        let out: Vec<f32> = target
            .iter()
            .enumerate()
            .map(|(i, t)| t + shrink * mean[i % len])
            .collect();
        Tensor::from_vec(out, x.shape().clone(), x.device())
    }
}
