//! The audio and image encoder seams. The pipeline asks these for the numbers it plans with
//! (frame rate, window, widths), so a plugin encoder slots in without knowing Whisper or CLIP.

use serde::Serialize;

use crate::audio::{log_mel_chunk, CHUNK_FRAMES, CHUNK_SAMPLES, N_MELS, SAMPLE_RATE};
use crate::{Error, Result, Tensor};

/// What an [`AudioEncoder`] produces, known before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AudioEncoderInfo {
    /// Rate of the PCM it takes; the pipeline always feeds 16 kHz.
    pub sample_rate: u32,
    /// Output frames per second of audio.
    pub frames_per_second: f32,
    /// How many hidden states [`AudioEncoder::encode`] returns.
    pub layers: usize,
    /// Width of each hidden state.
    pub hidden_size: usize,
}

/// 16 kHz mono PCM to frame-level hidden states: the seam built-in and plugin encoders share
/// (it mirrors `sonic.audio-encoder/1` in the plugin ABI).
pub trait AudioEncoder: Send + Sync {
    fn info(&self) -> AudioEncoderInfo;
    /// Frames [`encode`](Self::encode) returns for `samples` samples.
    fn frames_for(&self, samples: usize) -> usize;
    /// `samples` → `info().layers` tensors `[frames_for(samples), hidden_size]`, on the CPU,
    /// first layer to last.
    fn encode(&self, samples: &[f32]) -> Result<Vec<Tensor>>;
}

/// Log-mel windows to frame-level hidden states: Whisper's interface.
pub trait MelEncoder: Send + Sync {
    /// `mel [b, mel_bins, input_frames]` → every hidden state the encoder exposes, each
    /// `[b, frames, hidden_size]`, first to last.
    fn encode(&self, mel: &Tensor) -> Result<Vec<Tensor>>;
    /// Width of each hidden state.
    fn hidden_size(&self) -> usize;
    /// How many hidden states [`encode`](Self::encode) returns.
    fn layers(&self) -> usize;
    /// Output frames per second of audio.
    fn frames_per_second(&self) -> f32;
    /// Mel bins the encoder expects.
    fn mel_bins(&self) -> usize;
    /// Mel frames per call; longer audio is cut into windows of this length.
    fn input_frames(&self) -> usize;
}

/// A log-mel encoder run on PCM the reference's way: the audio is cut into 30 s chunks, each
/// gets its own log-mel (normalised on its own, the last one zero-padded) and one encoder
/// call, and the hidden states are joined along time. Chunks do not overlap, so there is a
/// seam every 30 s, as in the reference.
pub struct ChunkedMelEncoder<E> {
    mel: E,
}

impl<E: MelEncoder> ChunkedMelEncoder<E> {
    /// Checks that `mel` takes the 80-bin, 30-second windows Whisper's features come in.
    pub fn new(mel: E) -> Result<Self> {
        if mel.mel_bins() != N_MELS || mel.input_frames() != CHUNK_FRAMES {
            return Err(Error::invalid(
                "audio encoder",
                format!(
                    "the encoder takes {}×{} log-mel windows; Whisper features are {N_MELS}×{CHUNK_FRAMES}",
                    mel.mel_bins(),
                    mel.input_frames()
                ),
            ));
        }
        Ok(ChunkedMelEncoder { mel })
    }

    pub fn inner(&self) -> &E {
        &self.mel
    }

    fn frames_per_chunk(&self) -> usize {
        (self.mel.frames_per_second() * CHUNK_SAMPLES as f32 / SAMPLE_RATE as f32).round() as usize
    }
}

impl<E: MelEncoder> AudioEncoder for ChunkedMelEncoder<E> {
    fn info(&self) -> AudioEncoderInfo {
        AudioEncoderInfo {
            sample_rate: SAMPLE_RATE,
            frames_per_second: self.mel.frames_per_second(),
            layers: self.mel.layers(),
            hidden_size: self.mel.hidden_size(),
        }
    }

    fn frames_for(&self, samples: usize) -> usize {
        samples.div_ceil(CHUNK_SAMPLES) * self.frames_per_chunk()
    }

    fn encode(&self, samples: &[f32]) -> Result<Vec<Tensor>> {
        if samples.is_empty() {
            return Err(Error::invalid("audio encoder", "no samples to encode"));
        }
        let (layers, width, per_chunk) = (
            self.mel.layers(),
            self.mel.hidden_size(),
            self.frames_per_chunk(),
        );
        let frames = self.frames_for(samples.len());
        let mut joined = vec![Vec::with_capacity(frames * width); layers];
        for chunk in samples.chunks(CHUNK_SAMPLES) {
            let mel = log_mel_chunk(chunk)?.unsqueeze(0)?;
            let states = self.mel.encode(&mel)?;
            if states.len() != layers {
                return Err(Error::invalid(
                    "audio encoder",
                    format!("{} hidden states, expected {layers}", states.len()),
                ));
            }
            for (out, state) in joined.iter_mut().zip(states) {
                if state.elem_count() != per_chunk * width {
                    return Err(Error::invalid(
                        "audio encoder",
                        format!(
                            "hidden state {} is not {per_chunk} frames of {width}",
                            state.shape()
                        ),
                    ));
                }
                out.extend(state.to_vec()?);
            }
        }
        joined
            .into_iter()
            .map(|data| Tensor::from_vec(data, [frames, width], crate::Device::Cpu))
            .collect()
    }
}

/// A preprocessed image batch to one embedding per image.
pub trait ImageEncoder: Send + Sync {
    /// `pixel_values [b, 3, image_size, image_size]` → `[b, embedding_dim]`.
    fn encode(&self, pixel_values: &Tensor) -> Result<Tensor>;
    fn embedding_dim(&self) -> usize;
    /// Side of the square input the encoder expects.
    fn image_size(&self) -> usize;
}
