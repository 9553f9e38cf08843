//! Residual blocks: diffusers' `ResnetBlock2D`, `TemporalResnetBlock` (time-only 3×1×1
//! convolutions), `SpatioTemporalResBlock` (one of each, mixed) and `AlphaBlender`.

use crate::nn::{Conv, GroupNorm, Linear};
use crate::weights::VarBuilder;
use crate::{Error, Result, Tensor};

const GROUPS: usize = 32;

/// `ResnetBlock2D` with the "default" time-embedding norm: GroupNorm·SiLU·conv, plus the
/// projected time embedding, GroupNorm·SiLU·conv, plus a 1×1 shortcut when channels change.
#[derive(Clone, Debug)]
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv,
    conv_shortcut: Option<Conv>,
}

impl ResnetBlock2D {
    /// `temb`: the time-embedding width, `None` for blocks without one (the VAE).
    pub fn new(
        vb: &VarBuilder,
        in_ch: usize,
        out_ch: usize,
        temb: Option<usize>,
        eps: f32,
    ) -> Result<Self> {
        let conv3 =
            |name: &str, i: usize| Conv::new(&vb.pp(name), i, out_ch, &[3, 3], 1, &[1, 1], true);
        Ok(ResnetBlock2D {
            norm1: GroupNorm::new(&vb.pp("norm1"), GROUPS, in_ch, eps)?,
            conv1: conv3("conv1", in_ch)?,
            time_emb_proj: temb
                .map(|t| Linear::new(&vb.pp("time_emb_proj"), t, out_ch))
                .transpose()?,
            norm2: GroupNorm::new(&vb.pp("norm2"), GROUPS, out_ch, eps)?,
            conv2: conv3("conv2", out_ch)?,
            conv_shortcut: (in_ch != out_ch)
                .then(|| {
                    Conv::new(
                        &vb.pp("conv_shortcut"),
                        in_ch,
                        out_ch,
                        &[1, 1],
                        1,
                        &[0, 0],
                        true,
                    )
                })
                .transpose()?,
        })
    }

    /// `x [n, c, h, w]`, `temb [n, t]`.
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward_silu(x)?)?;
        let t = match (&self.time_emb_proj, temb) {
            (Some(proj), Some(temb)) => {
                let t = proj.forward(&temb.silu()?)?;
                let (n, c) = (t.dims()[0], t.dims()[1]);
                Some(t.reshape([n, c, 1, 1])?)
            }
            _ => None,
        };
        let h = self
            .conv2
            .forward(&self.norm2.forward_add_silu(&h, t.as_ref())?)?;
        let skip = match &self.conv_shortcut {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        skip.add(&h)
    }
}

/// `TemporalResnetBlock`: the residual block with 3×1×1 convolutions, mixing frames only.
#[derive(Clone, Debug)]
pub struct TemporalResnetBlock {
    norm1: GroupNorm,
    conv1: Conv,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv,
}

impl TemporalResnetBlock {
    /// Always `channels → channels` inside a spatio-temporal block.
    pub fn new(vb: &VarBuilder, channels: usize, temb: Option<usize>, eps: f32) -> Result<Self> {
        let conv = |name: &str| {
            Conv::new(
                &vb.pp(name),
                channels,
                channels,
                &[3, 1, 1],
                1,
                &[1, 0, 0],
                true,
            )
        };
        Ok(TemporalResnetBlock {
            norm1: GroupNorm::new(&vb.pp("norm1"), GROUPS, channels, eps)?,
            conv1: conv("conv1")?,
            time_emb_proj: temb
                .map(|t| Linear::new(&vb.pp("time_emb_proj"), t, channels))
                .transpose()?,
            norm2: GroupNorm::new(&vb.pp("norm2"), GROUPS, channels, eps)?,
            conv2: conv("conv2")?,
        })
    }

    /// `x [b, c, f, h, w]`, `temb [b, f, t]`.
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward_silu(x)?)?;
        let t = match (&self.time_emb_proj, temb) {
            (Some(proj), Some(temb)) => {
                let t = proj.forward(&temb.silu()?)?.permute(&[0, 2, 1])?;
                let (b, c, f) = (t.dims()[0], t.dims()[1], t.dims()[2]);
                Some(t.reshape([b, c, f, 1, 1])?)
            }
            _ => None,
        };
        let h = self
            .conv2
            .forward(&self.norm2.forward_add_silu(&h, t.as_ref())?)?;
        x.add(&h)
    }
}

