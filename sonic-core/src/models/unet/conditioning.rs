//! What the UNet is conditioned on, and what one forward prepares from it once: the
//! temporal layers' per-video context and the face mask at each resolution.

use super::attention::{AudioTerm, CrossContext};
use crate::backend::ResizeMode;
use crate::{DType, Error, Result, Tensor};

/// The conditioning of one call on `batch` videos of `frames` frames each.
#[derive(Clone, Debug)]
pub struct UNetConditioning {
    /// Image tokens of every frame, `[batch·frames, tokens, cross_attention_dim]`: in SVD and
    /// Sonic the CLIP embedding of the reference image repeated per frame (zeros for the
    /// unconditional branch).
    pub image_tokens: Tensor,
    /// Sonic's audio tokens; required by a checkpoint with audio adapters, refused by one
    /// without.
    pub audio: Option<AudioTokens>,
    /// `[batch, n]`, n·addition_time_embed_dim = projection_class_embeddings_input_dim. SVD:
    /// fps − 1, motion bucket, noise augmentation; Sonic: fps, head-motion bucket,
    /// expression bucket.
    pub added_time_ids: Tensor,
}

#[derive(Clone, Debug)]
pub struct AudioTokens {
    /// `[batch·frames, tokens, cross_attention_dim]`.
    pub tokens: Tensor,
    /// `[1, 1, H, W]` in [0, 1] at any resolution of the image's aspect ratio; it weights the
    /// audio attention of the spatial layers, resized bicubically to each level. `None`: 1.
    pub face_mask: Option<Tensor>,
    /// `ip_audio_scale`.
    pub scale: f32,
}

/// Which context the temporal layers attend to, per video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemporalContext {
    /// Stock SVD: the first frame's.
    FirstFrame,
    /// Sonic: the mean over the window's frames.
    FrameMean,
}

/// The conditioning of one forward, ready for every transformer of the UNet.
#[derive(Debug)]
pub struct Context {
    image: Tensor,
    image_per_video: Tensor,
    audio: Option<PreparedAudio>,
}

#[derive(Debug)]
struct PreparedAudio {
    tokens: Tensor,
    tokens_per_video: Tensor,
    /// `((h, w), mask [1, h·w, 1])` for each resolution of the UNet.
    masks: Vec<((usize, usize), Tensor)>,
    scale: f32,
}

impl UNetConditioning {
    /// Stock SVD as diffusers calls it: one context per video, `[batch, tokens, dim]`,
    /// repeated for each of the video's `frames` frames, and no audio.
    pub fn svd(
        encoder_hidden_states: &Tensor,
        frames: usize,
        added_time_ids: Tensor,
    ) -> Result<UNetConditioning> {
        let batch = encoder_hidden_states.dims()[0];
        let per_frame: Vec<usize> = (0..batch)
            .flat_map(|i| std::iter::repeat_n(i, frames))
            .collect();
        Ok(UNetConditioning {
            image_tokens: encoder_hidden_states.index_select(0, &per_frame)?,
            audio: None,
            added_time_ids,
        })
    }

    /// The conditioning in the UNet's working dtype; the added time ids are read on the
    /// host, so they stay as they are.
    pub fn to_dtype(&self, dtype: DType) -> Result<UNetConditioning> {
        Ok(UNetConditioning {
            image_tokens: self.image_tokens.to_dtype(dtype)?,
            audio: self
                .audio
                .as_ref()
                .map(|a| -> Result<AudioTokens> {
                    Ok(AudioTokens {
                        tokens: a.tokens.to_dtype(dtype)?,
                        face_mask: a.face_mask.clone(),
                        scale: a.scale,
                    })
                })
                .transpose()?,
            added_time_ids: self.added_time_ids.clone(),
        })
    }
}

