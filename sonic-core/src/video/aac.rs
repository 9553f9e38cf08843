//! AAC-LC encoding with FDK AAC, producing raw access units for an MP4 track.
//!
//! The encoder delays its output by a fixed number of samples (its "priming"). The frames keep
//! that delay, and the MP4 edit list skips it, so the track plays exactly the input samples.
//! FDK AAC's Rust binding cannot signal end of input, so the tail is flushed by feeding
//! silence until every input sample has come out in some frame.

use std::path::Path;

use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};

use super::AudioTrack;
use crate::{Error, Result};

/// Samples per AAC-LC frame.
pub(super) const FRAME_LEN: usize = 1024;

/// What the MP4 track needs to describe the encoded audio.
#[derive(Clone, Debug)]
pub(super) struct AacInfo {
    /// The AudioSpecificConfig for the `esds` box.
    pub config: Vec<u8>,
    /// Priming samples at the start of the first frame.
    pub delay: u32,
    pub bitrate: u32,
    pub max_frame_bytes: u32,
}

/// Mono bitrate: 4 bits per input sample, capped at 96 kbit/s: ample for speech and singing,
/// and within what FDK accepts at every rate the sink takes.
fn bitrate(sample_rate: u32) -> u32 {
    (sample_rate * 4).min(96_000)
}