/// `AlphaBlender`: `α·spatial + (1 − α)·temporal`. The UNet's "learned_with_images" and the
/// VAE's "learned" strategies agree on video input (image_only_indicator is all zeros, the
/// only input SVD and Sonic give): α = sigmoid(mix_factor). The VAE swaps the roles
/// (`switch_spatial_to_temporal_mix`), giving α = 1 − sigmoid(mix_factor).
#[derive(Clone, Copy, Debug)]
pub struct AlphaBlender {
    alpha: f32,
}

impl AlphaBlender {
    pub fn new(vb: &VarBuilder, switch_spatial_to_temporal: bool) -> Result<Self> {
        let mix = vb.get([1], "mix_factor")?.to_scalar()?;
        let alpha = 1.0 / (1.0 + (-mix).exp());
        Ok(AlphaBlender {
            alpha: if switch_spatial_to_temporal {
                1.0 - alpha
            } else {
                alpha
            },
        })
    }

    pub fn blend(&self, spatial: &Tensor, temporal: &Tensor) -> Result<Tensor> {
        spatial
            .mul_scalar(self.alpha)?
            .add(&temporal.mul_scalar(1.0 - self.alpha)?)
    }
}

/// `SpatioTemporalResBlock`: a 2d residual block per frame, then a temporal one across the
/// frames of each video, blended.
#[derive(Clone, Debug)]
pub struct SpatioTemporalResBlock {
    spatial_res_block: ResnetBlock2D,
    temporal_res_block: TemporalResnetBlock,
    time_mixer: AlphaBlender,
}

/// Epsilons and mixing of one use of the block.
#[derive(Clone, Copy, Debug)]
pub struct ResBlockOptions {
    pub eps: f32,
    pub temporal_eps: f32,
    pub switch_spatial_to_temporal: bool,
}

impl ResBlockOptions {
    /// The UNet's blocks: one epsilon, spatial output weighted by α.
    pub fn unet(eps: f32) -> Self {
        ResBlockOptions {
            eps,
            temporal_eps: eps,
            switch_spatial_to_temporal: false,
        }
    }
}

impl SpatioTemporalResBlock {
    pub fn new(
        vb: &VarBuilder,
        in_ch: usize,
        out_ch: usize,
        temb: Option<usize>,
        opts: ResBlockOptions,
    ) -> Result<Self> {
        Ok(SpatioTemporalResBlock {
            spatial_res_block: ResnetBlock2D::new(
                &vb.pp("spatial_res_block"),
                in_ch,
                out_ch,
                temb,
                opts.eps,
            )?,
            temporal_res_block: TemporalResnetBlock::new(
                &vb.pp("temporal_res_block"),
                out_ch,
                temb,
                opts.temporal_eps,
            )?,
            time_mixer: AlphaBlender::new(&vb.pp("time_mixer"), opts.switch_spatial_to_temporal)?,
        })
    }

    /// `x [b·f, c, h, w]` (frames of a video adjacent), `temb [b·f, t]`.
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>, frames: usize) -> Result<Tensor> {
        let spatial = self.spatial_res_block.forward(x, temb)?;
        let [bf, c, h, w] = dims4(&spatial)?;
        let b = bf / frames;
        let channels_first = spatial
            .reshape([b, frames, c, h, w])?
            .permute(&[0, 2, 1, 3, 4])?;
        let temb = temb
            .map(|t| t.reshape([b, frames, usize::MAX]))
            .transpose()?;
        let temporal = self
            .temporal_res_block
            .forward(&channels_first, temb.as_ref())?
            .permute(&[0, 2, 1, 3, 4])?
            .reshape([bf, c, h, w])?;
        self.time_mixer.blend(&spatial, &temporal)
    }
}

/// The four dims of an NCHW tensor.
pub(crate) fn dims4(x: &Tensor) -> Result<[usize; 4]> {
    x.dims().try_into().map_err(|_| {
        Error::invalid(
            "unet",
            format!("expected an [n, c, h, w] tensor, found {}", x.shape()),
        )
    })
}
