//! Sonic's `Audio2bucketModel`: one second of last-layer Whisper features plus the CLIP
//! image embedding → the two motion buckets (head motion, expression) of one video frame.

use serde::Deserialize;

use crate::nn::Linear;
use crate::weights::VarBuilder;
use crate::{Error, Result, Tensor};

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Audio2BucketConfig {
    pub seq_len: usize,
    pub blocks: usize,
    pub channels: usize,
    pub clip_channels: usize,
    pub intermediate_dim: usize,
    pub output_dim: usize,
    pub context_tokens: usize,
}

impl Default for Audio2BucketConfig {
    fn default() -> Self {
        Audio2BucketConfig {
            seq_len: 50,
            blocks: 1,
            channels: 384,
            clip_channels: 1024,
            intermediate_dim: 1024,
            output_dim: 1,
            context_tokens: 2,
        }
    }
}

impl Audio2BucketConfig {
    pub fn audio_dim(&self) -> usize {
        self.seq_len * self.blocks * self.channels
    }
}

/// proj1 (SiLU) → proj2 (SiLU) → proj3, no output activation: the raw outputs are unbounded.
#[derive(Clone, Debug)]
pub struct Audio2Bucket {
    pub config: Audio2BucketConfig,
    proj1: Linear,
    proj2: Linear,
    proj3: Linear,
}

impl Audio2Bucket {
    pub fn new(config: Audio2BucketConfig, vb: &VarBuilder) -> Result<Self> {
        let c = &config;
        Ok(Audio2Bucket {
            proj1: Linear::new(
                &vb.pp("proj1"),
                c.audio_dim() + c.clip_channels,
                c.intermediate_dim,
            )?,
            proj2: Linear::new(&vb.pp("proj2"), c.intermediate_dim, c.intermediate_dim)?,
            proj3: Linear::new(
                &vb.pp("proj3"),
                c.intermediate_dim,
                c.context_tokens * c.output_dim,
            )?,
            config,
        })
    }

    /// `windows [n, seq_len, blocks, channels]` and `image_embeds [1, clip_channels]` (shared
    /// by every frame) → raw outputs `[n, context_tokens·output_dim]`.
    pub fn forward(&self, windows: &Tensor, image_embeds: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let n = windows.dims().first().copied().unwrap_or(0);
        if image_embeds.dims() != [1, c.clip_channels] {
            return Err(Error::invalid(
                "audio2bucket",
                format!(
                    "image embedding {} is not [1, {}]",
                    image_embeds.shape(),
                    c.clip_channels
                ),
            ));
        }
        let audio = windows.reshape([n, c.audio_dim()])?;
        // This MLP stays f32 while CLIP may run in half precision.
        let clip = Tensor::zeros([n, 1], audio.device())?
            .to_dtype(audio.dtype())?
            .add(&image_embeds.to_dtype(audio.dtype())?)?;
        let x = Tensor::cat(&[&audio, &clip], 1)?;
        let x = self.proj1.forward(&x)?.silu()?;
        let x = self.proj2.forward(&x)?.silu()?;
        self.proj3.forward(&x)
    }
}
