//! What a sink is asked to write: format, frame size, frame rate and audio.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::{Error, Result};

/// The container a sink writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// H.264 video and AAC audio in an MP4 file.
    Mp4,
    /// A directory of numbered PNG files.
    Png,
    /// An endlessly looping animated GIF.
    Gif,
}

impl OutputFormat {
    /// The format a file name asks for: `.mp4` or `.gif` (any case). A PNG sequence is a
    /// directory, which has no telling extension, so it must be asked for by name.
    pub fn from_path(path: &Path) -> Result<OutputFormat> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext.to_ascii_lowercase().as_str() {
            "mp4" => Ok(OutputFormat::Mp4),
            "gif" => Ok(OutputFormat::Gif),
            "" => Err(Error::file(
                path,
                "has no extension to tell the output format from; name it .mp4 or .gif, \
                 or ask for the png format to write a frame directory",
            )),
            _ => Err(Error::file(
                path,
                format!(
                    "unknown output extension `.{ext}`; use .mp4 or .gif, \
                     or ask for the png format to write a frame directory"
                ),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Mp4 => "mp4",
            OutputFormat::Png => "png",
            OutputFormat::Gif => "gif",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<OutputFormat> {
        match s.to_ascii_lowercase().as_str() {
            "mp4" => Ok(OutputFormat::Mp4),
            "png" => Ok(OutputFormat::Png),
            "gif" => Ok(OutputFormat::Gif),
            _ => Err(Error::invalid(
                "output format",
                format!("unknown format `{s}`; expected mp4, png or gif"),
            )),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A frame rate as an exact fraction, so frame timestamps do not drift: 12.5 fps is 25/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fps {
    pub num: u32,
    pub den: u32,
}

/// Above this a "frame rate" is almost certainly a unit mistake (e.g. a sample rate).
const MAX_FPS: f64 = 1000.0;

impl Fps {
    /// `num / den` frames per second, reduced; both must be positive and the rate at most 1000.
    pub fn new(num: u32, den: u32) -> Result<Fps> {
        if num == 0 || den == 0 || f64::from(num) / f64::from(den) > MAX_FPS {
            return Err(Error::invalid(
                "fps",
                format!("{num}/{den} is not a frame rate in (0, 1000]"),
            ));
        }
        let g = gcd(num, den);
        Ok(Fps {
            num: num / g,
            den: den / g,
        })
    }

    /// The fraction `fps` stands for: an NTSC rate (29.97 → 30000/1001, also 23.976, 59.94,
    /// …), else the smallest-denominator fraction (up to 1000) equal to it at f32 precision
    /// (12.5 → 25/2), else the nearest thousandth.
    pub fn from_f32(fps: f32) -> Result<Fps> {
        let f = f64::from(fps);
        if !f.is_finite() || f <= 0.0 || f > MAX_FPS {
            return Err(Error::invalid(
                "fps",
                format!("{fps} is not a frame rate in (0, 1000]"),
            ));
        }
        // NTSC rates are n/1.001 for n a multiple of 6 (24, 30, 48, 60, …); written as decimals
        // they are rounded, hence the loose match.
        let ntsc = (f * 1.001).round();
        if ntsc >= 6.0 && ntsc % 6.0 == 0.0 && (ntsc / 1.001 - f).abs() <= f * 1e-5 {
            return Fps::new(ntsc as u32 * 1000, 1001);
        }
        // f32 resolves about 1.2e-7 relative; a match within twice that is the number meant.
        let tolerance = f * 2.5e-7;
        let exact = (1..=1000u32).find(|&den| {
            let num = (f * f64::from(den)).round();
            num >= 1.0 && (num / f64::from(den) - f).abs() <= tolerance
        });
        let den = exact.unwrap_or(1000);
        let num = ((f * f64::from(den)).round() as u32).max(1);
        Fps::new(num, den)
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// Seconds that `frames` frames last.
    pub fn duration_s(self, frames: u64) -> f64 {
        frames as f64 * f64::from(self.den) / f64::from(self.num)
    }
}

/// Accepts `25/2`, `12.5` or `25`.
impl FromStr for Fps {
    type Err = Error;

    fn from_str(s: &str) -> Result<Fps> {
        let bad = || Error::invalid("fps", format!("cannot read `{s}` as a frame rate"));
        match s.split_once('/') {
            Some((num, den)) => Fps::new(
                num.trim().parse().map_err(|_| bad())?,
                den.trim().parse().map_err(|_| bad())?,
            ),
            None => Fps::from_f32(s.trim().parse().map_err(|_| bad())?),
        }
    }
}

impl fmt::Display for Fps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Mono audio to put beside the video: f32 samples in [-1, 1] (louder samples are clipped).
#[derive(Clone, Debug, PartialEq)]
pub struct AudioTrack {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// The AAC rates the MP4 sink takes: AAC's standard rates up to 48 kHz (the MP4 sample entry
/// stores the rate in 16 bits), which covers every common rate.
pub(crate) const AAC_SAMPLE_RATES: [u32; 9] = [
    48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
];

impl AudioTrack {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// The frames a sink will receive, and the audio to go with them.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoSpec {
    pub width: u32,
    pub height: u32,
    pub fps: Fps,
    /// Written as an AAC track by the MP4 sink and ignored by the others. An empty track is
    /// the same as none.
    pub audio: Option<AudioTrack>,
}

/// OpenH264's limit (level 5.2); GIF's is 65535 and PNG's larger still.
const H264_MAX_SIDE: u32 = 3840;
const H264_MAX_SHORT_SIDE: u32 = 2160;

impl VideoSpec {
    /// Checks the spec against what `format` can hold.
    pub(crate) fn validate(&self, format: OutputFormat) -> Result<()> {
        let (w, h) = (self.width, self.height);
        let invalid = |msg: String| Err(Error::invalid("video spec", msg));
        // `Fps` fields are public, so a hand-built one may not have gone through `Fps::new`.
        Fps::new(self.fps.num, self.fps.den)?;
        if w == 0 || h == 0 {
            return invalid(format!("frame size {w}x{h} is empty"));
        }
        match format {
            OutputFormat::Mp4 => {
                if w % 2 != 0 || h % 2 != 0 {
                    return invalid(format!(
                        "H.264 with 4:2:0 chroma needs an even width and height, got {w}x{h}; \
                         pad or crop the frames by one pixel"
                    ));
                }
                if w.max(h) > H264_MAX_SIDE || w.min(h) > H264_MAX_SHORT_SIDE {
                    return invalid(format!(
                        "frame size {w}x{h} is larger than the H.264 encoder's 3840x2160"
                    ));
                }
                if let Some(audio) = &self.audio {
                    if !AAC_SAMPLE_RATES.contains(&audio.sample_rate) {
                        return invalid(format!(
                            "AAC cannot carry audio at {} Hz; resample it to one of {:?}",
                            audio.sample_rate, AAC_SAMPLE_RATES
                        ));
                    }
                }
            }
            OutputFormat::Gif if w > u32::from(u16::MAX) || h > u32::from(u16::MAX) => {
                return invalid(format!("frame size {w}x{h} is larger than GIF's 65535"));
            }
            OutputFormat::Gif | OutputFormat::Png => {}
        }
        Ok(())
    }

    /// The audio to encode, if any: an empty track counts as none.
    pub(crate) fn audio(&self) -> Option<&AudioTrack> {
        self.audio.as_ref().filter(|a| !a.samples.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_from_f32_picks_small_exact_fractions() {
        let f = |x: f32| Fps::from_f32(x).unwrap();
        assert_eq!(f(12.5), Fps { num: 25, den: 2 });
        assert_eq!(f(25.0), Fps { num: 25, den: 1 });
        assert_eq!(
            f(29.97),
            Fps {
                num: 30000,
                den: 1001
            }
        );
        assert_eq!(
            f(23.976),
            Fps {
                num: 24000,
                den: 1001
            }
        );
        assert_eq!(f(30.0), Fps { num: 30, den: 1 });
        assert_eq!(f(24.0), Fps { num: 24, den: 1 });
        assert_eq!(f(0.1), Fps { num: 1, den: 10 });
        assert_eq!(
            f(30000.0 / 1001.0),
            Fps {
                num: 30000,
                den: 1001
            }
        );
        assert_eq!(f(1.0 / 3.0), Fps { num: 1, den: 3 });
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY, 5000.0] {
            assert!(Fps::from_f32(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fps_parses_fractions_and_decimals() {
        assert_eq!("25/2".parse::<Fps>().unwrap(), Fps { num: 25, den: 2 });
        assert_eq!("50/4".parse::<Fps>().unwrap(), Fps { num: 25, den: 2 });
        assert_eq!("12.5".parse::<Fps>().unwrap(), Fps { num: 25, den: 2 });
        assert_eq!(Fps { num: 25, den: 2 }.to_string(), "25/2");
        assert!("0/1".parse::<Fps>().is_err());
        assert!("25/0".parse::<Fps>().is_err());
        assert!("fast".parse::<Fps>().is_err());
        assert!((Fps::new(25, 2).unwrap().duration_s(25) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn format_from_name_and_path() {
        assert_eq!("MP4".parse::<OutputFormat>().unwrap(), OutputFormat::Mp4);
        assert_eq!("png".parse::<OutputFormat>().unwrap(), OutputFormat::Png);
        assert!("avi".parse::<OutputFormat>().is_err());
        let p = |s: &str| OutputFormat::from_path(Path::new(s));
        assert_eq!(p("out/a.mp4").unwrap(), OutputFormat::Mp4);
        assert_eq!(p("a.GIF").unwrap(), OutputFormat::Gif);
        let err = p("a.mkv").unwrap_err().to_string();
        assert!(err.contains(".mkv"), "{err}");
        let err = p("frames").unwrap_err().to_string();
        assert!(err.contains("no extension"), "{err}");
    }

    use crate::video::test_spec as spec;

    #[test]
    fn mp4_needs_even_sizes_and_an_aac_rate() {
        let err = spec(129, 64).validate(OutputFormat::Mp4).unwrap_err();
        assert!(err.to_string().contains("even width and height"), "{err}");
        spec(129, 64).validate(OutputFormat::Png).unwrap();
        spec(129, 64).validate(OutputFormat::Gif).unwrap();
        assert!(spec(0, 64).validate(OutputFormat::Png).is_err());
        assert!(spec(70_000, 64).validate(OutputFormat::Gif).is_err());
        assert!(spec(4096, 4096).validate(OutputFormat::Mp4).is_err());

        let mut with_audio = spec(128, 64);
        with_audio.audio = Some(AudioTrack {
            samples: vec![0.0; 10],
            sample_rate: 44_000,
        });
        let err = with_audio.validate(OutputFormat::Mp4).unwrap_err();
        assert!(err.to_string().contains("44000 Hz"), "{err}");

        let mut bad_fps = spec(128, 64);
        bad_fps.fps = Fps { num: 0, den: 1 };
        assert!(bad_fps.validate(OutputFormat::Png).is_err());
    }
}
