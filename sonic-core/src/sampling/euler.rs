use super::{axpy, derivative, Denoise, NoiseSource, Sampler};
use crate::{Result, Tensor};

/// First-order Euler on the probability-flow ODE; SVD's EulerDiscreteScheduler with
/// `s_churn = 0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Euler;

impl Sampler for Euler {
    fn name(&self) -> &str {
        "euler"
    }

    fn is_single_eval_stateless(&self) -> bool {
        true
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
        let denoised = model.denoise(x, sigma)?;
        axpy(x, &derivative(x, &denoised, sigma)?, next - sigma)
    }
}
