use super::{axpy, derivative, Denoise, NoiseSource, Sampler};
use crate::{Result, Tensor};

/// Euler ancestral (k-diffusion `sample_euler_ancestral`): a deterministic step down to
/// σ_down followed by fresh noise of size σ_up.
#[derive(Clone, Copy, Debug)]
pub struct EulerAncestral {
    pub eta: f32,
}

impl Default for EulerAncestral {
    fn default() -> Self {
        EulerAncestral { eta: 1.0 }
    }
}

/// `(σ_down, σ_up)` for a step from `sigma` to `next`.
fn ancestral_split(sigma: f32, next: f32, eta: f32) -> (f32, f32) {
    if next == 0.0 {
        return (0.0, 0.0);
    }
    let up =
        (eta * (next * next * (sigma * sigma - next * next) / (sigma * sigma)).sqrt()).min(next);
    ((next * next - up * up).sqrt(), up)
}

impl Sampler for EulerAncestral {
    fn name(&self) -> &str {
        "euler-ancestral"
    }

    fn step(
        &mut self,
        i: usize,
        sigmas: &[f32],
        x: &Tensor,
        model: &mut dyn Denoise,
        noise: &dyn NoiseSource,
    ) -> Result<Tensor> {
        let (sigma, next) = (sigmas[i], sigmas[i + 1]);
        let denoised = model.denoise(x, sigma)?;
        let (down, up) = ancestral_split(sigma, next, self.eta);
        let x = axpy(x, &derivative(x, &denoised, sigma)?, down - sigma)?;
        if up > 0.0 {
            axpy(&x, &noise.sample(&x)?, up)
        } else {
            Ok(x)
        }
    }
}
