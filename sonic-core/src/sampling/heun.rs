use super::{axpy, derivative, Denoise, NoiseSource, Sampler};
use crate::{Result, Tensor};

/// Heun's second-order method (Karras et al. 2022, Algorithm 1 without churn); the last
/// step to σ = 0 is a plain Euler step.
#[derive(Clone, Copy, Debug, Default)]
pub struct Heun;

impl Sampler for Heun {
    fn name(&self) -> &str {
        "heun"
    }

    fn model_calls(&self, i: usize, sigmas: &[f32]) -> usize {
        if sigmas[i + 1] == 0.0 {
            1
        } else {
            2
        }
    }

    fn step(
        &mut self,
        i: usize,
        sigmas: &[f32],
        x: &Tensor,
        model: &mut dyn Denoise,
        _: &dyn NoiseSource,
    ) -> Result<Tensor> {
        let (sigma, next) = (sigmas[i], sigmas[i + 1]);
        let d = derivative(x, &model.denoise(x, sigma)?, sigma)?;
        let dt = next - sigma;
        let euler = axpy(x, &d, dt)?;
        if next == 0.0 {
            return Ok(euler);
        }
        let d2 = derivative(&euler, &model.denoise(&euler, next)?, next)?;
        axpy(x, &d.add(&d2)?, 0.5 * dt)
    }
}
