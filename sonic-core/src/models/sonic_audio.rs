//! Sonic's audio conditioning: per video frame (12.5 fps), a 0.2 s window of all Whisper
//! hidden states becomes cross-attention tokens, and a 1 s window of the last hidden state
//! plus the image embedding becomes two motion buckets.

use std::path::Path;
use std::sync::Arc;

use super::audio2bucket::{Audio2Bucket, Audio2BucketConfig};
use super::audio_proj::{AudioProjConfig, AudioProjModel};
use crate::weights::{VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Tensor};

/// Whisper frames (20 ms) per video frame (80 ms).
const WHISPER_FRAMES_PER_VIDEO_FRAME: usize = 4;
/// 16 kHz samples per 40 ms unit; two units make one video frame.
const SAMPLES_PER_UNIT: usize = 640;
/// Zero frames before the token window's frames (it spans [4i − 4, 4i + 6)).
const TOKEN_LEAD: usize = 4;
/// Zero frames before the bucket window's frames (it spans [4i − 24, 4i + 26)).
const BUCKET_LEAD: usize = 24;
/// Frames conditioned per batch: bounds the window buffers whatever the audio length.
const FRAMES_PER_BATCH: usize = 128;

/// Per-frame conditioning of a whole audio track.
#[derive(Clone, Debug)]
pub struct AudioConditioning {
    /// `[frames, context_tokens, dim]`.
    pub tokens: Tensor,
    /// `[context_tokens, dim]`: audio2token of silence-free zeros, the same for every frame.
    pub uncond_tokens: Tensor,
    /// `[frames, 2]`: head-motion and expression buckets, already ×16 + 16 and scaled.
    pub buckets: Tensor,
}

impl AudioConditioning {
    pub fn frames(&self) -> usize {
        self.tokens.dims()[0]
    }
}

/// Turns encoder hidden states into per-frame tokens and buckets.
pub trait AudioConditioner: Send + Sync {
    /// `hidden_states`: every layer's output `[t, channels]` at 50 frames per second, for
    /// audio of `samples` 16 kHz samples; `image_embeds [1, clip]`.
    fn condition(
        &self,
        hidden_states: &[Tensor],
        samples: usize,
        image_embeds: &Tensor,
        dynamic_scale: f32,
    ) -> Result<AudioConditioning>;
}

#[derive(Clone, Debug)]
pub struct SonicAudioConditioner {
    pub proj: AudioProjModel,
    pub bucket: Audio2Bucket,
}

impl SonicAudioConditioner {
    pub fn new(proj: AudioProjModel, bucket: Audio2Bucket) -> Result<Self> {
        if proj.config.channels != bucket.config.channels || bucket.config.blocks != 1 {
            return Err(Error::invalid(
                "audio conditioning",
                format!(
                    "audio2token expects {} channels, audio2bucket {} in {} blocks",
                    proj.config.channels, bucket.config.channels, bucket.config.blocks
                ),
            ));
        }
        Ok(SonicAudioConditioner { proj, bucket })
    }

    /// Loads `audio2token.pth` and `audio2bucket.pth` as the reference ships them (or
    /// safetensors conversions); the reference's sizes are the configs' defaults.
    pub fn load(
        audio2token: &Path,
        audio2bucket: &Path,
        configs: (AudioProjConfig, Audio2BucketConfig),
        device: Device,
    ) -> Result<Self> {
        let vb = |p: &Path| -> Result<VarBuilder> {
            Ok(VarBuilder::new(
                Arc::new(WeightStore::open(&[p])?),
                DType::F32,
                device,
            ))
        };
        let proj = AudioProjModel::new(configs.0, &vb(audio2token)?)?;
        let bucket = Audio2Bucket::new(configs.1, &vb(audio2bucket)?)?;
        SonicAudioConditioner::new(proj, bucket)
    }
}

