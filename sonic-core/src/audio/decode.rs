//! Streaming decode of WAV, MP3 and FLAC to mono f32 at the source rate, one packet at a
//! time, so nothing grows with the file's length.

use std::fs::File;
use std::io::{ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::default::formats::{FlacReader, MpaReader, WavReader};

use super::format::{self, Detected};
use super::{AudioErrorKind, AudioFormat};
use crate::{Error, Result};

const SOURCE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// A file being decoded: the source's facts and the next mono chunk on demand.
pub(crate) struct MonoSource {
    path: PathBuf,
    format: AudioFormat,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    sample_rate: u32,
    channels: usize,
    /// Frames the header announces, when that count is exact rather than an estimate.
    expected_frames: Option<u64>,
    frames: u64,
    interleaved: Vec<f32>,
    mono: Vec<f32>,
}

impl MonoSource {
    pub fn open(path: &Path) -> Result<MonoSource> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let detected = format::detect(path, &mut file)?;
        let fail = |e| classify(path, detected.format, e);

        file.seek(SeekFrom::Start(detected.start))
            .map_err(|e| Error::io(path, e))?;
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let opts = FormatOptions::default();
        let reader: Box<dyn FormatReader> = match detected.format {
            AudioFormat::Wav => Box::new(WavReader::try_new(stream, opts).map_err(fail)?),
            AudioFormat::Mp3 => Box::new(MpaReader::try_new(stream, opts).map_err(fail)?),
            AudioFormat::Flac => Box::new(FlacReader::try_new(stream, opts).map_err(fail)?),
        };
        let track = reader
            .tracks()
            .first()
            .ok_or_else(|| Error::audio(path, corrupt(detected.format, "no audio track")))?;
        let Some(CodecParameters::Audio(params)) = &track.codec_params else {
            return Err(Error::audio(
                path,
                corrupt(detected.format, "no audio track"),
            ));
        };
        let sample_rate = params
            .sample_rate
            .ok_or_else(|| Error::audio(path, corrupt(detected.format, "no sample rate")))?;
        if !SOURCE_RATES.contains(&sample_rate) {
            // A rate sharing no factor with 16 kHz sizes the resampler's FFT by the rate
            // itself, so an absurd header value must not reach it.
            return Err(Error::audio(
                path,
                AudioErrorKind::UnsupportedEncoding {
                    format: detected.format,
                    detail: format!("sample rate {sample_rate} Hz (supported: 1 kHz to 768 kHz)"),
                },
            ));
        }
        let channels = params.channels.as_ref().map_or(0, |c| c.count());
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default().verify(true))
            .map_err(fail)?;
        let expected_frames = match detected {
            Detected {
                format: AudioFormat::Mp3,
                mp3_length_tagged: false,
                ..
            } => None,
            _ => track.num_frames,
        };
        Ok(MonoSource {
            path: path.to_path_buf(),
            format: detected.format,
            track_id: track.id,
            reader,
            decoder,
            sample_rate,
            channels,
            expected_frames,
            frames: 0,
            interleaved: Vec::new(),
            mono: Vec::new(),
        })
    }

    pub fn format(&self) -> AudioFormat {
        self.format
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels in the source; the decoded packets have the final say if the header has none.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames the container's header announces, when it does (WAV, FLAC).
    pub fn expected_frames(&self) -> Option<u64> {
        self.expected_frames
    }

    /// Source frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The next decoded packet, averaged over channels; `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(None),
                Err(DecodeError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Err(self.truncated());
                }
                Err(e) => return Err(classify(&self.path, self.format, e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(e) => return Err(classify(&self.path, self.format, e)),
            };
            let channels = decoded.spec().channels().count();
            if decoded.frames() == 0 || channels == 0 {
                continue;
            }
            decoded.copy_to_vec_interleaved(&mut self.interleaved);
            self.channels = channels;
            self.frames += decoded.frames() as u64;
            downmix(&self.interleaved, channels, &mut self.mono);
            return Ok(Some(&self.mono));
        }
    }

    /// Checks the stream ended where its header said it would and held any audio at all.
    pub fn finish(mut self) -> Result<()> {
        if self.decoder.finalize().verify_ok == Some(false) {
            return Err(Error::audio(
                &self.path,
                corrupt(self.format, "the decoded audio fails the stream's checksum"),
            ));
        }
        if self.expected_frames.is_some_and(|n| self.frames < n) {
            return Err(self.truncated());
        }
        if self.frames == 0 {
            return Err(Error::audio(&self.path, AudioErrorKind::NoSamples));
        }
        Ok(())
    }

    fn truncated(&self) -> Error {
        Error::audio(
            &self.path,
            AudioErrorKind::Truncated {
                format: self.format,
                expected: self.expected_frames,
                found: self.frames,
            },
        )
    }
}

/// The mean of each interleaved frame's channels.
fn downmix(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    if channels == 1 {
        mono.extend_from_slice(interleaved);
    } else {
        let scale = 1.0 / channels as f32;
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
}

fn corrupt(format: AudioFormat, detail: impl Into<String>) -> AudioErrorKind {
    AudioErrorKind::Corrupt {
        format,
        detail: detail.into(),
    }
}

/// Turns a demuxer or decoder error into one that names the file and the problem.
fn classify(path: &Path, format: AudioFormat, e: DecodeError) -> Error {
    let kind = match e {
        DecodeError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => {
            corrupt(format, "the file ends inside its header or first frame")
        }
        DecodeError::IoError(e) => return Error::io(path, e),
        DecodeError::Unsupported(what) => AudioErrorKind::UnsupportedEncoding {
            format,
            detail: what.to_string(),
        },
        DecodeError::DecodeError(what) | DecodeError::LimitError(what) => corrupt(format, what),
        DecodeError::ResetRequired => corrupt(format, "the stream changes its parameters midway"),
        other => corrupt(format, other.to_string()),
    };
    Error::audio(path, kind)
}
