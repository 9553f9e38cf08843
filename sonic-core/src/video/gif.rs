//! The GIF sink: an endlessly looping animation, each frame quantised to its own 256-colour
//! palette and appended to the temporary file as it arrives.
//!
//! This drives the `gif` crate (the encoder behind `image`'s GIF support) directly, because its
//! `into_inner` writes the trailer and returns the writer, so a failing final write is an
//! error here rather than lost in a destructor.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use ::gif::{Encoder, Frame, Repeat};
use tempfile::TempPath;

use super::atomic::{Kind, Target};
use super::{check_frame, commit_file_output, Fps, FrameSink, Progress, SinkSummary, VideoSpec};
use crate::{Error, Result};

/// The palette is learnt (NeuQuant) from every `speed`-th pixel: 1 is slowest, 30 fastest.
/// 10 is the `gif` crate's suggestion, but it starves small frames of samples, so use the
/// largest speed up to 10 that still learns from about 20 000 pixels.
fn quantize_speed(width: u32, height: u32) -> i32 {
    let pixels = u64::from(width) * u64::from(height);
    (pixels / 20_000).clamp(1, 10) as i32
}

pub(super) struct GifSink {
    target: Target,
    temp: TempPath,
    encoder: Encoder<BufWriter<File>>,
    spec: VideoSpec,
    progress: Progress,
}

/// Display time of frame `index` in GIF's centiseconds. Each frame ends at its exact time
/// rounded, so a rate that is not a whole number of centiseconds (30 fps) alternates delays
/// and does not drift; 12.5 fps gives 8 every frame.
pub(super) fn delay_cs(fps: Fps, index: u64) -> u16 {
    let end = |k: u64| {
        (u128::from(k) * 100 * u128::from(fps.den) * 2 + u128::from(fps.num))
            / (2 * u128::from(fps.num))
    };
    u16::try_from(end(index + 1) - end(index)).unwrap_or(u16::MAX)
}

impl GifSink {
    pub fn create(path: &Path, spec: VideoSpec, overwrite: bool) -> Result<GifSink> {
        let target = Target::check(path, overwrite, Kind::File)?;
        let (file, temp) = target.temp_file()?;
        // Sizes are checked against GIF's 16-bit limit by the spec.
        let (w, h) = (spec.width as u16, spec.height as u16);
        let encoder = Encoder::new(BufWriter::new(file), w, h, &[])
            .and_then(|mut e| e.set_repeat(Repeat::Infinite).map(|()| e))
            .map_err(|e| gif_error(path, e))?;
        Ok(GifSink {
            target,
            temp,
            encoder,
            spec,
            progress: Progress::default(),
        })
    }
}

fn gif_error(path: &Path, e: ::gif::EncodingError) -> Error {
    match e {
        ::gif::EncodingError::Io(e) => Error::io(path, e),
        e => Error::Encode {
            path: path.to_owned(),
            codec: "GIF",
            msg: e.to_string(),
        },
    }
}

impl FrameSink for GifSink {
    fn write_frame(&mut self, rgb: &[u8]) -> Result<()> {
        check_frame(rgb, self.spec.width, self.spec.height)?;
        self.progress.begin(&self.target.path)?;
        let (w, h) = (self.spec.width as u16, self.spec.height as u16);
        let speed = quantize_speed(self.spec.width, self.spec.height);
        let mut frame = Frame::from_rgb_speed(w, h, rgb, speed);
        frame.delay = delay_cs(self.spec.fps, self.progress.frames);
        let result = self
            .encoder
            .write_frame(&frame)
            .map_err(|e| gif_error(&self.target.path, e));
        self.progress.end(result)
    }

    fn finish(self: Box<Self>) -> Result<SinkSummary> {
        let sink = *self;
        let path = &sink.target.path;
        let frames = sink.progress.finished(path)?;
        // The `gif` encoder writes the trailer here; the buffer's flush follows.
        let file = sink
            .encoder
            .into_inner()
            .map_err(|e| gif_error(path, e))?
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?;
        let duration_s = sink.spec.fps.duration_s(frames);
        commit_file_output(&sink.target, file, sink.temp, frames, duration_s, false)
    }
}

#[cfg(test)]
mod tests {
    use image::codecs::gif::GifDecoder;
    use image::AnimationDecoder;

    use super::*;
    use crate::video::{test_frame, write_test_output, OutputFormat};

    #[test]
    fn delays_follow_the_frame_rate_without_drift() {
        let fps = |n, d| Fps::new(n, d).unwrap();
        assert!((0..50).all(|k| delay_cs(fps(25, 2), k) == 8));
        assert!((0..50).all(|k| delay_cs(fps(25, 1), k) == 4));
        let thirty: Vec<u16> = (0..30).map(|k| delay_cs(fps(30, 1), k)).collect();
        assert_eq!(thirty.iter().map(|&d| u32::from(d)).sum::<u32>(), 100);
        assert!(thirty.iter().all(|&d| d == 3 || d == 4));
    }

    #[test]
    fn small_frames_quantize_from_every_pixel() {
        assert_eq!(quantize_speed(33, 17), 1);
        assert_eq!(quantize_speed(256, 256), 3);
        assert_eq!(quantize_speed(512, 512), 10);
        assert_eq!(quantize_speed(4000, 4000), 10);
    }

    #[test]
    fn frames_read_back_with_their_delays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anim.gif");
        let (w, h) = (97, 49);
        let summary = write_test_output(OutputFormat::Gif, &path, w, h, 5);
        assert_eq!(summary.frames, 5);
        assert!((summary.duration_s - 0.4).abs() < 1e-12);
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());

        let decoder = GifDecoder::new(std::io::BufReader::new(File::open(&path).unwrap())).unwrap();
        let frames = decoder.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 5);
        for frame in &frames {
            assert_eq!(frame.buffer().dimensions(), (w, h));
            assert_eq!(frame.delay().numer_denom_ms(), (80, 1));
        }
        // Palette quantisation is lossy, but the picture must be the one written.
        let first = frames[0].buffer();
        let written = test_frame(w, h, 0);
        let mean_error = first
            .pixels()
            .zip(written.chunks(3))
            .map(|(p, q)| {
                (0..3)
                    .map(|c| (i32::from(p[c]) - i32::from(q[c])).abs())
                    .sum::<i32>()
            })
            .sum::<i32>() as f64
            / (w * h * 3) as f64;
        assert!(mean_error < 6.0, "mean error {mean_error}");
        // The file loops forever: NETSCAPE2.0 extension with a loop count of 0.
        let bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(11).position(|w| w == b"NETSCAPE2.0").unwrap();
        assert_eq!(bytes[at + 11..at + 15], [3, 1, 0, 0]);
    }
}
