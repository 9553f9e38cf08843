//! The UNet's levels: `(CrossAttn)DownBlockSpatioTemporal`, `UNetMidBlockSpatioTemporal`,
//! `(CrossAttn)UpBlockSpatioTemporal`, and the 2d resamplers they end with.

use super::conditioning::Context;
use super::resnet::{dims4, ResBlockOptions, SpatioTemporalResBlock};
use super::transformer::{TransformerDims, TransformerSpatioTemporalModel};
use crate::nn::Conv;
use crate::weights::VarBuilder;
use crate::{Error, Result, Tensor};

/// `Downsample2D` with a convolution: 3×3, stride 2. With padding 0 (the VAE encoder) the
/// input is first padded by one zero row and column at the bottom and right, as diffusers does.
#[derive(Clone, Debug)]
pub struct Downsample2D {
    conv: Conv,
    pad_bottom_right: bool,
}

impl Downsample2D {
    pub fn new(vb: &VarBuilder, channels: usize, padding: usize) -> Result<Self> {
        Ok(Downsample2D {
            conv: Conv::new(
                &vb.pp("conv"),
                channels,
                channels,
                &[3, 3],
                2,
                &[padding, padding],
                true,
            )?,
            pad_bottom_right: padding == 0,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.pad_bottom_right {
            return self.conv.forward(x);
        }
        let [n, c, h, w] = dims4(x)?;
        let zeros = |dims: [usize; 4]| Tensor::zeros(dims, x.device())?.to_dtype(x.dtype());
        let x = Tensor::cat(&[x, &zeros([n, c, h, 1])?], 3)?;
        let x = Tensor::cat(&[&x, &zeros([n, c, 1, w + 1])?], 2)?;
        self.conv.forward(&x)
    }
}

/// `Upsample2D` with a convolution: nearest-neighbour 2×, then 3×3.
#[derive(Clone, Debug)]
pub struct Upsample2D {
    conv: Conv,
}

impl Upsample2D {
    pub fn new(vb: &VarBuilder, channels: usize) -> Result<Self> {
        Ok(Upsample2D {
            conv: Conv::new(
                &vb.pp("conv"),
                channels,
                channels,
                &[3, 3],
                1,
                &[1, 1],
                true,
            )?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv.forward(&x.upsample_nearest2d(2, 2)?)
    }
}

/// The shape of one level as the UNet config gives it.
#[derive(Clone, Copy, Debug)]
pub struct LevelSpec<'a> {
    pub block_type: &'a str,
    pub in_channels: usize,
    pub out_channels: usize,
    pub temb_channels: usize,
    pub layers: usize,
    pub attention: TransformerDims,
}

fn transformer(
    vb: &VarBuilder,
    i: usize,
    channels: usize,
    spec: &LevelSpec,
) -> Result<TransformerSpatioTemporalModel> {
    let dims = TransformerDims {
        channels,
        ..spec.attention
    };
    TransformerSpatioTemporalModel::new(&vb.pp("attentions").pp(i), &dims)
}

fn unsupported(kind: &str, block_type: &str) -> Error {
    Error::invalid(
        "unet",
        format!("unsupported {kind} block type `{block_type}`"),
    )
}

#[derive(Clone, Debug)]
pub struct DownBlock {
    resnets: Vec<SpatioTemporalResBlock>,
    attentions: Vec<TransformerSpatioTemporalModel>,
    downsampler: Option<Downsample2D>,
}

impl DownBlock {
    pub fn new(vb: &VarBuilder, spec: &LevelSpec, add_downsample: bool) -> Result<Self> {
        // diffusers builds the plain block's res blocks with eps 1e-5, the cross-attention
        // block's with 1e-6.
        let (cross, eps) = match spec.block_type {
            "CrossAttnDownBlockSpatioTemporal" => (true, 1e-6),
            "DownBlockSpatioTemporal" => (false, 1e-5),
            other => return Err(unsupported("down", other)),
        };
        let out = spec.out_channels;
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for i in 0..spec.layers {
            let in_ch = if i == 0 { spec.in_channels } else { out };
            resnets.push(SpatioTemporalResBlock::new(
                &vb.pp("resnets").pp(i),
                in_ch,
                out,
                Some(spec.temb_channels),
                ResBlockOptions::unet(eps),
            )?);
            if cross {
                attentions.push(transformer(vb, i, out, spec)?);
            }
        }
        let downsampler = add_downsample
            .then(|| Downsample2D::new(&vb.pp("downsamplers").pp(0), out, 1))
            .transpose()?;
        Ok(DownBlock {
            resnets,
            attentions,
            downsampler,
        })
    }

    /// Returns the block's output and the skip connections it adds.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        frames: usize,
        ctx: &Context,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut x = x.clone();
        let mut skips = Vec::new();
        for (i, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(&x, Some(temb), frames)?;
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(&x, frames, ctx)?;
            }
            skips.push(x.clone());
        }
        if let Some(down) = &self.downsampler {
            x = down.forward(&x)?;
            skips.push(x.clone());
        }
        Ok((x, skips))
    }
}

/// A res block, then (transformer, res block) per layer; eps 1e-5.
#[derive(Clone, Debug)]
pub struct MidBlock {
    resnets: Vec<SpatioTemporalResBlock>,
    attentions: Vec<TransformerSpatioTemporalModel>,
}

impl MidBlock {
    /// diffusers' UNet builds its mid block with one layer.
    pub fn new(vb: &VarBuilder, spec: &LevelSpec) -> Result<Self> {
        let c = spec.in_channels;
        let resnet = |i: usize| {
            SpatioTemporalResBlock::new(
                &vb.pp("resnets").pp(i),
                c,
                c,
                Some(spec.temb_channels),
                ResBlockOptions::unet(1e-5),
            )
        };
        Ok(MidBlock {
            resnets: (0..=spec.layers).map(resnet).collect::<Result<_>>()?,
            attentions: (0..spec.layers)
                .map(|i| transformer(vb, i, c, spec))
                .collect::<Result<_>>()?,
        })
    }

    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        frames: usize,
        ctx: &Context,
    ) -> Result<Tensor> {
        let mut x = self.resnets[0].forward(x, Some(temb), frames)?;
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = attn.forward(&x, frames, ctx)?;
            x = resnet.forward(&x, Some(temb), frames)?;
        }
        Ok(x)
    }
}

