//! Side-by-side runs of several schedules on the same inputs, seed and denoiser.

use std::time::Instant;

use serde::Serialize;

use super::{cost, smoothness, Cost, LongVideoScheduler, Smoothness, WindowDenoiser};
use crate::registry;
use crate::rng::FrameNoise;
use crate::sampling::Sampler;
use crate::{Device, Result, Shape, Tensor};

/// Counts the calls and frames that reach a denoiser.
pub struct Counting<'a> {
    pub inner: &'a mut dyn WindowDenoiser,
    pub calls: usize,
    pub frames: usize,
}

impl WindowDenoiser for Counting<'_> {
    fn denoise_window(
        &mut self,
        x: &Tensor,
        sigma: f32,
        step: usize,
        frames: &[usize],
    ) -> Result<Tensor> {
        self.calls += 1;
        self.frames += frames.len();
        self.inner.denoise_window(x, sigma, step, frames)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AblationRow {
    pub schedule: String,
    pub predicted: Cost,
    pub denoiser_calls: usize,
    pub frame_evaluations: usize,
    pub seconds: f64,
    /// At the boundaries of the first step, where window edges first shape the result.
    pub seam_ratio: Option<f64>,
    /// The largest seam ratio over the boundaries of every step.
    pub worst_step_seam_ratio: Option<f64>,
    pub metrics: Smoothness,
}

/// Runs every scheduler on the same noise (`seed`) over `[frames, frame_shape…]` latents
/// starting at σ_0, with the named sampler, and measures the results.
#[allow(clippy::too_many_arguments)]
pub fn ablate(
    schedulers: &[Box<dyn LongVideoScheduler>],
    model: &mut dyn WindowDenoiser,
    sampler: &str,
    sigmas: &[f32],
    frames: usize,
    frame_shape: &Shape,
    window: usize,
    seed: u64,
) -> Result<Vec<AblationRow>> {
    let steps = sigmas.len().saturating_sub(1);
    let noise = FrameNoise::new(seed).frames(0, frames, frame_shape, Device::Cpu)?;
    let start = noise.mul_scalar(sigmas[0])?;
    let mut rows = Vec::new();
    for scheduler in schedulers {
        let mut sampler: Box<dyn Sampler> = registry::sampler(sampler)?;
        let plan = scheduler.plan(frames, window, steps)?;
        let predicted = cost(&plan, sampler.as_ref(), sigmas, scheduler.fusion());
        let mut counting = Counting {
            inner: &mut *model,
            calls: 0,
            frames: 0,
        };
        let clock = Instant::now();
        let out = super::run_plan(
            &plan,
            scheduler.fusion(),
            start.clone(),
            sigmas,
            sampler.as_mut(),
            &mut counting,
            seed,
        )?;
        let seconds = clock.elapsed().as_secs_f64();
        let d = super::metrics::frame_differences(&out)?;
        let worst = (0..plan.steps())
            .filter_map(|s| super::metrics::seam_ratio(&d, &plan.boundaries(s)))
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        rows.push(AblationRow {
            schedule: scheduler.spec(),
            predicted,
            denoiser_calls: counting.calls,
            frame_evaluations: counting.frames,
            seconds,
            seam_ratio: super::metrics::seam_ratio(&d, &plan.boundaries(0)),
            worst_step_seam_ratio: worst,
            metrics: smoothness(&out, &plan.boundaries(0), None)?,
        });
    }
    Ok(rows)
}
