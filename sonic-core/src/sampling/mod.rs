//! Samplers in the k-diffusion convention: a sampler moves the whole latent sequence from
//! σ_i to σ_{i+1} given a model that returns the *denoised estimate* for a noisy input. The
//! model it is handed is whatever the long-video scheduler fused over its windows, so any
//! sampler composes with any scheduler.

mod dpmpp_2m;
mod euler;
mod euler_ancestral;
mod guidance;
mod heun;
mod noise;
mod sigmas;

pub use dpmpp_2m::DpmPp2m;
pub use euler::Euler;
pub use euler_ancestral::EulerAncestral;
pub use guidance::{GuidanceSchedule, MultiCondGuidance};
pub use heun::Heun;
pub use noise::{NoiseSource, StepNoise};
pub use sigmas::{karras_sigmas, scale_model_input, sigma_to_timestep, v_to_denoised, SvdSchedule};

use crate::{Error, Result, Tensor};

/// Returns the denoised estimate of `x` at noise level `sigma`.
pub trait Denoise {
    fn denoise(&mut self, x: &Tensor, sigma: f32) -> Result<Tensor>;
}

impl<F: FnMut(&Tensor, f32) -> Result<Tensor>> Denoise for F {
    fn denoise(&mut self, x: &Tensor, sigma: f32) -> Result<Tensor> {
        self(x, sigma)
    }
}

pub trait Sampler: Send {
    fn name(&self) -> &str;

    /// Model evaluations taken by step `i` of a run over `sigmas` (σ_0 … σ_T, σ_T = 0).
    fn model_calls(&self, i: usize, sigmas: &[f32]) -> usize {
        let _ = (i, sigmas);
        1
    }

    /// Whether one step depends only on (x, σ_i, σ_{i+1}, denoised at σ_i): such samplers can
    /// also be run window by window with the stepped latents averaged (Sonic's fusion).
    fn is_single_eval_stateless(&self) -> bool {
        false
    }

    /// Clears state carried between steps (multistep history). Called before step 0.
    fn reset(&mut self) {}

    /// Moves `x` from `sigmas[i]` to `sigmas[i + 1]`.
    fn step(
        &mut self,
        i: usize,
        sigmas: &[f32],
        x: &Tensor,
        model: &mut dyn Denoise,
        noise: &dyn NoiseSource,
    ) -> Result<Tensor>;
}

/// The built-in sampler names, in the order `sonic` lists them.
pub const BUILTIN_SAMPLERS: [&str; 4] = ["euler", "euler-ancestral", "heun", "dpmpp-2m"];

/// A built-in sampler by name.
pub fn builtin_sampler(name: &str) -> Result<Box<dyn Sampler>> {
    Ok(match name {
        "euler" => Box::new(Euler),
        "euler-ancestral" | "euler_a" => Box::new(EulerAncestral::default()),
        "heun" => Box::new(Heun),
        "dpmpp-2m" | "dpm++2m" => Box::new(DpmPp2m::default()),
        other => {
            return Err(Error::invalid(
                "sampler",
                format!(
                    "unknown sampler `{other}` (built in: {})",
                    BUILTIN_SAMPLERS.join(", ")
                ),
            ))
        }
    })
}

/// `(x − denoised)/σ`, the ODE derivative dx/dσ.
pub(crate) fn derivative(x: &Tensor, denoised: &Tensor, sigma: f32) -> Result<Tensor> {
    x.sub(denoised)?.mul_scalar(1.0 / sigma)
}

/// `x + d·h`.
pub(crate) fn axpy(x: &Tensor, d: &Tensor, h: f32) -> Result<Tensor> {
    x.add(&d.mul_scalar(h)?)
}

#[cfg(test)]
mod tests;