impl Context {
    /// `resolutions`: the (h, w) of every UNet level, where the face mask is needed.
    pub fn new(
        cond: &UNetConditioning,
        batch: usize,
        frames: usize,
        cross_attention_dim: usize,
        temporal: TemporalContext,
        resolutions: &[(usize, usize)],
    ) -> Result<Self> {
        let per_frame = |name: &str, t: &Tensor| -> Result<()> {
            let d = t.dims();
            if d.len() != 3 || d[0] != batch * frames || d[1] == 0 || d[2] != cross_attention_dim {
                return Err(Error::invalid(
                    "unet",
                    format!(
                        "{name} {} is not [{}, tokens, {cross_attention_dim}] ({batch} videos of {frames} frames)",
                        t.shape(),
                        batch * frames
                    ),
                ));
            }
            Ok(())
        };
        per_frame("image tokens", &cond.image_tokens)?;
        let audio = match &cond.audio {
            None => None,
            Some(a) => {
                per_frame("audio tokens", &a.tokens)?;
                let masks = match &a.face_mask {
                    None => Vec::new(),
                    Some(mask) => resized_masks(mask, resolutions, a.tokens.dtype())?,
                };
                Some(PreparedAudio {
                    tokens: a.tokens.clone(),
                    tokens_per_video: per_video(&a.tokens, batch, frames, temporal)?,
                    masks,
                    scale: a.scale,
                })
            }
        };
        Ok(Context {
            image: cond.image_tokens.clone(),
            image_per_video: per_video(&cond.image_tokens, batch, frames, temporal)?,
            audio,
        })
    }

    /// The context of the spatial layers at resolution `h × w`: per frame, masked.
    pub fn spatial(&self, h: usize, w: usize) -> Result<CrossContext<'_>> {
        let audio = match &self.audio {
            None => None,
            Some(a) => {
                let mask = if a.masks.is_empty() {
                    None
                } else {
                    let found = a.masks.iter().find(|(size, _)| *size == (h, w));
                    Some(
                        &found
                            .ok_or_else(|| {
                                Error::invalid("unet", format!("no face mask prepared for {h}x{w}"))
                            })?
                            .1,
                    )
                };
                Some(AudioTerm {
                    tokens: &a.tokens,
                    mask,
                    scale: a.scale,
                })
            }
        };
        Ok(CrossContext {
            image: &self.image,
            audio,
        })
    }

    /// The context of the temporal layers: one entry per video, unmasked.
    pub fn temporal(&self) -> CrossContext<'_> {
        CrossContext {
            image: &self.image_per_video,
            audio: self.audio.as_ref().map(|a| AudioTerm {
                tokens: &a.tokens_per_video,
                mask: None,
                scale: a.scale,
            }),
        }
    }
}

/// `[b·f, l, c]` → `[b, l, c]`.
fn per_video(t: &Tensor, batch: usize, frames: usize, mode: TemporalContext) -> Result<Tensor> {
    let (l, c) = (t.dims()[1], t.dims()[2]);
    let videos = t.reshape([batch, frames, l * c])?;
    let reduced = match mode {
        TemporalContext::FirstFrame => videos.narrow(1, 0, 1)?,
        TemporalContext::FrameMean => videos.mean(&[1], true)?,
    };
    reduced.reshape([batch, l, c])
}

/// The mask resized (PyTorch bicubic, a = −0.75, align_corners false) to every resolution,
/// flattened to broadcast over the rows and channels of an attention output.
/// Resized at the mask's own precision, then cast to `dtype`, the attention output's.
fn resized_masks(
    mask: &Tensor,
    resolutions: &[(usize, usize)],
    dtype: DType,
) -> Result<Vec<((usize, usize), Tensor)>> {
    let d = mask.dims();
    if d.len() != 4 || d[0] != 1 || d[1] != 1 {
        return Err(Error::invalid(
            "unet",
            format!("face mask {} is not [1, 1, H, W]", mask.shape()),
        ));
    }
    resolutions
        .iter()
        .map(|&(h, w)| {
            let m = mask
                .resize2d(h, w, ResizeMode::Bicubic, false)?
                .reshape([1, h * w, 1])?
                .to_dtype(dtype)?;
            Ok(((h, w), m))
        })
        .collect()
}