/// Encodes the whole track, handing each AAC frame to `sink` as it is produced. Encoder
/// failures are reported against `path`, the output being written.
pub(super) fn encode(
    audio: &AudioTrack,
    path: &Path,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<AacInfo> {
    let codec_error = |msg: String| Error::Encode {
        path: path.to_owned(),
        codec: "AAC",
        msg,
    };
    let bitrate = bitrate(audio.sample_rate);
    let encoder = Encoder::new(EncoderParams {
        bit_rate: BitRate::Cbr(bitrate),
        sample_rate: audio.sample_rate,
        transport: Transport::Raw,
        channels: ChannelMode::Mono,
        audio_object_type: AudioObjectType::Mpeg4LowComplexity,
    })
    .map_err(|e| codec_error(e.to_string()))?;
    let info = encoder.info().map_err(|e| codec_error(e.to_string()))?;
    let config = info.confBuf[..(info.confSize as usize).min(info.confBuf.len())].to_vec();
    let delay = info.nDelay;
    let mut out = vec![0u8; (info.maxOutBufBytes as usize).max(8192)];

    let needed = audio.samples.len() as u64 + u64::from(delay);
    let mut frames = 0u64;
    let mut max_frame_bytes = 0usize;
    // Real samples, then silence until the last real sample is inside an emitted frame; the
    // bound only guards against an encoder that never emits.
    let max_silence = delay as usize / FRAME_LEN + 4;
    let silence = [0.0f32; FRAME_LEN];
    let chunks = audio
        .samples
        .chunks(FRAME_LEN)
        .chain(std::iter::repeat_n(&silence[..], max_silence));
    let mut pcm = [0i16; FRAME_LEN];
    for chunk in chunks {
        if frames * FRAME_LEN as u64 >= needed {
            break;
        }
        for (p, &s) in pcm.iter_mut().zip(chunk) {
            *p = to_i16(s);
        }
        let mut rest = &pcm[..chunk.len()];
        while !rest.is_empty() {
            let step = encoder
                .encode(rest, &mut out)
                .map_err(|e| codec_error(e.to_string()))?;
            if step.output_size > 0 {
                sink(&out[..step.output_size])?;
                frames += 1;
                max_frame_bytes = max_frame_bytes.max(step.output_size);
            }
            if step.input_consumed == 0 && step.output_size == 0 {
                return Err(codec_error("the encoder accepted no input".into()));
            }
            rest = &rest[step.input_consumed.min(rest.len())..];
        }
    }
    if frames * (FRAME_LEN as u64) < needed {
        return Err(codec_error(format!(
            "the encoder emitted {frames} frames for {} samples",
            audio.samples.len()
        )));
    }
    Ok(AacInfo {
        config,
        delay,
        bitrate,
        max_frame_bytes: max_frame_bytes as u32,
    })
}

/// Clips to [-1, 1]; NaN becomes silence.
fn to_i16(sample: f32) -> i16 {
    if sample.is_nan() {
        0
    } else {
        (sample.clamp(-1.0, 1.0) * 32767.0).round() as i16
    }
}

#[cfg(test)]
mod tests {
    use fdk_aac::dec::{Decoder, Transport as DecTransport};

    use super::*;

    fn sine(sample_rate: u32, seconds: f64, hz: f64) -> AudioTrack {
        let n = (f64::from(sample_rate) * seconds) as usize;
        let samples = (0..n)
            .map(|i| {
                (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(sample_rate)).sin())
                    as f32
            })
            .collect();
        AudioTrack {
            samples,
            sample_rate,
        }
    }

    #[test]
    fn every_accepted_rate_encodes() {
        for rate in crate::video::spec::AAC_SAMPLE_RATES {
            let mut frames = 0;
            let info = encode(&sine(rate, 0.1, 440.0), Path::new("t.mp4"), |_| {
                frames += 1;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{rate} Hz: {e}"));
            assert!(frames > 0 && info.delay > 0, "{rate} Hz");
        }
    }

    #[test]
    fn clipping_and_nan() {
        assert_eq!(to_i16(2.0), 32767);
        assert_eq!(to_i16(-2.0), -32767);
        assert_eq!(to_i16(f32::NAN), 0);
        assert_eq!(to_i16(0.5), 16384);
    }

    /// The frames decode (with FDK's own decoder) back to the input. That decoder adds output
    /// delay of its own, so the best alignment past the priming is searched for here; the
    /// exact priming, as an edit list applies it, is checked against ffmpeg in
    /// `tests/video_mp4.rs`.
    #[test]
    fn frames_decode_back_to_the_input() {
        for rate in [16_000, 44_100] {
            let audio = sine(rate, 0.5, 440.0);
            let mut frames: Vec<Vec<u8>> = Vec::new();
            let info = encode(&audio, Path::new("test.mp4"), |f| {
                frames.push(f.to_vec());
                Ok(())
            })
            .unwrap();
            let (n, delay) = (audio.samples.len(), info.delay as usize);
            assert!(frames.len() * FRAME_LEN >= n + delay);
            assert!(frames.len() * FRAME_LEN < n + delay + FRAME_LEN);
            // AAC-LC, mono: object type 2 in the top five bits, one channel.
            assert_eq!(info.config[0] >> 3, 2);
            assert_eq!((info.config[1] >> 3) & 0xf, 1);

            let mut decoder = Decoder::new(DecTransport::Raw);
            decoder.config_raw(&info.config).unwrap();
            let mut decoded = Vec::new();
            let mut pcm = vec![0i16; 8 * FRAME_LEN];
            for frame in &frames {
                decoder.fill(frame).unwrap();
                decoder.decode_frame(&mut pcm).unwrap();
                decoded.extend_from_slice(&pcm[..decoder.decoded_frame_size()]);
            }
            // Compare the first half of the input, which every alignment still covers.
            let reference: Vec<f64> = audio.samples[..n / 2]
                .iter()
                .map(|&s| f64::from(s) * 32767.0)
                .collect();
            let signal: f64 = reference.iter().map(|s| s * s).sum();
            let noise = (delay..delay + 2 * FRAME_LEN)
                .map(|offset| {
                    reference
                        .iter()
                        .zip(&decoded[offset..])
                        .map(|(s, &d)| (f64::from(d) - s).powi(2))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min);
            let snr = 10.0 * (signal / noise).log10();
            assert!(snr > 20.0, "{rate} Hz: SNR {snr:.1} dB");
        }
    }
}
