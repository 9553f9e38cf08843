//! An example plugin: DPM++ 2M SDE (Lu et al. 2022; k-diffusion's `sample_dpmpp_2m_sde`,
//! midpoint variant), a sampler sonic does not build in. It implements sonic-core's `Sampler`
//! trait exactly like the built-in samplers, and `export_plugin!` turns it into a plugin.

use sonic_core::sampling::{Denoise, NoiseSource, Sampler};
use sonic_core::{Result, Tensor};

/// DPM++ 2M SDE with η = 1: a second-order multistep update in λ = −ln σ plus fresh noise.
#[derive(Debug, Default)]
pub struct DpmPp2mSde {
    previous: Option<(Tensor, f64)>,
}

impl Sampler for DpmPp2mSde {
    fn name(&self) -> &str {
        "dpmpp-2m-sde"
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
        noise: &dyn NoiseSource,
    ) -> Result<Tensor> {
        let (sigma, next) = (sigmas[i] as f64, sigmas[i + 1] as f64);
        let denoised = model.denoise(x, sigma as f32)?;
        let previous = self.previous.replace((denoised.clone(), sigma));
        if next == 0.0 {
            return Ok(denoised);
        }
        let (t, s) = (-sigma.ln(), -next.ln());
        let h = s - t;
        let eta_h = h; // η = 1
        let mut out = x
            .mul_scalar((next / sigma * (-eta_h).exp()) as f32)?
            .add(&denoised.mul_scalar((-(-h - eta_h).exp_m1()) as f32)?)?;
        if let Some((old, old_sigma)) = previous {
            let h_last = t + old_sigma.ln();
            let r = h_last / h;
            let correction = denoised
                .sub(&old)?
                .mul_scalar((0.5 * (-(-h - eta_h).exp_m1()) / r) as f32)?;
            out = out.add(&correction)?;
        }
        let scale = next * (-(-2.0 * eta_h).exp_m1()).sqrt();
        out.add(&noise.sample(x)?.mul_scalar(scale as f32)?)
    }
}

sonic_plugins::export_plugin! {
    host_min_version: "0.1.0",
    samplers: [
        {
            id: "dpmpp-2m-sde",
            name: "DPM++ 2M SDE",
            version: "1.0.0",
            vendor: "Sonic SDK examples",
            description: "Second-order multistep SDE solver (eta = 1), midpoint correction",
            create: DpmPp2mSde::default,
        },
    ],
}
