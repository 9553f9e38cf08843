//! A sink that keeps nothing, for timing everything upstream of the encoders.

use super::{check_frame, Fps, FrameSink, SinkSummary};
use crate::Result;

/// Checks each frame's size and counts it.
#[derive(Clone, Debug)]
pub struct NullSink {
    width: u32,
    height: u32,
    fps: Fps,
    frames: u64,
}

impl NullSink {
    pub fn new(width: u32, height: u32, fps: Fps) -> NullSink {
        NullSink {
            width,
            height,
            fps,
            frames: 0,
        }
    }
}

impl FrameSink for NullSink {
    fn write_frame(&mut self, rgb: &[u8]) -> Result<()> {
        check_frame(rgb, self.width, self.height)?;
        self.frames += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<SinkSummary> {
        Ok(SinkSummary {
            path: None,
            frames: self.frames,
            bytes: 0,
            duration_s: self.fps.duration_s(self.frames),
            has_audio: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames_and_checks_their_size() {
        let mut sink: Box<dyn FrameSink> = Box::new(NullSink::new(4, 2, Fps::new(25, 2).unwrap()));
        sink.write_frame(&[0; 24]).unwrap();
        let err = sink.write_frame(&[0; 23]).unwrap_err().to_string();
        assert!(err.contains("24 bytes, got 23"), "{err}");
        sink.write_frame(&[0; 24]).unwrap();
        let summary = sink.finish().unwrap();
        assert_eq!(summary.frames, 2);
        assert_eq!(summary.path, None);
        assert!((summary.duration_s - 0.16).abs() < 1e-12);
    }
}
