//! The PNG sink: one `frame_NNNNNN.png` per frame in a temporary directory beside the target,
//! which replaces the target only once complete.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use tempfile::TempDir;

use super::atomic::{Kind, Target};
use super::{check_frame, FrameSink, Progress, SinkSummary, VideoSpec};
use crate::{Error, Result};

pub(super) struct PngSink {
    target: Target,
    dir: TempDir,
    spec: VideoSpec,
    progress: Progress,
    bytes: u64,
}

/// The file name of frame `index`; six digits keep a directory listing in order up to 11 hours
/// at 25 fps, and longer runs just grow more digits.
pub(super) fn frame_name(index: u64) -> String {
    format!("frame_{index:06}.png")
}

impl PngSink {
    pub fn create(path: &Path, spec: VideoSpec, overwrite: bool) -> Result<PngSink> {
        let target = Target::check(path, overwrite, Kind::FrameDir)?;
        let dir = target.temp_dir()?;
        Ok(PngSink {
            target,
            dir,
            spec,
            progress: Progress::default(),
            bytes: 0,
        })
    }
}

impl FrameSink for PngSink {
    fn write_frame(&mut self, rgb: &[u8]) -> Result<()> {
        let (w, h) = (self.spec.width, self.spec.height);
        check_frame(rgb, w, h)?;
        self.progress.begin(&self.target.path)?;
        let result = self.write_png(rgb);
        self.progress.end(result)
    }

    fn finish(self: Box<Self>) -> Result<SinkSummary> {
        let frames = self.progress.finished(&self.target.path)?;
        self.target.commit_dir(self.dir)?;
        Ok(SinkSummary {
            path: Some(self.target.path.clone()),
            frames,
            bytes: self.bytes,
            duration_s: self.spec.fps.duration_s(frames),
            has_audio: false,
        })
    }
}

impl PngSink {
    fn write_png(&mut self, rgb: &[u8]) -> Result<()> {
        let (w, h) = (self.spec.width, self.spec.height);
        let path = self.dir.path().join(frame_name(self.progress.frames));
        let io_error = |e| Error::io(&self.target.path, e);
        let mut out = BufWriter::new(File::create(&path).map_err(io_error)?);
        PngEncoder::new(&mut out)
            .write_image(rgb, w, h, ExtendedColorType::Rgb8)
            .map_err(|e| Error::Encode {
                path: self.target.path.clone(),
                codec: "PNG",
                msg: e.to_string(),
            })?;
        let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
        self.bytes += file.metadata().map_err(io_error)?.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::tests::listing;
    use crate::video::{test_frame, write_test_output, OutputFormat};

    #[test]
    fn frames_read_back_exactly_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames");
        let (w, h) = (21, 10);
        let summary = write_test_output(OutputFormat::Png, &path, w, h, 3);
        assert_eq!(summary.frames, 3);
        assert_eq!(listing(dir.path()), ["frames"]);
        assert_eq!(
            listing(&path),
            ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
        );
        let on_disk: u64 = (0..3)
            .map(|k| std::fs::metadata(path.join(frame_name(k))).unwrap().len())
            .sum();
        assert_eq!(summary.bytes, on_disk);
        for k in 0..3 {
            let img = image::open(path.join(frame_name(u64::from(k))))
                .unwrap()
                .into_rgb8();
            assert_eq!(img.dimensions(), (w, h));
            assert_eq!(img.into_raw(), test_frame(w, h, k));
        }
    }
}
