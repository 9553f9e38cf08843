//! The noise schedule of SVD's EulerDiscreteScheduler configuration: Karras sigmas,
//! continuous timesteps and v-prediction.

/// Karras et al. (2022) sigmas, ρ = 7, from `sigma_max` down to `sigma_min` in `steps`
/// values, followed by a final 0. Computed in f64 and rounded once, as diffusers does in numpy.
pub fn karras_sigmas(steps: usize, sigma_min: f64, sigma_max: f64) -> Vec<f32> {
    const RHO: f64 = 7.0;
    let (min_inv, max_inv) = (sigma_min.powf(1.0 / RHO), sigma_max.powf(1.0 / RHO));
    let mut sigmas: Vec<f32> = (0..steps)
        .map(|i| {
            let ramp = if steps > 1 {
                i as f64 / (steps - 1) as f64
            } else {
                0.0
            };
            (max_inv + ramp * (min_inv - max_inv)).powf(RHO) as f32
        })
        .collect();
    sigmas.push(0.0);
    sigmas
}

/// The UNet's continuous timestep for σ: `0.25·ln σ`.
pub fn sigma_to_timestep(sigma: f32) -> f32 {
    0.25 * sigma.ln()
}

/// The factor `1/√(σ²+1)` by which the model input is scaled.
pub fn scale_model_input(sigma: f32) -> f32 {
    1.0 / (sigma * sigma + 1.0).sqrt()
}

/// Denoised estimate from a v-prediction: `x0 = v·(−σ/√(σ²+1)) + x/(σ²+1)`.
pub fn v_to_denoised(
    x: &crate::Tensor,
    v: &crate::Tensor,
    sigma: f32,
) -> crate::Result<crate::Tensor> {
    let s2 = sigma * sigma + 1.0;
    v.mul_scalar(-sigma / s2.sqrt())?
        .add(&x.mul_scalar(1.0 / s2)?)
}

/// SVD's scheduler constants (`scheduler/scheduler_config.json` of img2vid-xt).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SvdSchedule {
    pub sigma_min: f64,
    pub sigma_max: f64,
}

impl Default for SvdSchedule {
    fn default() -> Self {
        SvdSchedule {
            sigma_min: 0.002,
            sigma_max: 700.0,
        }
    }
}

impl SvdSchedule {
    pub fn sigmas(&self, steps: usize) -> Vec<f32> {
        karras_sigmas(steps, self.sigma_min, self.sigma_max)
    }
}
