//! Runs a plan: the loop over steps and windows around a sampler and a window denoiser.

use super::plan::{Layout, Plan, Window};
use super::strategy::Fusion;
use crate::rng::FrameNoise;
use crate::sampling::{Denoise, Sampler, StepNoise};
use crate::{Error, Result, Tensor};

/// The model seen by a scheduler: one window of latents `[frames, …]` at noise level σ →
/// its denoised estimate. `frames` are the absolute indices of the window's slots, so the
/// implementation slices its per-frame conditioning exactly as the latents were sliced.
pub trait WindowDenoiser {
    fn denoise_window(
        &mut self,
        x: &Tensor,
        sigma: f32,
        step: usize,
        frames: &[usize],
    ) -> Result<Tensor>;
}

/// Per-frame weighted sums on the host: fusion costs a few vector adds per window, far
/// below one denoiser call, and keeps every backend's op set free of scatter-adds.
struct Accumulator {
    frame_len: usize,
    sum: Vec<f32>,
    weight: Vec<f32>,
}

impl Accumulator {
    fn new(frames: usize, frame_len: usize) -> Self {
        Accumulator {
            frame_len,
            sum: vec![0.0; frames * frame_len],
            weight: vec![0.0; frames],
        }
    }

    fn add(&mut self, window: &Window, values: &Tensor) -> Result<()> {
        let data = values.to_vec()?;
        for (slot, (&frame, &w)) in window
            .frames
            .iter()
            .zip(&window.weights)
            .enumerate()
            .skip(window.carried)
        {
            if w == 0.0 {
                continue;
            }
            let src = &data[slot * self.frame_len..(slot + 1) * self.frame_len];
            let dst = &mut self.sum[frame * self.frame_len..(frame + 1) * self.frame_len];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d += w * s;
            }
            self.weight[frame] += w;
        }
        Ok(())
    }

    fn finish(mut self, like: &Tensor) -> Result<Tensor> {
        for (chunk, &w) in self.sum.chunks_mut(self.frame_len).zip(&self.weight) {
            if w == 0.0 {
                return Err(Error::invalid(
                    "schedule",
                    "a frame received no window output",
                ));
            }
            chunk.iter_mut().for_each(|v| *v /= w);
        }
        Tensor::from_vec(self.sum, like.shape().clone(), like.device())
    }
}

fn frame_len(x: &Tensor) -> usize {
    x.elem_count() / x.dims().first().copied().unwrap_or(1).max(1)
}

/// Denoises the whole latent sequence `x` (`[frames, …]`, already noised to σ_0) over
/// `sigmas` (σ_0 … σ_T = 0) following `plan`. `seed` keys the noise of stochastic samplers
/// and of re-noised motion frames.
pub fn run_plan(
    plan: &Plan,
    fusion: Fusion,
    x: Tensor,
    sigmas: &[f32],
    sampler: &mut dyn Sampler,
    model: &mut dyn WindowDenoiser,
    seed: u64,
) -> Result<Tensor> {
    if sigmas.len() != plan.steps() + 1 {
        return Err(Error::invalid(
            "schedule",
            format!(
                "{} sigmas for a plan of {} steps (need steps + 1)",
                sigmas.len(),
                plan.steps()
            ),
        ));
    }
    if x.rank() == 0 || x.dims()[0] != plan.frames {
        return Err(Error::invalid(
            "schedule",
            format!("latents {} do not hold {} frames", x.shape(), plan.frames),
        ));
    }
    match (&plan.layout, fusion) {
        (Layout::Fused { steps }, Fusion::FuseThenStep) => {
            fuse_then_step(steps, x, sigmas, sampler, model, seed)
        }
        (Layout::Fused { steps }, Fusion::SonicCompat) => {
            sonic_compat(steps, x, sigmas, sampler, model, seed)
        }
        (Layout::Clips { clips, .. }, _) => run_clips(clips, x, sigmas, sampler, model, seed),
    }
}

