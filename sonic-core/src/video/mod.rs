//! Frame sinks: where finished video frames go.
//!
//! A sink receives frames in order as packed RGB8 rows and writes them as they arrive, so host
//! memory does not grow with the video's length beyond per-frame bookkeeping:
//!
//! - [`OutputFormat::Mp4`]: H.264 (yuv420p, OpenH264) plus, when the spec has audio, an AAC-LC
//!   track (FDK AAC), in an MP4 container written by a small ISO-BMFF writer of our own;
//! - [`OutputFormat::Png`]: a directory of `frame_000000.png`, `frame_000001.png`, …;
//! - [`OutputFormat::Gif`]: an endlessly looping animated GIF;
//! - [`NullSink`]: counts frames and writes nothing (benchmarks).
//!
//! Output is atomic: a sink writes into a hidden temporary next to the target
//! (`.<name>.partial-<pid>-<random>`) and moves it onto the target only in
//! [`FrameSink::finish`]. A sink dropped without `finish` (an error, a panic, a Ctrl-C that the
//! caller turns into an orderly exit) removes its temporary, so a failed run leaves no partial
//! output. Only a process killed outright leaves the hidden temporary behind.
//!
//! ```no_run
//! use sonic_core::video::{open_sink, Fps, OutputFormat, VideoSpec};
//! # fn main() -> sonic_core::Result<()> {
//! let path = std::path::Path::new("out.mp4");
//! let spec = VideoSpec { width: 512, height: 512, fps: Fps::new(25, 2)?, audio: None };
//! let mut sink = open_sink(OutputFormat::from_path(path)?, path, spec, false)?;
//! sink.write_frame(&vec![0u8; 512 * 512 * 3])?;
//! let summary = sink.finish()?;
//! # Ok(()) }
//! ```

mod aac;
mod atomic;
mod gif;
mod h264;
mod mp4;
mod mp4mux;
mod null;
mod png;
mod spec;
mod yuv;

use std::fs::File;
use std::path::{Path, PathBuf};

use tempfile::TempPath;

pub use null::NullSink;
pub(crate) use spec::AAC_SAMPLE_RATES;
pub use spec::{AudioTrack, Fps, OutputFormat, VideoSpec};

use crate::Result;

/// Receives finished frames in order and writes them out.
pub trait FrameSink: Send {
    /// Writes the next frame: packed RGB8 rows, `width * height * 3` bytes. A frame of the
    /// wrong size is an error and leaves the sink usable; any other failure leaves the output
    /// unusable, and later calls fail too.
    fn write_frame(&mut self, rgb: &[u8]) -> Result<()>;

    /// Flushes the encoders, completes the container, and atomically moves the temporary
    /// output onto its final path.
    fn finish(self: Box<Self>) -> Result<SinkSummary>;
}

/// What a finished sink wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkSummary {
    /// The final output; `None` for [`NullSink`].
    pub path: Option<PathBuf>,
    pub frames: u64,
    /// Bytes written: the file's size, or the sum of a PNG directory's files.
    pub bytes: u64,
    /// Playing time: `frames / fps`, or for an MP4 with audio the longer of video and audio.
    pub duration_s: f64,
    /// Whether an audio track was written (MP4 only).
    pub has_audio: bool,
}

/// Opens a sink writing `format` to `path`.
///
/// Everything that can be checked before the first frame is checked here, so a bad output
/// fails before any expensive work: the spec (sizes, frame rate, audio rate), that the parent
/// directory exists and is writable, and that the target does not exist unless `overwrite`.
pub fn open_sink(
    format: OutputFormat,
    path: &Path,
    spec: VideoSpec,
    overwrite: bool,
) -> Result<Box<dyn FrameSink>> {
    spec.validate(format)?;
    Ok(match format {
        OutputFormat::Mp4 => Box::new(mp4::Mp4Sink::create(path, spec, overwrite)?),
        OutputFormat::Png => Box::new(png::PngSink::create(path, spec, overwrite)?),
        OutputFormat::Gif => Box::new(gif::GifSink::create(path, spec, overwrite)?),
    })
}

/// The checks [`open_sink`] makes of the output path, without opening a sink: its folder
/// exists and takes a temporary, and the target is absent unless `overwrite`. For callers
/// that want a bad output path to fail before minutes of model loading.
pub fn check_output(format: OutputFormat, path: &Path, overwrite: bool) -> Result<()> {
    let kind = match format {
        OutputFormat::Png => atomic::Kind::FrameDir,
        OutputFormat::Mp4 | OutputFormat::Gif => atomic::Kind::File,
    };
    let target = atomic::Target::check(path, overwrite, kind)?;
    match kind {
        atomic::Kind::File => target.temp_file().map(drop),
        atomic::Kind::FrameDir => target.temp_dir().map(drop),
    }
}