#[derive(Clone, Debug)]
pub struct UpBlock {
    resnets: Vec<SpatioTemporalResBlock>,
    attentions: Vec<TransformerSpatioTemporalModel>,
    upsampler: Option<Upsample2D>,
}

impl UpBlock {
    /// `spec.in_channels`: the skip width of the level's last res block (the next-lower
    /// level's output); `prev_channels`: the width coming from the level below.
    pub fn new(
        vb: &VarBuilder,
        spec: &LevelSpec,
        prev_channels: usize,
        add_upsample: bool,
    ) -> Result<Self> {
        let cross = match spec.block_type {
            "CrossAttnUpBlockSpatioTemporal" => true,
            "UpBlockSpatioTemporal" => false,
            other => return Err(unsupported("up", other)),
        };
        let out = spec.out_channels;
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for i in 0..spec.layers {
            let skip = if i + 1 == spec.layers {
                spec.in_channels
            } else {
                out
            };
            let from_below = if i == 0 { prev_channels } else { out };
            resnets.push(SpatioTemporalResBlock::new(
                &vb.pp("resnets").pp(i),
                from_below + skip,
                out,
                Some(spec.temb_channels),
                ResBlockOptions::unet(1e-6),
            )?);
            if cross {
                attentions.push(transformer(vb, i, out, spec)?);
            }
        }
        let upsampler = add_upsample
            .then(|| Upsample2D::new(&vb.pp("upsamplers").pp(0), out))
            .transpose()?;
        Ok(UpBlock {
            resnets,
            attentions,
            upsampler,
        })
    }

    /// Skip connections this block consumes, from the end of the list.
    pub fn skip_count(&self) -> usize {
        self.resnets.len()
    }

    /// `skips`: this block's [`skip_count`](Self::skip_count) connections, in the order the
    /// down path produced them (they are consumed last first).
    pub fn forward(
        &self,
        x: &Tensor,
        skips: Vec<Tensor>,
        temb: &Tensor,
        frames: usize,
        ctx: &Context,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, (resnet, skip)) in self.resnets.iter().zip(skips.iter().rev()).enumerate() {
            x = resnet.forward(&Tensor::cat(&[&x, skip], 1)?, Some(temb), frames)?;
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(&x, frames, ctx)?;
            }
        }
        match &self.upsampler {
            Some(up) => up.forward(&x),
            None => Ok(x),
        }
    }
}
