//! Sonic's `AudioProjModel` (audio2token): a window of stacked Whisper hidden states →
//! cross-attention tokens for one video frame.

use serde::Deserialize;

use crate::nn::{LayerNorm, Linear};
use crate::weights::VarBuilder;
use crate::{Result, Tensor};

/// Constructor arguments of the reference module (`AudioProjModel(seq_len=10, blocks=5, …)`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AudioProjConfig {
    pub seq_len: usize,
    pub blocks: usize,
    pub channels: usize,
    pub intermediate_dim: usize,
    pub output_dim: usize,
    pub context_tokens: usize,
}

impl Default for AudioProjConfig {
    fn default() -> Self {
        AudioProjConfig {
            seq_len: 10,
            blocks: 5,
            channels: 384,
            intermediate_dim: 1024,
            output_dim: 1024,
            context_tokens: 32,
        }
    }
}

impl AudioProjConfig {
    pub fn input_dim(&self) -> usize {
        self.seq_len * self.blocks * self.channels
    }
}

/// proj1 (ReLU) → proj2 (ReLU) → proj3 → `[context_tokens, output_dim]` → LayerNorm.
#[derive(Clone, Debug)]
pub struct AudioProjModel {
    pub config: AudioProjConfig,
    proj1: Linear,
    proj2: Linear,
    proj3: Linear,
    norm: LayerNorm,
}

impl AudioProjModel {
    pub fn new(config: AudioProjConfig, vb: &VarBuilder) -> Result<Self> {
        let c = &config;
        Ok(AudioProjModel {
            proj1: Linear::new(&vb.pp("proj1"), c.input_dim(), c.intermediate_dim)?,
            proj2: Linear::new(&vb.pp("proj2"), c.intermediate_dim, c.intermediate_dim)?,
            proj3: Linear::new(
                &vb.pp("proj3"),
                c.intermediate_dim,
                c.context_tokens * c.output_dim,
            )?,
            norm: LayerNorm::new(&vb.pp("norm"), c.output_dim, 1e-5)?,
            config,
        })
    }

    /// `windows [n, seq_len, blocks, channels]` → tokens `[n, context_tokens, output_dim]`.
    /// Flattening is row-major over (window, block, channel), as the reference's `view`.
    pub fn forward(&self, windows: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let n = windows.dims().first().copied().unwrap_or(0);
        let x = windows.reshape([n, c.input_dim()])?;
        let x = self.proj1.forward(&x)?.relu()?;
        let x = self.proj2.forward(&x)?.relu()?;
        let x = self
            .proj3
            .forward(&x)?
            .reshape([n, c.context_tokens, c.output_dim])?;
        self.norm.forward(&x)
    }
}