/// Frames written so far, and whether a write failed part-way through. After such a failure
/// the output may be corrupt, so the sink refuses further frames and `finish`, and its
/// temporary goes when the sink is dropped.
#[derive(Debug, Default)]
struct Progress {
    frames: u64,
    poisoned: bool,
}

impl Progress {
    /// Before writing a frame: refuses if an earlier write failed.
    fn begin(&self, path: &Path) -> Result<()> {
        if self.poisoned {
            Err(crate::Error::file(
                path,
                "an earlier write failed; the output is discarded",
            ))
        } else {
            Ok(())
        }
    }

    /// After writing a frame: counts it, or remembers the failure.
    fn end(&mut self, result: Result<()>) -> Result<()> {
        match result {
            Ok(()) => self.frames += 1,
            Err(_) => self.poisoned = true,
        }
        result
    }

    /// At `finish`: the frame count, if the output is whole and not empty.
    fn finished(&self, path: &Path) -> Result<u64> {
        self.begin(path)?;
        if self.frames == 0 {
            return Err(no_frames(path));
        }
        Ok(self.frames)
    }
}

/// A sink that got no frames has nothing worth saving; its temporary is dropped.
fn no_frames(path: &Path) -> crate::Error {
    crate::Error::file(path, "no frames were written; nothing to save")
}

/// Moves a complete single-file output into place and describes it.
fn commit_file_output(
    target: &atomic::Target,
    file: File,
    temp: TempPath,
    frames: u64,
    duration_s: f64,
    has_audio: bool,
) -> Result<SinkSummary> {
    let bytes = file
        .metadata()
        .map_err(|e| crate::Error::io(&target.path, e))?
        .len();
    target.commit_file(file, temp)?;
    Ok(SinkSummary {
        path: Some(target.path.clone()),
        frames,
        bytes,
        duration_s,
        has_audio,
    })
}

/// Checks a frame's byte length against the spec.
fn check_frame(rgb: &[u8], width: u32, height: u32) -> Result<()> {
    let expected = width as usize * height as usize * 3;
    if rgb.len() == expected {
        Ok(())
    } else {
        Err(crate::Error::invalid(
            "write_frame",
            format!(
                "a {width}x{height} RGB8 frame has {expected} bytes, got {}",
                rgb.len()
            ),
        ))
    }
}

/// A smooth test picture that changes from frame to frame: a moving gradient with a soft disc.
#[cfg(test)]
pub(crate) fn test_frame(width: u32, height: u32, index: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let (cx, cy) = ((index as f32 * 3.0) % width as f32, height as f32 / 2.0);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
            let disc = (1.0 - d / (height as f32 / 3.0)).clamp(0.0, 1.0);
            rgb.push((255.0 * fx / width as f32) as u8);
            rgb.push((200.0 * fy / height as f32 + 55.0 * disc) as u8);
            rgb.push((64.0 + 160.0 * disc) as u8);
        }
    }
    rgb
}

/// A silent 12.5 fps spec, as the pipeline writes.
#[cfg(test)]
pub(crate) fn test_spec(width: u32, height: u32) -> VideoSpec {
    VideoSpec {
        width,
        height,
        fps: Fps::new(25, 2).unwrap(),
        audio: None,
    }
}

