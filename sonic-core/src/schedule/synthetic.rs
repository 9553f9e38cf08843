//! A model-free stand-in denoiser for ablations: it couples the frames of a window the way
//! temporal attention does, so windows processed apart leave seams where they meet.

use super::WindowDenoiser;
use crate::{Result, Tensor};

/// Data are a smooth per-frame pattern (the "conditioning") plus noise. The estimate is the
/// pattern plus the residual kept in proportion k = s²/(s²+σ²) (the Gaussian posterior
/// weight), plus (1 − k)·coupling times the window's mean residual: at high noise every
/// frame of a window is pulled towards a common offset that differs between windows.
#[derive(Clone, Debug)]
pub struct SyntheticDenoiser {
    pub data_std: f32,
    pub coupling: f32,
    /// Frames per period of the pattern: sets how much the sequence moves.
    pub period: f32,
}

impl Default for SyntheticDenoiser {
    fn default() -> Self {
        SyntheticDenoiser {
            data_std: 0.5,
            coupling: 1.0,
            period: 40.0,
        }
    }
}

impl SyntheticDenoiser {
    /// The clean pattern of `frame`, `len` values.
    pub fn target(&self, frame: usize, len: usize) -> Vec<f32> {
        let t = std::f32::consts::TAU * frame as f32 / self.period;
        (0..len)
            .map(|j| self.data_std * (t + 0.37 * j as f32).sin())
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
        let len = data.len() / frames.len().max(1);
        let target: Vec<f32> = frames.iter().flat_map(|&f| self.target(f, len)).collect();
        let residual: Vec<f32> = data.iter().zip(&target).map(|(x, t)| x - t).collect();
        let mut mean = vec![0.0f32; len];
        for chunk in residual.chunks(len) {
            mean.iter_mut()
                .zip(chunk)
                .for_each(|(m, r)| *m += r / frames.len() as f32);
        }
        let s2 = self.data_std * self.data_std;
        let k = s2 / (s2 + sigma * sigma);
        let out: Vec<f32> = residual
            .iter()
            .zip(&target)
            .enumerate()
            .map(|(i, (r, t))| t + k * r + (1.0 - k) * self.coupling * mean[i % len])
            .collect();
        Tensor::from_vec(out, x.shape().clone(), x.device())
    }
}
