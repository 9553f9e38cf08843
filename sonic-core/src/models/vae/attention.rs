//! diffusers' `Attention` as the VAE's mid blocks build it: GroupNorm first, biased q/k/v,
//! self-attention over the positions of each image, output added back to the input.

use crate::models::unet::resnet::dims4;
use crate::nn::{GroupNorm, Linear};
use crate::weights::VarBuilder;
use crate::{Result, Tensor};

#[derive(Clone, Debug)]
pub struct SpatialSelfAttention {
    group_norm: GroupNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    scale: f32,
}

impl SpatialSelfAttention {
    /// `head_dim` = `channels` in the SVD VAE: one head.
    pub fn new(vb: &VarBuilder, channels: usize, head_dim: usize, eps: f32) -> Result<Self> {
        let linear = |name: &str| Linear::new(&vb.pp(name), channels, channels);
        Ok(SpatialSelfAttention {
            group_norm: GroupNorm::new(&vb.pp("group_norm"), 32, channels, eps)?,
            to_q: linear("to_q")?,
            to_k: linear("to_k")?,
            to_v: linear("to_v")?,
            to_out: Linear::new(&vb.pp("to_out").pp(0), channels, channels)?,
            heads: channels / head_dim,
            scale: 1.0 / (head_dim as f32).sqrt(),
        })
    }

    /// `x [n, c, h, w]` → same shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [n, c, h, w] = dims4(x)?;
        let tokens = self
            .group_norm
            .forward(x)?
            .permute(&[0, 2, 3, 1])?
            .reshape([n, h * w, c])?;
        let q = self.to_q.forward(&tokens)?;
        let k = self.to_k.forward(&tokens)?;
        let v = self.to_v.forward(&tokens)?;
        let attended = Tensor::attention(&q, &k, &v, self.heads, self.scale)?;
        self.to_out
            .forward(&attended)?
            .reshape([n, h, w, c])?
            .permute(&[0, 3, 1, 2])?
            .add(x)
    }
}