/// Rows `[start, start + len)` of `rows` (each `width` values), zeros outside `0..rows.len()/width`.
fn padded_rows(rows: &[f32], width: usize, start: isize, len: usize, out: &mut Vec<f32>) {
    let count = (rows.len() / width) as isize;
    for r in start..start + len as isize {
        if (0..count).contains(&r) {
            out.extend_from_slice(&rows[r as usize * width..(r as usize + 1) * width]);
        } else {
            out.extend(std::iter::repeat_n(0.0, width));
        }
    }
}

impl AudioConditioner for SonicAudioConditioner {
    fn condition(
        &self,
        hidden: &[Tensor],
        samples: usize,
        image_embeds: &Tensor,
        dynamic_scale: f32,
    ) -> Result<AudioConditioning> {
        let (pc, bc) = (&self.proj.config, &self.bucket.config);
        if hidden.len() != pc.blocks {
            return Err(Error::invalid(
                "audio conditioning",
                format!(
                    "{} hidden states, audio2token needs {}",
                    hidden.len(),
                    pc.blocks
                ),
            ));
        }
        let frames = crate::audio::video_frames(samples);
        if frames == 0 {
            return Err(Error::invalid(
                "audio conditioning",
                format!("{samples} samples are too short for one video frame (need 1280)"),
            ));
        }
        // The reference truncates the features to 2 Whisper frames per 40 ms unit, which
        // keeps one unit more than the video frames use when the unit count is odd.
        let used = (samples / SAMPLES_PER_UNIT) * 2;
        let c = pc.channels;
        let mut layers = Vec::with_capacity(hidden.len());
        for h in hidden {
            let rows = h.dims().iter().rev().nth(1).copied().unwrap_or(0);
            if h.dims().last() != Some(&c) || rows < used {
                return Err(Error::invalid(
                    "audio conditioning",
                    format!(
                        "hidden state {} does not hold {used} frames of {c} channels",
                        h.shape()
                    ),
                ));
            }
            layers.push(h.to_vec()?);
        }
        // All layers interleaved per Whisper frame: [t, blocks, channels], truncated to the audio.
        let mut stacked = Vec::with_capacity(used * pc.blocks * c);
        for t in 0..used {
            for layer in &layers {
                stacked.extend_from_slice(&layer[t * c..(t + 1) * c]);
            }
        }
        let last = &layers[layers.len() - 1][..used * c];
        let device = image_embeds.device();
        let mut tokens = Vec::with_capacity(frames.div_ceil(FRAMES_PER_BATCH));
        let mut buckets = Vec::with_capacity(tokens.capacity());
        for first in (0..frames).step_by(FRAMES_PER_BATCH) {
            let n = FRAMES_PER_BATCH.min(frames - first);
            let (mut tw, mut bw) = (Vec::new(), Vec::new());
            for i in first..first + n {
                let at = (i * WHISPER_FRAMES_PER_VIDEO_FRAME) as isize;
                padded_rows(
                    &stacked,
                    pc.blocks * c,
                    at - TOKEN_LEAD as isize,
                    pc.seq_len,
                    &mut tw,
                );
                padded_rows(last, c, at - BUCKET_LEAD as isize, bc.seq_len, &mut bw);
            }
            let tw = Tensor::from_vec(tw, [n, pc.seq_len, pc.blocks, c], device)?;
            let bw = Tensor::from_vec(bw, [n, bc.seq_len, 1, c], device)?;
            tokens.push(self.proj.forward(&tw)?);
            buckets.push(
                self.bucket
                    .forward(&bw, image_embeds)?
                    .affine(16.0 * dynamic_scale, 16.0 * dynamic_scale)?,
            );
        }
        let silence = Tensor::zeros([1, pc.seq_len, pc.blocks, c], device)?;
        let uncond_tokens = self.proj.forward(&silence)?.squeeze(0)?;
        Ok(AudioConditioning {
            tokens: Tensor::cat(&tokens.iter().collect::<Vec<_>>(), 0)?,
            uncond_tokens,
            buckets: Tensor::cat(&buckets.iter().collect::<Vec<_>>(), 0)?,
        })
    }
}

