//! diffusers' `TemporalDecoder`: latents → frames, with spatio-temporal res blocks and a final
//! 3×1×1 convolution across frames. Time mixing spans the frames of one call (one chunk).

use super::attention::SpatialSelfAttention;
use super::VaeConfig;
use crate::models::unet::blocks::Upsample2D;
use crate::models::unet::resnet::{dims4, ResBlockOptions, SpatioTemporalResBlock};
use crate::nn::{Conv, GroupNorm};
use crate::weights::VarBuilder;
use crate::{Error, Result, Tensor};

/// The decoder's res blocks: spatial eps 1e-6, temporal eps 1e-5, and the blender's roles
/// swapped (`switch_spatial_to_temporal_mix`).
const RES_BLOCK: ResBlockOptions = ResBlockOptions {
    eps: 1e-6,
    temporal_eps: 1e-5,
    switch_spatial_to_temporal: true,
};

fn res_block(
    vb: &VarBuilder,
    i: usize,
    in_ch: usize,
    out_ch: usize,
) -> Result<SpatioTemporalResBlock> {
    SpatioTemporalResBlock::new(&vb.pp("resnets").pp(i), in_ch, out_ch, None, RES_BLOCK)
}

/// `MidBlockTemporalDecoder`: res block, then (attention, res block) pairs. diffusers builds
/// one attention and zips it with the res blocks after the first, so with one layer per
/// block the attention is never run.
#[derive(Clone, Debug)]
struct MidBlock {
    resnets: Vec<SpatioTemporalResBlock>,
    attention: SpatialSelfAttention,
}

#[derive(Clone, Debug)]
struct UpBlock {
    resnets: Vec<SpatioTemporalResBlock>,
    upsampler: Option<Upsample2D>,
}

#[derive(Clone, Debug)]
pub struct TemporalDecoder {
    conv_in: Conv,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv,
    time_conv_out: Conv,
    out_channels: usize,
}

impl TemporalDecoder {
    /// `vb`: the VAE's root (the keys under `decoder.` are read).
    pub fn new(config: &VaeConfig, vb: &VarBuilder) -> Result<Self> {
        let boc = config.levels()?;
        let dec = vb.pp("decoder");
        let top = boc[boc.len() - 1];
        let mid = dec.pp("mid_block");
        let mid_block = MidBlock {
            resnets: (0..config.layers_per_block)
                .map(|i| res_block(&mid, i, top, top))
                .collect::<Result<_>>()?,
            attention: SpatialSelfAttention::new(&mid.pp("attentions").pp(0), top, top, 1e-6)?,
        };
        let mut up_blocks = Vec::with_capacity(boc.len());
        let mut prev = top;
        for (i, &out) in boc.iter().rev().enumerate() {
            let vb = dec.pp("up_blocks").pp(i);
            let resnets = (0..=config.layers_per_block)
                .map(|j| res_block(&vb, j, if j == 0 { prev } else { out }, out))
                .collect::<Result<_>>()?;
            let upsampler = (i + 1 < boc.len())
                .then(|| Upsample2D::new(&vb.pp("upsamplers").pp(0), out))
                .transpose()?;
            up_blocks.push(UpBlock { resnets, upsampler });
            prev = out;
        }
        let oc = config.out_channels;
        Ok(TemporalDecoder {
            conv_in: Conv::new(
                &dec.pp("conv_in"),
                config.latent_channels,
                top,
                &[3, 3],
                1,
                &[1, 1],
                true,
            )?,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNorm::new(&dec.pp("conv_norm_out"), 32, boc[0], 1e-6)?,
            conv_out: Conv::new(&dec.pp("conv_out"), boc[0], oc, &[3, 3], 1, &[1, 1], true)?,
            time_conv_out: Conv::new(
                &dec.pp("time_conv_out"),
                oc,
                oc,
                &[3, 1, 1],
                1,
                &[1, 0, 0],
                true,
            )?,
            out_channels: oc,
        })
    }

    /// `z [b·frames, latent, h, w]` (videos of `frames` frames, unscaled latents) →
    /// `[b·frames, out_channels, H, W]`; `trace` receives the mid block's output.
    pub fn decode_traced(
        &self,
        z: &Tensor,
        frames: usize,
        trace: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Tensor> {
        let n = z.dims().first().copied().unwrap_or(0);
        if frames == 0 || n % frames != 0 || z.rank() != 4 {
            return Err(Error::invalid(
                "vae decode",
                format!("latents {} are not videos of {frames} frames", z.shape()),
            ));
        }
        // Latents come in f32 whatever the weights' precision; frames go back out in it.
        let mut x = self
            .conv_in
            .forward(&z.to_dtype(self.conv_in.weight.dtype())?)?;
        let (first, rest) = self.mid_block.resnets.split_first().ok_or_else(|| {
            Error::invalid(
                "vae decode",
                "the mid block has no res blocks (layers_per_block 0)",
            )
        })?;
        x = first.forward(&x, None, frames)?;
        if let Some(resnet) = rest.first() {
            x = self.mid_block.attention.forward(&x)?;
            x = resnet.forward(&x, None, frames)?;
        }
        trace("decoder.mid_block", &x);
        for block in &self.up_blocks {
            for resnet in &block.resnets {
                x = resnet.forward(&x, None, frames)?;
            }
            if let Some(up) = &block.upsampler {
                x = up.forward(&x)?;
            }
        }
        let x = self
            .conv_out
            .forward(&self.conv_norm_out.forward_silu(&x)?)?;
        let [bf, c, h, w] = dims4(&x)?;
        let b = bf / frames;
        self.time_conv_out
            .forward(&x.reshape([b, frames, c, h, w])?.permute(&[0, 2, 1, 3, 4])?)?
            .permute(&[0, 2, 1, 3, 4])?
            .reshape([bf, self.out_channels, h, w])?
            .to_dtype(z.dtype())
    }

    pub fn decode(&self, z: &Tensor, frames: usize) -> Result<Tensor> {
        self.decode_traced(z, frames, &mut |_, _| {})
    }
}
