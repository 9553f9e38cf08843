//! The VAE encoder (diffusers' `Encoder` with `DownEncoderBlock2D`s and `UNetMidBlock2D`)
//! and `quant_conv`: an image → the mean of its latent distribution.

use super::attention::SpatialSelfAttention;
use super::VaeConfig;
use crate::models::unet::blocks::Downsample2D;
use crate::models::unet::resnet::ResnetBlock2D;
use crate::nn::{Conv, GroupNorm};
use crate::weights::VarBuilder;
use crate::{Error, Result, Tensor};

const EPS: f32 = 1e-6;

#[derive(Clone, Debug)]
struct DownEncoderBlock {
    resnets: Vec<ResnetBlock2D>,
    downsampler: Option<Downsample2D>,
}

/// Res block, self-attention, res block.
#[derive(Clone, Debug)]
struct MidBlock2D {
    resnets: [ResnetBlock2D; 2],
    attention: SpatialSelfAttention,
}

/// `encoder.*` and `quant_conv` of `AutoencoderKLTemporalDecoder`.
#[derive(Clone, Debug)]
pub struct VaeEncoder {
    conv_in: Conv,
    down_blocks: Vec<DownEncoderBlock>,
    mid_block: MidBlock2D,
    conv_norm_out: GroupNorm,
    conv_out: Conv,
    quant_conv: Conv,
    latent_channels: usize,
}

impl VaeEncoder {
    /// `vb`: the VAE's root (the keys under `encoder.` and `quant_conv.` are read).
    pub fn new(config: &VaeConfig, vb: &VarBuilder) -> Result<Self> {
        let boc = config.levels()?;
        let enc = vb.pp("encoder");
        let mut down_blocks = Vec::with_capacity(boc.len());
        for (i, (&out, block_type)) in boc.iter().zip(&config.down_block_types).enumerate() {
            if block_type != "DownEncoderBlock2D" {
                return Err(Error::invalid(
                    "vae config",
                    format!("unsupported down block type `{block_type}`"),
                ));
            }
            let vb = enc.pp("down_blocks").pp(i);
            let resnets = (0..config.layers_per_block)
                .map(|j| {
                    let in_ch = if j == 0 {
                        boc[i.saturating_sub(1)]
                    } else {
                        out
                    };
                    ResnetBlock2D::new(&vb.pp("resnets").pp(j), in_ch, out, None, EPS)
                })
                .collect::<Result<_>>()?;
            // diffusers' encoder pads bottom/right and convolves without padding.
            let downsampler = (i + 1 < boc.len())
                .then(|| Downsample2D::new(&vb.pp("downsamplers").pp(0), out, 0))
                .transpose()?;
            down_blocks.push(DownEncoderBlock {
                resnets,
                downsampler,
            });
        }
        let top = boc[boc.len() - 1];
        let mid = enc.pp("mid_block");
        let mid_resnet =
            |j: usize| ResnetBlock2D::new(&mid.pp("resnets").pp(j), top, top, None, EPS);
        let latent2 = 2 * config.latent_channels;
        Ok(VaeEncoder {
            conv_in: Conv::new(
                &enc.pp("conv_in"),
                config.in_channels,
                boc[0],
                &[3, 3],
                1,
                &[1, 1],
                true,
            )?,
            down_blocks,
            mid_block: MidBlock2D {
                resnets: [mid_resnet(0)?, mid_resnet(1)?],
                attention: SpatialSelfAttention::new(&mid.pp("attentions").pp(0), top, top, EPS)?,
            },
            conv_norm_out: GroupNorm::new(&enc.pp("conv_norm_out"), 32, top, EPS)?,
            conv_out: Conv::new(&enc.pp("conv_out"), top, latent2, &[3, 3], 1, &[1, 1], true)?,
            quant_conv: Conv::new(
                &vb.pp("quant_conv"),
                latent2,
                latent2,
                &[1, 1],
                1,
                &[0, 0],
                true,
            )?,
            latent_channels: config.latent_channels,
        })
    }

    /// `image [n, in_channels, H, W]` in [−1, 1] → `latent_dist.mean [n, latent, h, w]`,
    /// unscaled; `trace` receives each block's output under diffusers' module name.
    pub fn encode_latent_mean_traced(
        &self,
        image: &Tensor,
        trace: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Tensor> {
        // The image comes in f32 whatever the weights' precision; the latent goes back in it.
        let mut x = self
            .conv_in
            .forward(&image.to_dtype(self.conv_in.weight.dtype())?)?;
        for (i, block) in self.down_blocks.iter().enumerate() {
            for resnet in &block.resnets {
                x = resnet.forward(&x, None)?;
            }
            if let Some(down) = &block.downsampler {
                x = down.forward(&x)?;
            }
            trace(&format!("encoder.down_blocks.{i}"), &x);
        }
        let [first, second] = &self.mid_block.resnets;
        x = first.forward(&x, None)?;
        x = self.mid_block.attention.forward(&x)?;
        x = second.forward(&x, None)?;
        trace("encoder.mid_block", &x);
        let moments = self.quant_conv.forward(
            &self
                .conv_out
                .forward(&self.conv_norm_out.forward_silu(&x)?)?,
        )?;
        moments
            .narrow(1, 0, self.latent_channels)?
            .to_dtype(image.dtype())
    }

    pub fn encode_latent_mean(&self, image: &Tensor) -> Result<Tensor> {
        self.encode_latent_mean_traced(image, &mut |_, _| {})
    }
}
