//! What can be wrong with an audio file; [`crate::Error::Audio`] pairs it with the file's path.

use super::AudioFormat;

#[derive(Debug, thiserror::Error)]
pub enum AudioErrorKind {
    #[error("empty file")]
    Empty,

    #[error("no audio samples")]
    NoSamples,

    #[error("unsupported audio format {found} (supported: WAV, MP3, FLAC)")]
    UnsupportedFormat { found: &'static str },

    #[error("unrecognised content, not a WAV, MP3 or FLAC file")]
    Unrecognised,

    #[error("unsupported {format} encoding: {detail}")]
    UnsupportedEncoding { format: AudioFormat, detail: String },

    #[error("corrupt or truncated {format} data ({detail})")]
    Corrupt { format: AudioFormat, detail: String },

    #[error(
        "truncated {format} data: the file ends after {found} {}",
        match expected {
            Some(n) => format!("of the {n} frames its header announces"),
            None => "frames, inside the audio data".to_string(),
        }
    )]
    Truncated {
        format: AudioFormat,
        expected: Option<u64>,
        found: u64,
    },
}