/// Fixture runner: `model.sonic-audio-conditioning`.
pub fn verify_fixture(
    fx: &crate::verify::Fixture,
    device: Device,
) -> Result<std::collections::BTreeMap<String, Tensor>> {
    let (conditioner, hidden, image, samples, scale) = fixture_inputs(fx, device)?;
    let c = conditioner.condition(&hidden, samples, &image, scale)?;
    Ok([
        ("tokens".to_string(), c.tokens),
        ("uncond_tokens".to_string(), c.uncond_tokens),
        ("buckets".to_string(), c.buckets),
    ]
    .into())
}

type FixtureInputs = (SonicAudioConditioner, Vec<Tensor>, Tensor, usize, f32);

fn fixture_inputs(fx: &crate::verify::Fixture, device: Device) -> Result<FixtureInputs> {
    let proj_cfg: AudioProjConfig = fx.param("audio2token")?;
    let bucket_cfg: Audio2BucketConfig = fx.param("audio2bucket")?;
    let vb = fx.weights(device)?;
    let conditioner = SonicAudioConditioner::new(
        AudioProjModel::new(proj_cfg.clone(), &vb.pp("audio2token"))?,
        Audio2Bucket::new(bucket_cfg, &vb.pp("audio2bucket"))?,
    )?;
    let hidden = (0..proj_cfg.blocks)
        .map(|k| fx.tensor(&format!("hidden_{k}"), device))
        .collect::<Result<Vec<_>>>()?;
    Ok((
        conditioner,
        hidden,
        fx.tensor("image_embeds", device)?,
        fx.param("samples")?,
        fx.param("dynamic_scale")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{errors, Fixture};

    fn fixture() -> Fixture {
        Fixture::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sonic_audio"))
            .unwrap()
    }

    #[test]
    fn reference_pth_files_load_and_match() {
        let fx = fixture();
        let (_, hidden, image, samples, scale) = fixture_inputs(&fx, Device::Cpu).unwrap();
        let configs = (
            fx.param("audio2token").unwrap(),
            fx.param("audio2bucket").unwrap(),
        );
        let from_pth = SonicAudioConditioner::load(
            &fx.dir.join("audio2token.pth"),
            &fx.dir.join("audio2bucket.pth"),
            configs,
            Device::Cpu,
        )
        .unwrap();
        let c = from_pth.condition(&hidden, samples, &image, scale).unwrap();
        let (rel, _) = errors(&c.tokens, &fx.tensor("tokens", Device::Cpu).unwrap()).unwrap();
        assert!(rel < 1e-5, "{rel}");
        let (rel, _) = errors(&c.buckets, &fx.tensor("buckets", Device::Cpu).unwrap()).unwrap();
        assert!(rel < 1e-5, "{rel}");
        assert_eq!(c.frames(), crate::audio::video_frames(samples));
    }

    #[test]
    fn short_or_mismatched_inputs_are_errors() {
        let fx = fixture();
        let (conditioner, hidden, image, _, _) = fixture_inputs(&fx, Device::Cpu).unwrap();
        assert!(conditioner
            .condition(&hidden, 1000, &image, 1.0)
            .unwrap_err()
            .to_string()
            .contains("too short"));
        assert!(conditioner
            .condition(&hidden[..4], 57_000, &image, 1.0)
            .is_err());
        assert!(conditioner
            .condition(&hidden, 16_000 * 31, &image, 1.0)
            .unwrap_err()
            .to_string()
            .contains("does not hold"));
        let wrong = Tensor::zeros([1, 5], Device::Cpu).unwrap();
        assert!(conditioner.condition(&hidden, 57_000, &wrong, 1.0).is_err());
    }
}
