//! Window plans: which frames each denoiser call sees, with what fusion weight, at every
//! step. Plans are pure data built from (length, window, steps, parameters), so every
//! strategy can be inspected, costed and property-tested without a tensor in sight.

use serde::Serialize;

/// One denoiser call: the frames it sees (absolute indices, repeats allowed) and the
/// weight each slot gets when the results are fused per frame. A slot of weight 0 is
/// context only (edge padding): the denoiser sees it, fusion ignores its output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Window {
    pub frames: Vec<usize>,
    pub weights: Vec<f32>,
    /// Leading slots holding carried-over latents (motion frames), not generated here.
    pub carried: usize,
}

impl Window {
    pub fn flat(frames: Vec<usize>) -> Self {
        let weights = vec![1.0; frames.len()];
        Window {
            frames,
            weights,
            carried: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames this window generates and votes on, in slot order.
    pub fn voting_frames(&self) -> impl Iterator<Item = usize> + '_ {
        (self.carried..self.frames.len())
            .filter(|&k| self.weights[k] > 0.0)
            .map(|k| self.frames[k])
    }
}

/// How a plan is executed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Layout {
    /// The whole sequence is denoised together; step `i` runs `steps[i]` and fuses per frame.
    Fused { steps: Vec<Vec<Window>> },
    /// Clip by clip: each clip runs every step before the next starts, its leading
    /// `carried` slots taken from the previous clip's final latents.
    Clips { clips: Vec<Window>, steps: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub frames: usize,
    pub window: usize,
    pub layout: Layout,
}

impl Plan {
    pub fn steps(&self) -> usize {
        match &self.layout {
            Layout::Fused { steps } => steps.len(),
            Layout::Clips { steps, .. } => *steps,
        }
    }

    /// The windows that run at step `step` (for clip plans: every clip's window).
    pub fn windows_at(&self, step: usize) -> &[Window] {
        match &self.layout {
            Layout::Fused { steps } => &steps[step],
            Layout::Clips { clips, .. } => clips,
        }
    }

    /// How often each frame is generated (not carried) at `step`.
    pub fn coverage(&self, step: usize) -> Vec<usize> {
        let mut count = vec![0; self.frames];
        for w in self.windows_at(step) {
            for f in w.voting_frames() {
                count[f] += 1;
            }
        }
        count
    }

    /// Frame positions `b` where a window edge separates frame `b − 1` from frame `b` at
    /// `step`, i.e. where a run of consecutive frames handled by one window ends.
    pub fn boundaries(&self, step: usize) -> Vec<usize> {
        let mut edges = std::collections::BTreeSet::new();
        for w in self.windows_at(step) {
            let generated: Vec<usize> = w.voting_frames().collect();
            for pair in generated.windows(2) {
                if pair[1] != pair[0] + 1 {
                    edges.insert(pair[0] + 1);
                }
            }
            if let (Some(&first), Some(&last)) = (generated.first(), generated.last()) {
                edges.insert(first);
                edges.insert(last + 1);
            }
        }
        edges
            .into_iter()
            .filter(|&b| b > 0 && b < self.frames)
            .collect()
    }

    /// Checks the invariants every strategy must meet: indices in range, weights finite and
    /// non-negative, and every frame generated (with a positive weight) at least once per step.
    pub fn validate(&self) -> Result<(), String> {
        for step in 0..self.steps() {
            for w in self.windows_at(step) {
                if w.frames.len() != w.weights.len() || w.carried > w.frames.len() || w.is_empty() {
                    return Err(format!("step {step}: malformed window {w:?}"));
                }
                if let Some(f) = w.frames.iter().find(|&&f| f >= self.frames) {
                    return Err(format!("step {step}: frame {f} out of range"));
                }
                if w.weights.iter().any(|&x| !(x >= 0.0 && x.is_finite())) {
                    return Err(format!(
                        "step {step}: negative or non-finite weight in {w:?}"
                    ));
                }
            }
            if let Some(f) = self.coverage(step).iter().position(|&c| c == 0) {
                return Err(format!("step {step}: frame {f} is never generated"));
            }
        }
        Ok(())
    }
}
