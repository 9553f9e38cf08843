use crate::rng::FrameNoise;
use crate::{Result, Tensor};

/// Where a stochastic sampler gets fresh standard-normal noise for the current step.
pub trait NoiseSource {
    /// Noise shaped like `like` (`[frames, …]`), on its device.
    fn sample(&self, like: &Tensor) -> Result<Tensor>;
}

/// Fresh noise for stochastic samplers at one step: per-frame streams (axis 0 of the latent
/// sequence is frames) keyed by the run's seed and the step, so a longer sequence never
/// changes the noise of earlier frames.
#[derive(Clone, Copy, Debug)]
pub struct StepNoise {
    seed: u64,
    step: usize,
    first_frame: u64,
}

impl StepNoise {
    pub fn new(seed: u64, step: usize) -> Self {
        StepNoise {
            seed,
            step,
            first_frame: 0,
        }
    }

    /// The same noise source for a tensor whose axis 0 starts at absolute frame `first`.
    pub fn starting_at(self, first: usize) -> Self {
        StepNoise {
            first_frame: first as u64,
            ..self
        }
    }
}

impl NoiseSource for StepNoise {
    fn sample(&self, like: &Tensor) -> Result<Tensor> {
        // Steps get their own key; the initial latent noise uses the seed itself.
        let key = self.seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(self.step as u64 + 1));
        let frames = like.dims().first().copied().unwrap_or(1);
        let frame_shape = crate::Shape::new(like.dims().get(1..).unwrap_or(&[]).to_vec());
        let noise =
            FrameNoise::new(key).frames(self.first_frame, frames, &frame_shape, like.device())?;
        noise.reshape(like.shape())
    }
}
