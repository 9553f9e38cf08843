use super::{Denoise, NoiseSource, Sampler};
use crate::{Result, Tensor};

/// DPM-Solver++(2M) (Lu et al. 2022) on the Karras sigmas, as k-diffusion's
/// `sample_dpmpp_2m`: second order from the previous step's denoised estimate.
#[derive(Clone, Debug, Default)]
pub struct DpmPp2m {
    previous: Option<(Tensor, f32)>,
}

impl Sampler for DpmPp2m {
    fn name(&self) -> &str {
        "dpmpp-2m"
    }

    fn reset(&mut self) {
        self.previous = None;
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
        let previous = self.previous.replace((denoised.clone(), sigma));
        if next == 0.0 {
            return Ok(denoised);
        }
        // λ = −ln σ; h is the step in λ.
        let (t, t_next) = (-(sigma as f64).ln(), -(next as f64).ln());
        let h = t_next - t;
        let estimate = match previous {
            Some((old, old_sigma)) => {
                let r = (t + (old_sigma as f64).ln()) / h;
                let w = 1.0 / (2.0 * r);
                denoised
                    .mul_scalar((1.0 + w) as f32)?
                    .sub(&old.mul_scalar(w as f32)?)?
            }
            None => denoised,
        };
        let keep = (next / sigma) as f64;
        x.mul_scalar(keep as f32)?
            .add(&estimate.mul_scalar((-(-h).exp_m1()) as f32)?)
    }
}
