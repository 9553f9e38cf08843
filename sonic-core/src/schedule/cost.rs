//! What a run will cost, answered from the plan before any tensor is touched.

use serde::Serialize;

use super::plan::Plan;
use super::strategy::Fusion;
use crate::sampling::Sampler;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Denoiser calls, one per window evaluation (each call runs the guidance branches as one batch).
    pub denoiser_calls: usize,
    /// The longest window a call sees.
    pub max_frames_per_call: usize,
    /// Frames pushed through the denoiser in total: the compute that scales with length.
    pub frame_evaluations: usize,
}

/// Cost of running `plan` with `sampler` over `sigmas`. Sonic-compat fusion steps every
/// window with its own single evaluation, so samplers count one call per window there.
pub fn cost(plan: &Plan, sampler: &dyn Sampler, sigmas: &[f32], fusion: Fusion) -> Cost {
    let mut c = Cost {
        denoiser_calls: 0,
        max_frames_per_call: 0,
        frame_evaluations: 0,
    };
    for step in 0..plan.steps() {
        let evals = match fusion {
            Fusion::FuseThenStep => sampler.model_calls(step, sigmas),
            Fusion::SonicCompat => 1,
        };
        for w in plan.windows_at(step) {
            c.denoiser_calls += evals;
            c.frame_evaluations += evals * w.len();
            c.max_frames_per_call = c.max_frames_per_call.max(w.len());
        }
    }
    c
}
