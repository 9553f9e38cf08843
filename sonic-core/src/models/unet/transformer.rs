//! diffusers' `TransformerSpatioTemporalModel`: per layer, a spatial `BasicTransformerBlock`
//! over the positions of each frame and a `TemporalBasicTransformerBlock` over the frames of
//! each position, blended by a learned α.

use super::attention::{Attention, CrossContext, FeedForward};
use super::conditioning::Context;
use super::embeddings::{sinusoidal_embedding, TimestepEmbedding};
use super::resnet::{dims4, AlphaBlender};
use crate::nn::{GroupNorm, LayerNorm, Linear};
use crate::weights::VarBuilder;
use crate::{Result, Tensor};

const NORM_EPS: f32 = 1e-5;

/// Sizes shared by the blocks of one transformer.
#[derive(Clone, Copy, Debug)]
pub struct TransformerDims {
    pub channels: usize,
    pub heads: usize,
    pub cross_attention_dim: usize,
    pub layers: usize,
    /// Whether every `attn2` carries Sonic's audio adapter.
    pub audio_adapters: bool,
}

impl TransformerDims {
    fn head_dim(&self) -> usize {
        self.channels / self.heads
    }
}

/// LayerNorm → self-attention, LayerNorm → cross-attention, LayerNorm → GEGLU feed-forward,
/// each added back to its input.
#[derive(Clone, Debug)]
struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl BasicTransformerBlock {
    fn new(vb: &VarBuilder, d: &TransformerDims) -> Result<Self> {
        let c = d.channels;
        Ok(BasicTransformerBlock {
            norm1: LayerNorm::new(&vb.pp("norm1"), c, NORM_EPS)?,
            attn1: Attention::new(&vb.pp("attn1"), c, None, d.heads, d.head_dim(), false)?,
            norm2: LayerNorm::new(&vb.pp("norm2"), c, NORM_EPS)?,
            attn2: Attention::new(
                &vb.pp("attn2"),
                c,
                Some(d.cross_attention_dim),
                d.heads,
                d.head_dim(),
                d.audio_adapters,
            )?,
            norm3: LayerNorm::new(&vb.pp("norm3"), c, NORM_EPS)?,
            ff: FeedForward::new(&vb.pp("ff"), c, c)?,
        })
    }

    /// `x [b·f, h·w, c]`. `frames`: `None` attends over the positions of each frame,
    /// `Some(f)` over the `f` frames of each position (the temporal block); every other
    /// sub-layer is per token, or grouped per video, so the layout serves both.
    fn forward(&self, x: &Tensor, frames: Option<usize>, ctx: &CrossContext) -> Result<Tensor> {
        let normed = self.norm1.forward(x)?;
        let attended = match frames {
            None => self.attn1.self_attention(&normed)?,
            Some(f) => self.attn1.temporal_self_attention(&normed, f)?,
        };
        let x = attended.add(x)?;
        let x = self
            .attn2
            .cross_attention(&self.norm2.forward(&x)?, ctx)?
            .add(&x)?;
        self.ff.forward(&self.norm3.forward(&x)?)?.add(&x)
    }
}

/// The same three sub-layers across frames, preceded by a residual GEGLU feed-forward
/// (`ff_in`).
#[derive(Clone, Debug)]
struct TemporalBasicTransformerBlock {
    norm_in: LayerNorm,
    ff_in: FeedForward,
    inner: BasicTransformerBlock,
}

impl TemporalBasicTransformerBlock {
    fn new(vb: &VarBuilder, d: &TransformerDims) -> Result<Self> {
        Ok(TemporalBasicTransformerBlock {
            norm_in: LayerNorm::new(&vb.pp("norm_in"), d.channels, NORM_EPS)?,
            ff_in: FeedForward::new(&vb.pp("ff_in"), d.channels, d.channels)?,
            inner: BasicTransformerBlock::new(vb, d)?,
        })
    }

    /// `x [b·f, h·w, c]`; `ctx` holds one entry per video. diffusers permutes to
    /// `[b·hw, f, c]` here and back at the end; only the self-attention mixes frames, and
    /// it takes the spatial layout, so no permute is needed.
    fn forward(&self, x: &Tensor, frames: usize, ctx: &CrossContext) -> Result<Tensor> {
        let h = self.ff_in.forward(&self.norm_in.forward(x)?)?.add(x)?;
        self.inner.forward(&h, Some(frames), ctx)
    }
}

#[derive(Clone, Debug)]
pub struct TransformerSpatioTemporalModel {
    norm: GroupNorm,
    proj_in: Linear,
    transformer_blocks: Vec<BasicTransformerBlock>,
    temporal_transformer_blocks: Vec<TemporalBasicTransformerBlock>,
    time_pos_embed: TimestepEmbedding,
    time_mixer: AlphaBlender,
    proj_out: Linear,
    channels: usize,
}

impl TransformerSpatioTemporalModel {
    pub fn new(vb: &VarBuilder, d: &TransformerDims) -> Result<Self> {
        let c = d.channels;
        let blocks = |name: &str| -> Result<Vec<_>> {
            (0..d.layers)
                .map(|i| BasicTransformerBlock::new(&vb.pp(name).pp(i), d))
                .collect()
        };
        let temporal = (0..d.layers)
            .map(|i| {
                TemporalBasicTransformerBlock::new(&vb.pp("temporal_transformer_blocks").pp(i), d)
            })
            .collect::<Result<_>>()?;
        Ok(TransformerSpatioTemporalModel {
            norm: GroupNorm::new(&vb.pp("norm"), 32, c, 1e-6)?,
            proj_in: Linear::new(&vb.pp("proj_in"), c, c)?,
            transformer_blocks: blocks("transformer_blocks")?,
            temporal_transformer_blocks: temporal,
            time_pos_embed: TimestepEmbedding::new(&vb.pp("time_pos_embed"), c, 4 * c, c)?,
            time_mixer: AlphaBlender::new(&vb.pp("time_mixer"), false)?,
            proj_out: Linear::new(&vb.pp("proj_out"), c, c)?,
            channels: c,
        })
    }

    /// `x [b·f, c, h, w]` → same shape.
    pub fn forward(&self, x: &Tensor, frames: usize, ctx: &Context) -> Result<Tensor> {
        let [bf, c, h, w] = dims4(x)?;
        let b = bf / frames;
        let tokens = self
            .norm
            .forward(x)?
            .permute(&[0, 2, 3, 1])?
            .reshape([bf, h * w, c])?;
        let mut hs = self.proj_in.forward(&tokens)?;
        // Frame positions are relative to the window: 0..frames, whatever frames it holds.
        let positions: Vec<f32> = (0..frames).map(|i| i as f32).collect();
        let frame_emb = self
            .time_pos_embed
            .forward(&sinusoidal_embedding(
                &positions,
                self.channels,
                x.device(),
            )?)?
            .reshape([1, frames, 1, c])?;
        let spatial = ctx.spatial(h, w)?;
        let temporal = ctx.temporal();
        for (block, temporal_block) in self
            .transformer_blocks
            .iter()
            .zip(&self.temporal_transformer_blocks)
        {
            hs = block.forward(&hs, None, &spatial)?;
            let with_position = hs
                .reshape([b, frames, h * w, c])?
                .add(&frame_emb)?
                .reshape([bf, h * w, c])?;
            let mixed = temporal_block.forward(&with_position, frames, &temporal)?;
            hs = self.time_mixer.blend(&hs, &mixed)?;
        }
        self.proj_out
            .forward(&hs)?
            .reshape([bf, h, w, c])?
            .permute(&[0, 3, 1, 2])?
            .add(x)
    }
}
