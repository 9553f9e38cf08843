//! The MP4 sink: H.264 frames streamed into the temporary file as they arrive, the AAC track
//! encoded after them at `finish`, then the index, then the rename.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use tempfile::TempPath;

use super::aac;
use super::atomic::{Kind, Target};
use super::h264::H264Encoder;
use super::mp4mux::{Edit, Mp4Writer, SampleEntry, TrackId};
use super::{
    check_frame, commit_file_output, no_frames, FrameSink, Progress, SinkSummary, VideoSpec,
};
use crate::{Error, Result};

pub(super) struct Mp4Sink {
    target: Target,
    temp: TempPath,
    mux: Mp4Writer<BufWriter<File>>,
    video: TrackId,
    /// One frame in the video track's timescale.
    frame_ticks: u32,
    encoder: H264Encoder,
    spec: VideoSpec,
    progress: Progress,
}

/// The video track's timescale and frame duration: the frame rate's fraction scaled up to at
/// least 1000 ticks per second, so players that round to the timescale stay accurate.
fn video_timescale(num: u32, den: u32) -> (u32, u32) {
    let k = 1000u32.div_ceil(num).max(1);
    match (num.checked_mul(k), den.checked_mul(k)) {
        (Some(timescale), Some(ticks)) => (timescale, ticks),
        _ => (num, den),
    }
}

impl Mp4Sink {
    pub fn create(path: &Path, spec: VideoSpec, overwrite: bool) -> Result<Mp4Sink> {
        let target = Target::check(path, overwrite, Kind::File)?;
        let encoder = H264Encoder::new(spec.width, spec.height, spec.fps)
            .map_err(|msg| codec_error(path, "H.264", msg))?;
        let (file, temp) = target.temp_file()?;
        let mut mux = Mp4Writer::new(BufWriter::with_capacity(1 << 20, file))
            .map_err(|e| Error::io(path, e))?;
        let (timescale, frame_ticks) = video_timescale(spec.fps.num, spec.fps.den);
        let video = mux.add_track(timescale);
        Ok(Mp4Sink {
            target,
            temp,
            mux,
            video,
            frame_ticks,
            encoder,
            spec,
            progress: Progress::default(),
        })
    }

    fn io_error(&self, e: io::Error) -> Error {
        Error::io(&self.target.path, e)
    }

    fn encode_frame(&mut self, rgb: &[u8]) -> Result<()> {
        let path = &self.target.path;
        match self
            .encoder
            .encode(rgb)
            .map_err(|msg| codec_error(path, "H.264", msg))?
        {
            Some(sample) => self
                .mux
                .write_sample(self.video, &sample.data, self.frame_ticks, sample.sync)
                .map_err(|e| self.io_error(e)),
            // A dropped frame shows the previous picture for longer, keeping later frames
            // on time.
            None if self.mux.extend_last(self.video, self.frame_ticks) => Ok(()),
            None => Err(codec_error(
                path,
                "H.264",
                "the encoder produced no picture for the first frame".into(),
            )),
        }
    }
}

fn codec_error(path: &Path, codec: &'static str, msg: String) -> Error {
    Error::Encode {
        path: path.to_owned(),
        codec,
        msg,
    }
}

impl FrameSink for Mp4Sink {
    fn write_frame(&mut self, rgb: &[u8]) -> Result<()> {
        check_frame(rgb, self.spec.width, self.spec.height)?;
        self.progress.begin(&self.target.path)?;
        let result = self.encode_frame(rgb);
        self.progress.end(result)
    }

    fn finish(self: Box<Self>) -> Result<SinkSummary> {
        let Mp4Sink {
            target,
            temp,
            mut mux,
            video,
            encoder,
            spec,
            progress,
            ..
        } = *self;
        let path = &target.path;
        let frames = progress.finished(path)?;
        let io_error = |e| Error::io(path, e);
        let (sps, pps) = encoder.parameter_sets().ok_or_else(|| no_frames(path))?;
        mux.set_entry(
            video,
            SampleEntry::Avc {
                width: spec.width as u16,
                height: spec.height as u16,
                sps: sps.to_vec(),
                pps: pps.to_vec(),
            },
        );

        let audio = spec.audio();
        if let Some(audio) = audio {
            let track = mux.add_track(audio.sample_rate);
            let info = aac::encode(audio, path, |frame| {
                mux.write_sample(track, frame, aac::FRAME_LEN as u32, true)
                    .map_err(io_error)
            })?;
            mux.set_entry(
                track,
                SampleEntry::Aac {
                    sample_rate: audio.sample_rate,
                    channels: 1,
                    config: info.config,
                    avg_bitrate: info.bitrate,
                    max_bitrate: info.bitrate,
                    max_frame_bytes: info.max_frame_bytes,
                },
            );
            mux.set_edit(
                track,
                Edit {
                    media_time: u64::from(info.delay),
                    duration: audio.samples.len() as u64,
                },
            );
        }

        let duration_s = mux.duration_s();
        let file = mux
            .finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(io_error)?;
        commit_file_output(&target, file, temp, frames, duration_s, audio.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_timescale_is_exact_and_fine() {
        assert_eq!(video_timescale(25, 2), (1000, 80));
        assert_eq!(video_timescale(30000, 1001), (30000, 1001));
        assert_eq!(video_timescale(24, 1), (1008, 42));
        assert_eq!(video_timescale(1, u32::MAX), (1, u32::MAX));
    }
}
