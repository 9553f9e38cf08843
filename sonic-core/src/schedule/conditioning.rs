//! Per-frame conditioning cut to a window with the same indices as its latents.

use crate::{Error, Result, Tensor};

/// How a per-frame tensor reaches a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// One entry per window slot, repeats included (audio tokens, image embeddings, latents).
    PerSlot,
    /// The mean over the window's slots (Sonic's motion buckets).
    Mean,
}

/// Named per-frame tensors, axis 0 being frames.
#[derive(Clone, Debug, Default)]
pub struct FrameConditioning {
    entries: Vec<(String, Tensor, Reduce)>,
}

impl FrameConditioning {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tensor with one entry per frame along axis 0.
    pub fn with(mut self, name: &str, per_frame: Tensor, reduce: Reduce) -> Self {
        self.entries.push((name.to_string(), per_frame, reduce));
        self
    }

    /// The conditioning of the window whose slots hold `frames`. Every tensor must cover
    /// the frames named; a short one is an error naming it.
    pub fn window(&self, frames: &[usize]) -> Result<Vec<(String, Tensor)>> {
        self.entries
            .iter()
            .map(|(name, t, reduce)| {
                let have = t.dims().first().copied().unwrap_or(0);
                if let Some(&f) = frames.iter().find(|&&f| f >= have) {
                    return Err(Error::invalid(
                        "conditioning",
                        format!("`{name}` has {have} frames but the window needs frame {f}"),
                    ));
                }
                let slots = t.index_select(0, frames)?;
                let value = match reduce {
                    Reduce::PerSlot => slots,
                    Reduce::Mean => slots.mean(&[0], false)?,
                };
                Ok((name.clone(), value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Strategy;
    use crate::Device;

    #[test]
    fn windows_slice_with_the_latents_indices_and_average_buckets() {
        let frames = 30;
        let tokens = Tensor::arange(0.0, frames, Device::Cpu)
            .unwrap()
            .reshape([frames, 1])
            .unwrap();
        let buckets = Tensor::arange(0.0, frames * 2, Device::Cpu)
            .unwrap()
            .reshape([frames, 2])
            .unwrap();
        let cond = FrameConditioning::new()
            .with("audio", tokens, Reduce::PerSlot)
            .with("buckets", buckets, Reduce::Mean);
        let plan: Strategy = "shift:alpha=7".parse().unwrap();
        let plan = plan.plan(frames, 25, 3).unwrap();
        let w = &plan.windows_at(2)[1];
        let out = cond.window(&w.frames).unwrap();
        let audio = out[0].1.to_vec().unwrap();
        assert_eq!(
            audio,
            w.frames.iter().map(|&f| f as f32).collect::<Vec<_>>()
        );
        let mean0 = w.frames.iter().map(|&f| (2 * f) as f32).sum::<f32>() / 25.0;
        let b = out[1].1.to_vec().unwrap();
        assert_eq!(out[1].1.dims(), &[2]);
        assert!(
            (b[0] - mean0).abs() < 1e-4 && (b[1] - mean0 - 1.0).abs() < 1e-4,
            "{b:?}"
        );
    }

    #[test]
    fn short_conditioning_is_named() {
        let cond = FrameConditioning::new().with(
            "audio",
            Tensor::zeros([3, 2], Device::Cpu).unwrap(),
            Reduce::PerSlot,
        );
        let err = cond.window(&[0, 5]).unwrap_err().to_string();
        assert!(
            err.contains("`audio` has 3 frames") && err.contains("frame 5"),
            "{err}"
        );
    }
}
