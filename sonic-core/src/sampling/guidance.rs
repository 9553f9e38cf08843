//! Sonic's three-branch classifier-free guidance.

use crate::{Error, Result, Tensor};

/// A scale that ramps linearly over denoising steps from `min` to `max`
/// (`torch.linspace(min, max, steps)[i]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuidanceSchedule {
    pub min: f32,
    pub max: f32,
}

impl GuidanceSchedule {
    pub fn constant(v: f32) -> Self {
        GuidanceSchedule { min: v, max: v }
    }

    pub fn at(&self, step: usize, steps: usize) -> f32 {
        if steps <= 1 {
            return self.min;
        }
        self.min + (self.max - self.min) * step as f32 / (steps - 1) as f32
    }
}

/// Guidance over the branch batch `[no image, no audio] · [image, no audio] · [image, audio]`:
/// `v_u + g_img·(v_img − v_u) + g_aud·(v_full − v_img)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiCondGuidance {
    pub image: GuidanceSchedule,
    pub audio: GuidanceSchedule,
}

impl Default for MultiCondGuidance {
    fn default() -> Self {
        MultiCondGuidance {
            image: GuidanceSchedule::constant(2.0),
            audio: GuidanceSchedule::constant(7.5),
        }
    }
}

impl MultiCondGuidance {
    /// Combines model outputs stacked on axis 0 as three equal branches.
    pub fn combine(&self, batched: &Tensor, step: usize, steps: usize) -> Result<Tensor> {
        let n = batched.dim(0)?;
        if n % 3 != 0 {
            return Err(Error::invalid(
                "guidance",
                format!("batch of {n} is not three branches"),
            ));
        }
        let parts = batched.chunk(3, 0)?;
        let (u, img, full) = (&parts[0], &parts[1], &parts[2]);
        let (gi, ga) = (self.image.at(step, steps), self.audio.at(step, steps));
        u.add(&img.sub(u)?.mul_scalar(gi)?)?
            .add(&full.sub(img)?.mul_scalar(ga)?)
    }
}
