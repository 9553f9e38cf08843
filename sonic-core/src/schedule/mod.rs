//! Long-video scheduling: which windows of frames the denoiser sees at each step and how
//! their outputs are fused. Strategies are chosen by spec (`shift:alpha=7`,
//! `overlap:o=8,weights=pyramid`, `motion-frames:o=4`, `tiles`), produce inspectable
//! [`Plan`]s, answer their [`Cost`] before running, and run with any sampler.

mod ablate;
mod conditioning;
mod cost;
mod execute;
mod metrics;
mod plan;
mod strategy;
mod synthetic;

pub use ablate::{ablate, AblationRow, Counting};
pub use conditioning::{FrameConditioning, Reduce};
pub use cost::{cost, Cost};
pub use execute::{run_plan, WindowDenoiser};
pub use metrics::{smoothness, Smoothness};
pub use plan::{Layout, Plan, Window};
pub use strategy::{Edge, Fusion, Strategy, Weights};
pub use synthetic::SyntheticDenoiser;

use crate::sampling::Sampler;
use crate::{Result, Tensor};

/// The scheduling seam. Built-in strategies implement it through [`Strategy`]; other
/// implementations only need to say how they fuse and produce a plan.
pub trait LongVideoScheduler: Send + Sync {
    /// The spec that selects this scheduler with its parameters.
    fn spec(&self) -> String;

    fn fusion(&self) -> Fusion;

    fn plan(&self, frames: usize, window: usize, steps: usize) -> Result<Plan>;

    /// Denoiser calls and frame evaluations of a run, before running it.
    fn cost(
        &self,
        frames: usize,
        window: usize,
        sampler: &dyn Sampler,
        sigmas: &[f32],
    ) -> Result<Cost> {
        let plan = self.plan(frames, window, sigmas.len().saturating_sub(1))?;
        Ok(cost(&plan, sampler, sigmas, self.fusion()))
    }

    /// Denoises `x` (`[frames, …]`, noised to σ_0) with windows of `window` frames.
    fn run(
        &self,
        x: Tensor,
        window: usize,
        sigmas: &[f32],
        sampler: &mut dyn Sampler,
        model: &mut dyn WindowDenoiser,
        seed: u64,
    ) -> Result<Tensor> {
        let frames = x.dims().first().copied().unwrap_or(0);
        let plan = self.plan(frames, window, sigmas.len().saturating_sub(1))?;
        run_plan(&plan, self.fusion(), x, sigmas, sampler, model, seed)
    }
}

impl LongVideoScheduler for Strategy {
    fn spec(&self) -> String {
        self.to_string()
    }

    fn fusion(&self) -> Fusion {
        Strategy::fusion(self)
    }

    fn plan(&self, frames: usize, window: usize, steps: usize) -> Result<Plan> {
        Strategy::plan(self, frames, window, steps)
    }
}

/// A scheduler from its spec.
pub fn scheduler(spec: &str) -> Result<Box<dyn LongVideoScheduler>> {
    Ok(Box::new(spec.parse::<Strategy>()?))
}

#[cfg(test)]
mod tests;