/// Writes `frames` test frames to a new output and finishes it.
#[cfg(test)]
pub(crate) fn write_test_output(
    format: OutputFormat,
    path: &Path,
    width: u32,
    height: u32,
    frames: u32,
) -> SinkSummary {
    let mut sink = open_sink(format, path, test_spec(width, height), false).unwrap();
    for k in 0..frames {
        sink.write_frame(&test_frame(width, height, k)).unwrap();
    }
    sink.finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names in a directory, sorted; hidden temporaries included.
    pub(crate) fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    use test_spec as spec;

    /// The message of the error `open_sink` gives.
    fn open_error(format: OutputFormat, path: &Path, spec: VideoSpec) -> String {
        open_sink(format, path, spec, false)
            .err()
            .unwrap()
            .to_string()
    }

    const FORMATS: [(OutputFormat, &str); 3] = [
        (OutputFormat::Mp4, "out.mp4"),
        (OutputFormat::Png, "frames"),
        (OutputFormat::Gif, "out.gif"),
    ];

    #[test]
    fn dropping_an_unfinished_sink_leaves_nothing() {
        for (format, name) in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            let mut sink = open_sink(format, &path, spec(64, 32), false).unwrap();
            assert_eq!(listing(dir.path()).len(), 1, "{format}: a temporary exists");
            sink.write_frame(&test_frame(64, 32, 0)).unwrap();
            drop(sink);
            assert!(
                listing(dir.path()).is_empty(),
                "{format}: {:?}",
                listing(dir.path())
            );
        }
    }

    #[test]
    fn existing_output_is_refused_up_front_and_left_alone() {
        for (format, name) in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            if format == OutputFormat::Png {
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join("frame_000000.png"), b"old").unwrap();
            } else {
                std::fs::write(&path, b"old").unwrap();
            }
            let err = open_sink(format, &path, spec(64, 32), false).err().unwrap();
            assert!(matches!(err, crate::Error::OutputExists { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains("--overwrite"), "{msg}");
            assert_eq!(listing(dir.path()), [name]);

            // With overwrite the old output stays until the new one is complete.
            let mut sink = open_sink(format, &path, spec(64, 32), true).unwrap();
            sink.write_frame(&test_frame(64, 32, 0)).unwrap();
            assert_eq!(listing(dir.path()).len(), 2);
            let summary = sink.finish().unwrap();
            assert_eq!(listing(dir.path()), [name]);
            assert_eq!(summary.frames, 1);
            assert!(summary.bytes > 3, "{format}");
        }
    }

    #[test]
    fn bad_specs_and_paths_fail_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a.mp4");
        let err = open_error(OutputFormat::Mp4, &odd, spec(63, 32));
        assert!(
            err.contains("even width and height") && err.contains("63x32"),
            "{err}"
        );
        let missing = dir.path().join("missing").join("a.gif");
        let err = open_error(OutputFormat::Gif, &missing, spec(64, 32));
        assert!(
            err.contains("missing") && err.contains("does not exist"),
            "{err}"
        );
        assert!(listing(dir.path()).is_empty());
    }

    #[test]
    fn unwritable_directory_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(locked.join("probe"), b"").is_ok() {
            eprintln!("skipped: permissions are not enforced for this user (root?)");
            return;
        }
        let err = open_sink(
            OutputFormat::Gif,
            &locked.join("a.gif"),
            spec(64, 32),
            false,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("locked") && err.contains("temporary"), "{err}");
    }

    #[test]
    fn wrong_frame_size_is_an_error_and_the_sink_goes_on() {
        for (format, name) in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let mut sink = open_sink(format, &dir.path().join(name), spec(64, 32), false).unwrap();
            assert!(sink.write_frame(&[0; 10]).is_err());
            sink.write_frame(&test_frame(64, 32, 0)).unwrap();
            assert_eq!(sink.finish().unwrap().frames, 1);
        }
    }

    #[test]
    fn a_failed_write_poisons_the_sink() {
        let mut progress = Progress::default();
        let path = Path::new("out.mp4");
        assert!(progress.finished(path).is_err());
        progress.begin(path).unwrap();
        progress.end(Ok(())).unwrap();
        assert_eq!(progress.finished(path).unwrap(), 1);
        let failed = Err(crate::Error::invalid("test", "disk full"));
        assert!(progress.end(failed).is_err());
        let err = progress.begin(path).unwrap_err().to_string();
        assert!(
            err.contains("out.mp4") && err.contains("earlier write failed"),
            "{err}"
        );
        assert!(progress.finished(path).is_err());
    }

    #[test]
    fn the_same_frames_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for (format, name) in FORMATS {
            let outputs: Vec<PathBuf> = ["a", "b"]
                .iter()
                .map(|run| dir.path().join(format!("{run}-{name}")))
                .collect();
            for path in &outputs {
                write_test_output(format, path, 64, 32, 4);
            }
            let read = |p: &Path| match format {
                OutputFormat::Png => std::fs::read(p.join("frame_000003.png")).unwrap(),
                _ => std::fs::read(p).unwrap(),
            };
            assert!(read(&outputs[0]) == read(&outputs[1]), "{format}");
        }
    }

    #[test]
    fn finishing_without_frames_is_an_error_and_leaves_nothing() {
        for (format, name) in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let sink = open_sink(format, &dir.path().join(name), spec(64, 32), false).unwrap();
            let err = sink.finish().unwrap_err().to_string();
            assert!(err.contains("no frames"), "{format}: {err}");
            assert!(listing(dir.path()).is_empty());
        }
    }
}
