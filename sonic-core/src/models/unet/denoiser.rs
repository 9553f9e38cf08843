//! Sonic's window denoiser: the UNet on the three guidance branches as one batch, with the
//! window's conditioning cut from per-frame tensors by the same frame indices as its latents.

use super::{AudioTokens, UNetConditioning, UNetSpatioTemporalConditionModel};
use crate::sampling::{scale_model_input, sigma_to_timestep, v_to_denoised, MultiCondGuidance};
use crate::schedule::WindowDenoiser;
use crate::{Error, Result, Tensor};

/// What one video is conditioned on, for every frame.
#[derive(Clone, Debug)]
pub struct SonicConditioning {
    /// CLIP image embedding of the reference, `[1, cross_attention_dim]`.
    pub image_embeds: Tensor,
    /// The reference's VAE latent mean, unscaled, `[1, 4, h, w]`.
    pub image_latent: Tensor,
    /// Audio tokens per frame `[frames, tokens, cross_attention_dim]`.
    pub audio_tokens: Tensor,
    /// The tokens of silence `[tokens, cross_attention_dim]`, for the branches without audio.
    pub uncond_audio_tokens: Tensor,
    /// Head-motion and expression buckets per frame `[frames, 2]`, already scaled.
    pub buckets: Tensor,
    /// `[1, 1, H, W]` face region in [0, 1], or `None` for an unmasked audio attention.
    pub face_mask: Option<Tensor>,
    /// The fps conditioning (12.5 in Sonic, passed as is).
    pub fps: f32,
    /// `ip_audio_scale`.
    pub audio_scale: f32,
}

/// The UNet with guidance over the branches `[no image, silence] · [image, silence] ·
/// [image, audio]`, run as one batch of three videos.
pub struct SonicDenoiser<'a> {
    unet: &'a UNetSpatioTemporalConditionModel,
    cond: SonicConditioning,
    guidance: MultiCondGuidance,
    steps: usize,
}

impl<'a> SonicDenoiser<'a> {
    /// `steps`: the run's number of denoising steps, over which the guidance scales ramp.
    pub fn new(
        unet: &'a UNetSpatioTemporalConditionModel,
        cond: SonicConditioning,
        guidance: MultiCondGuidance,
        steps: usize,
    ) -> Result<Self> {
        if !unet.has_audio_adapters() {
            return Err(Error::invalid(
                "sonic denoiser",
                "the UNet checkpoint has no audio adapters (to_k_ip keys); load Sonic's unet.pth",
            ));
        }
        let frames = cond.audio_tokens.dims().first().copied().unwrap_or(0);
        if cond.buckets.dims() != [frames, 2] {
            return Err(Error::invalid(
                "sonic denoiser",
                format!(
                    "buckets {} do not match {frames} frames of audio tokens",
                    cond.buckets.shape()
                ),
            ));
        }
        Ok(SonicDenoiser {
            unet,
            cond,
            guidance,
            steps,
        })
    }

    /// The window length the UNet was trained on.
    pub fn native_window(&self) -> usize {
        self.unet.config.num_frames
    }

    /// The guided v-prediction for the window `x [f, 4, h, w]` holding `frames`.
    pub fn guided_v(
        &self,
        x: &Tensor,
        sigma: f32,
        step: usize,
        frames: &[usize],
    ) -> Result<Tensor> {
        let c = &self.cond;
        let f = frames.len();
        let d = x.dims();
        if d.len() != 4 || d[0] != f {
            return Err(Error::invalid(
                "sonic denoiser",
                format!("window {} does not hold {f} frames [f, c, h, w]", x.shape()),
            ));
        }
        let x_in = x.mul_scalar(scale_model_input(sigma))?;
        let latent = c.image_latent.index_select(0, &vec![0; f])?;
        let with_image = Tensor::cat(&[&x_in, &latent], 1)?;
        let without_image = Tensor::cat(&[&x_in, &latent.mul_scalar(0.0)?], 1)?;
        let mut sample_dims = vec![3, f];
        sample_dims.extend_from_slice(&with_image.dims()[1..]);
        let sample =
            Tensor::cat(&[&without_image, &with_image, &with_image], 0)?.reshape(sample_dims)?;

        let embeds = c.image_embeds.unsqueeze(0)?.index_select(0, &vec![0; f])?;
        let image_tokens = Tensor::cat(&[&embeds.mul_scalar(0.0)?, &embeds, &embeds], 0)?;
        let silence = c
            .uncond_audio_tokens
            .unsqueeze(0)?
            .index_select(0, &vec![0; f])?;
        let audio = c.audio_tokens.index_select(0, frames)?;
        let audio_tokens = Tensor::cat(&[&silence, &silence, &audio], 0)?;

        let buckets = c
            .buckets
            .index_select(0, frames)?
            .mean(&[0], false)?
            .to_vec()?;
        let ids = [c.fps, buckets[0], buckets[1]];
        let added_time_ids = Tensor::from_vec(ids.repeat(3), [3, 3], x.device())?;

        let cond = UNetConditioning {
            image_tokens,
            audio: Some(AudioTokens {
                tokens: audio_tokens,
                face_mask: c.face_mask.clone(),
                scale: c.audio_scale,
            }),
            added_time_ids,
        };
        let t = sigma_to_timestep(sigma);
        let v = self.unet.forward(&sample, &[t; 3], &cond)?;
        self.guidance
            .combine(&v, step, self.steps)?
            .reshape(x.dims().to_vec())
    }
}

impl WindowDenoiser for SonicDenoiser<'_> {
    fn denoise_window(
        &mut self,
        x: &Tensor,
        sigma: f32,
        step: usize,
        frames: &[usize],
    ) -> Result<Tensor> {
        v_to_denoised(x, &self.guided_v(x, sigma, step, frames)?, sigma)
    }
}
