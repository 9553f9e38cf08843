//! Which container a file holds, decided by its first bytes: names lie (a `.wav` that is really
//! an MP3, an Ogg renamed to `.mp3`), and the error should say what the file really is.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::AudioErrorKind;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioFormat {
    Wav,
    Mp3,
    Flac,
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AudioFormat::Wav => "WAV",
            AudioFormat::Mp3 => "MP3",
            AudioFormat::Flac => "FLAC",
        })
    }
}

/// What the first bytes of a file say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Supported(AudioFormat),
    Other(&'static str),
    Unknown,
}

/// Enough for every signature below and for an MP3's Xing/Info/VBRI tag in its first frame.
const HEAD_LEN: usize = 64;

/// Classifies a file by its leading bytes.
pub(crate) fn sniff(head: &[u8]) -> Sniffed {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"RIFF") && at(8, b"WAVE") {
        Sniffed::Supported(AudioFormat::Wav)
    } else if at(0, b"fLaC") {
        Sniffed::Supported(AudioFormat::Flac)
    } else if is_mpeg_layer3_header(head) {
        Sniffed::Supported(AudioFormat::Mp3)
    } else if at(0, b"OggS") {
        Sniffed::Other("Ogg")
    } else if at(4, b"ftyp") {
        Sniffed::Other("MP4/M4A")
    } else if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        Sniffed::Other("AIFF")
    } else if at(0, b"RF64") || at(0, b"BW64") {
        Sniffed::Other("RF64 (64-bit WAV)")
    } else if at(0, b"RIFF") {
        Sniffed::Other("RIFF without WAVE data")
    } else if at(0, b"caff") {
        Sniffed::Other("CAF")
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Sniffed::Other("Matroska/WebM")
    } else if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xF6 == 0xF0 {
        Sniffed::Other("AAC (ADTS)")
    } else {
        Sniffed::Unknown
    }
}

/// An MPEG audio frame header announcing Layer III with valid version, bitrate and rate fields.
fn is_mpeg_layer3_header(head: &[u8]) -> bool {
    let [b0, b1, b2, ..] = *head else {
        return false;
    };
    let version = (b1 >> 3) & 0b11;
    let layer = (b1 >> 1) & 0b11;
    let bitrate = b2 >> 4;
    let rate = (b2 >> 2) & 0b11;
    b0 == 0xFF
        && b1 & 0xE0 == 0xE0
        && version != 0b01
        && layer == 0b01
        && bitrate != 0xF
        && rate != 0b11
}

/// The size of an ID3v2 tag at the start of `head`, header and footer included.
fn id3v2_len(head: &[u8]) -> Option<u64> {
    if head.len() < 10 || &head[..3] != b"ID3" {
        return None;
    }
    // The size is "synchsafe": four bytes of seven bits each.
    let size = head[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7F));
    let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// Where a file's audio stream starts and what it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Detected {
    pub format: AudioFormat,
    /// Byte offset of the stream, past any leading ID3v2 tags.
    pub start: u64,
    /// An MP3 whose first frame carries a Xing/Info/VBRI tag: its frame count is exact rather
    /// than estimated from the file size, so a shortfall means truncation.
    pub mp3_length_tagged: bool,
}

/// Reads the first bytes of `file` and decides its format; leaves the file position anywhere.
pub(crate) fn detect(path: &Path, file: &mut File) -> Result<Detected> {
    let mut start = 0u64;
    let mut after_id3 = false;
    loop {
        let head = read_head(path, file, start)?;
        if head.is_empty() {
            return Err(Error::audio(
                path,
                if start == 0 {
                    AudioErrorKind::Empty
                } else {
                    AudioErrorKind::NoSamples
                },
            ));
        }
        if let Some(len) = id3v2_len(&head) {
            start += len;
            after_id3 = true;
            continue;
        }
        let format = match sniff(&head) {
            Sniffed::Supported(format) => format,
            Sniffed::Other(found) => {
                return Err(Error::audio(
                    path,
                    AudioErrorKind::UnsupportedFormat { found },
                ))
            }
            // MPEG streams have no file header: an ID3 tag or an `.mp3` name followed by
            // padding or junk before the first frame is still an MP3 that the decoder resyncs.
            Sniffed::Unknown if after_id3 || has_extension(path, "mp3") => AudioFormat::Mp3,
            Sniffed::Unknown => return Err(Error::audio(path, AudioErrorKind::Unrecognised)),
        };
        let mp3_length_tagged = format == AudioFormat::Mp3
            && head
                .windows(4)
                .any(|w| w == b"Xing" || w == b"Info" || w == b"VBRI");
        return Ok(Detected {
            format,
            start,
            mp3_length_tagged,
        });
    }
}

fn read_head(path: &Path, file: &mut File, offset: u64) -> Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    file.by_ref()
        .take(HEAD_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    Ok(head)
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}