fn fuse_then_step(
    steps: &[Vec<Window>],
    mut x: Tensor,
    sigmas: &[f32],
    sampler: &mut dyn Sampler,
    model: &mut dyn WindowDenoiser,
    seed: u64,
) -> Result<Tensor> {
    sampler.reset();
    for (i, windows) in steps.iter().enumerate() {
        let mut fused = |x: &Tensor, sigma: f32| -> Result<Tensor> {
            let mut acc = Accumulator::new(x.dims()[0], frame_len(x));
            for w in windows {
                let xw = x.index_select(0, &w.frames)?;
                acc.add(w, &model.denoise_window(&xw, sigma, i, &w.frames)?)?;
            }
            acc.finish(x)
        };
        x = sampler.step(i, sigmas, &x, &mut fused, &StepNoise::new(seed, i))?;
    }
    Ok(x)
}

fn sonic_compat(
    steps: &[Vec<Window>],
    mut x: Tensor,
    sigmas: &[f32],
    sampler: &mut dyn Sampler,
    model: &mut dyn WindowDenoiser,
    seed: u64,
) -> Result<Tensor> {
    if !sampler.is_single_eval_stateless() {
        return Err(Error::invalid(
            "schedule",
            format!("fusion=sonic-compat steps each window alone, which needs a single-evaluation stateless sampler such as euler, not {}", sampler.name()),
        ));
    }
    for (i, windows) in steps.iter().enumerate() {
        let mut acc = Accumulator::new(x.dims()[0], frame_len(&x));
        for w in windows {
            let xw = x.index_select(0, &w.frames)?;
            let denoised = model.denoise_window(&xw, sigmas[i], i, &w.frames)?;
            let mut given = |_: &Tensor, _: f32| Ok(denoised.clone());
            acc.add(
                w,
                &sampler.step(i, sigmas, &xw, &mut given, &StepNoise::new(seed, i))?,
            )?;
        }
        x = acc.finish(&x)?;
    }
    Ok(x)
}

fn run_clips(
    clips: &[Window],
    x: Tensor,
    sigmas: &[f32],
    sampler: &mut dyn Sampler,
    model: &mut dyn WindowDenoiser,
    seed: u64,
) -> Result<Tensor> {
    let len = frame_len(&x);
    let mut out = vec![0.0f32; x.elem_count()];
    // Carried frames are re-noised with fixed per-frame noise, independent of the run's
    // initial noise, so the carried content is the only thing a clip inherits.
    let carry_noise = FrameNoise::new(seed ^ 0xC0FF_EE00_D15E_A5E5);
    for clip in clips {
        let fresh_frames = &clip.frames[clip.carried..];
        let carried_frames = &clip.frames[..clip.carried];
        let carried = if carried_frames.is_empty() {
            None
        } else {
            let data: Vec<f32> = carried_frames
                .iter()
                .flat_map(|&f| out[f * len..(f + 1) * len].iter().copied())
                .collect();
            let noise: Vec<f32> = carried_frames
                .iter()
                .flat_map(|&f| carry_noise.frame(f as u64, len))
                .collect();
            let mut shape = x.dims().to_vec();
            shape[0] = carried_frames.len();
            Some((
                Tensor::from_vec(data, shape.clone(), x.device())?,
                Tensor::from_vec(noise, shape, x.device())?,
            ))
        };
        let mut xc = x.index_select(0, fresh_frames)?;
        sampler.reset();
        for i in 0..sigmas.len() - 1 {
            let mut denoise = |xn: &Tensor, sigma: f32| -> Result<Tensor> {
                let input = match &carried {
                    Some((clean, noise)) => {
                        Tensor::cat(&[&clean.add(&noise.mul_scalar(sigma)?)?, xn], 0)?
                    }
                    None => xn.clone(),
                };
                let d = model.denoise_window(&input, sigma, i, &clip.frames)?;
                d.narrow(0, clip.carried, fresh_frames.len())
            };
            let noise = StepNoise::new(seed, i).starting_at(fresh_frames[0]);
            xc = sampler.step(i, sigmas, &xc, &mut denoise as &mut dyn Denoise, &noise)?;
        }
        let data = xc.to_vec()?;
        for (slot, &f) in fresh_frames.iter().enumerate() {
            out[f * len..(f + 1) * len].copy_from_slice(&data[slot * len..(slot + 1) * len]);
        }
    }
    Tensor::from_vec(out, x.shape().clone(), x.device())
}
