//! The audio input path: WAV, MP3 and FLAC decoded to 16 kHz mono f32 (what the reference's
//! `librosa.load(path, sr=16000)` gives Whisper), and Whisper's log-mel features.
//!
//! Decoding streams: packets are downmixed and resampled as they arrive, so memory holds the
//! 16 kHz result, the mono soundtrack the output video carries, and small buffers, never the
//! whole file with all its channels.

mod decode;
mod error;
mod format;
mod mel;
mod resample;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

pub use error::AudioErrorKind;
pub use format::AudioFormat;
pub(crate) use mel::verify_log_mel;
pub use mel::{
    log_mel_chunk, whisper_log_mel, CHUNK_FRAMES, CHUNK_SAMPLES, HOP_LENGTH, N_FFT, N_MELS,
};

use crate::video::AudioTrack;
use crate::Result;

/// The rate Whisper and the rest of the pipeline work at.
pub const SAMPLE_RATE: u32 = 16_000;

/// A decoded file: mono samples at 16 kHz, and what the source was.
#[derive(Clone, Debug)]
pub struct Audio16k {
    pub samples: Vec<f32>,
    /// The mono downmix at the source rate, kept for the output video when the source is
    /// not at 16 kHz and its rate is one AAC takes; otherwise the 16 kHz samples serve.
    pub soundtrack: Option<AudioTrack>,
    pub format: AudioFormat,
    pub source_sample_rate: u32,
    pub source_channels: usize,
    /// Frames (samples per channel) decoded at the source rate.
    pub source_frames: u64,
}

impl Audio16k {
    /// The audio the output video should carry: the source-rate soundtrack when there is
    /// one (taken out of `self`), else a copy of the 16 kHz samples.
    pub fn take_soundtrack(&mut self) -> AudioTrack {
        self.soundtrack.take().unwrap_or_else(|| AudioTrack {
            samples: self.samples.clone(),
            sample_rate: SAMPLE_RATE,
        })
    }

    pub fn source_duration(&self) -> Duration {
        Duration::from_secs_f64(self.source_frames as f64 / f64::from(self.source_sample_rate))
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(SAMPLE_RATE))
    }
}

/// Decodes a WAV (8/16/24/32-bit integer or 32/64-bit float PCM), MP3 or FLAC file, averages
/// its channels and resamples it to 16 kHz. The format is read from the file's content; a bad
/// file gives [`crate::Error::Audio`] naming the file and what is wrong with it.
pub fn load_audio(path: &Path) -> Result<Audio16k> {
    let mut source = decode::MonoSource::open(path)?;
    let rate = source.sample_rate();
    let mut to_16k = resample::To16k::new(rate)?;
    let mut soundtrack = (rate != SAMPLE_RATE && crate::video::AAC_SAMPLE_RATES.contains(&rate))
        .then(|| {
            // Sized from the header up front, so growing never holds two copies at once; a
            // header announcing more than can be reserved just leaves the vector to grow.
            let mut kept = Vec::new();
            let announced = source
                .expected_frames()
                .and_then(|n| usize::try_from(n).ok());
            let _ = kept.try_reserve_exact(announced.unwrap_or(0));
            kept
        });
    while let Some(chunk) = source.next_chunk()? {
        to_16k.push(chunk)?;
        if let Some(kept) = &mut soundtrack {
            kept.extend_from_slice(chunk);
        }
    }
    let (format, source_sample_rate, source_channels, source_frames) = (
        source.format(),
        source.sample_rate(),
        source.channels(),
        source.frames(),
    );
    source.finish()?;
    Ok(Audio16k {
        samples: to_16k.finish()?,
        soundtrack: soundtrack.map(|samples| AudioTrack {
            samples,
            sample_rate: rate,
        }),
        format,
        source_sample_rate,
        source_channels,
        source_frames,
    })
}

/// Video frames the reference generates for `samples` of 16 kHz audio: one per 80 ms
/// (12.5 fps), counted as whole 40 ms units halved. Unlike the reference there is no
/// 400-second cap.
pub fn video_frames(samples: usize) -> usize {
    (samples / 640) / 2
}
