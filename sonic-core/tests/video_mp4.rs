//! The MP4 sink checked by an independent reader: ffprobe must see one H.264 and one AAC
//! stream with the right durations, and ffmpeg must decode the frames and audio that were
//! written. Without ffprobe/ffmpeg on PATH the tests say so and pass, unless
//! `SONIC_REQUIRE_FFPROBE=1` (as in CI), where a missing tool is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use sonic_core::video::{open_sink, AudioTrack, Fps, OutputFormat, SinkSummary, VideoSpec};

const WIDTH: u32 = 128;
const HEIGHT: u32 = 64;
const SAMPLE_RATE: u32 = 16_000;

/// A scratch directory and a path in it for an MP4 named `name`, when ffprobe and ffmpeg
/// are there to check it; `None` (after saying why) to skip the test.
fn scratch(name: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    if !ffmpeg_available() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    Some((dir, path))
}

/// True when both tools run; otherwise explains the skip, or fails where they are required.
fn ffmpeg_available() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for tool in ["ffprobe", "ffmpeg"] {
        if !runs(tool) {
            assert!(
                std::env::var("SONIC_REQUIRE_FFPROBE").as_deref() != Ok("1"),
                "{tool} not found but SONIC_REQUIRE_FFPROBE=1 (install ffmpeg)"
            );
            eprintln!("skipped: {tool} not found (install ffmpeg)");
            return false;
        }
    }
    true
}

/// A smooth, natural-looking picture: diagonal gradients and a soft disc moving right.
fn frame(index: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
    let (cx, cy, radius) = (20.0 + 3.0 * index as f32, 32.0, 18.0);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (fx, fy) = (x as f32, y as f32);
            let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
            let disc = (1.0 - (d / radius).powi(2)).clamp(0.0, 1.0);
            let r = 40.0 + 150.0 * fx / WIDTH as f32 + 60.0 * disc;
            let g = 60.0 + 100.0 * fy / HEIGHT as f32 + 40.0 * disc;
            let b = 150.0 - 80.0 * (fx + fy) / (WIDTH + HEIGHT) as f32 + 30.0 * disc;
            rgb.extend([r as u8, g as u8, b as u8]);
        }
    }
    rgb
}

fn sine(seconds: f64) -> Vec<f32> {
    let n = (seconds * f64::from(SAMPLE_RATE)).round() as usize;
    (0..n)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16_000.0).sin()) as f32)
        .collect()
}

/// Writes `frames` to a new MP4; also gives the milliseconds each frame took to encode.
fn encode(path: &Path, spec: VideoSpec, frames: &[Vec<u8>]) -> (SinkSummary, f64) {
    let mut sink = open_sink(OutputFormat::Mp4, path, spec, false).unwrap();
    let start = Instant::now();
    for f in frames {
        sink.write_frame(f).unwrap();
    }
    let summary = sink.finish().unwrap();
    let ms = start.elapsed().as_secs_f64() * 1000.0 / frames.len() as f64;
    (summary, ms)
}

/// `frames` of the moving disc at 12.5 fps with `audio_s` seconds of tone.
fn write_mp4(path: &Path, frames: u32, audio_s: f64) -> SinkSummary {
    let spec = VideoSpec {
        width: WIDTH,
        height: HEIGHT,
        fps: Fps::from_f32(12.5).unwrap(),
        audio: Some(AudioTrack {
            samples: sine(audio_s),
            sample_rate: SAMPLE_RATE,
        }),
    };
    let frames: Vec<Vec<u8>> = (0..frames).map(frame).collect();
    encode(path, spec, &frames).0
}

/// Decodes frame `k` with ffmpeg and gives its PSNR against `written`.
fn frame_psnr(path: &Path, k: usize, written: &[u8]) -> f64 {
    let select = format!("select=eq(n\\,{k})");
    let decoded = ffmpeg(
        path,
        &[
            "-vf", &select, "-vframes", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
    );
    psnr(&decoded, written)
}

/// Runs a tool to success with nothing on stderr (`-v error` keeps it quiet unless something
/// is wrong); returns stdout.
fn run_clean(command: &mut Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ffprobe(path: &Path) -> Value {
    let json = run_clean(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_streams",
                "-show_format",
                "-of",
                "json",
            ])
            .arg(path),
    );
    serde_json::from_slice(&json).unwrap()
}

fn seconds(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap()
}

/// Runs ffmpeg on `path` with `args` after the input; returns stdout.
fn ffmpeg(path: &Path, args: &[&str]) -> Vec<u8> {
    run_clean(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(path)
            .args(args),
    )
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-10)).log10()
}

#[test]
fn mp4_has_h264_and_aac_with_matching_durations_and_decodes_to_what_was_written() {
    let Some((_dir, path)) = scratch("talk.mp4") else {
        return;
    };
    let summary = write_mp4(&path, 25, 2.0);
    assert_eq!(summary.frames, 25);
    assert!(summary.has_audio);
    assert!((summary.duration_s - 2.0).abs() < 1e-9);

    let probe = ffprobe(&path);
    let streams = probe["streams"].as_array().unwrap();
    let of_type =
        |t: &str| -> Vec<&Value> { streams.iter().filter(|s| s["codec_type"] == t).collect() };
    let (video, audio) = (of_type("video"), of_type("audio"));
    assert_eq!((video.len(), audio.len(), streams.len()), (1, 1, 2));
    let (video, audio) = (video[0], audio[0]);
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["pix_fmt"], "yuv420p");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(128), Some(64))
    );
    assert_eq!(video["r_frame_rate"], "25/2");
    assert_eq!(video["nb_frames"], "25");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["profile"], "LC");
    assert_eq!(audio["sample_rate"], "16000");
    assert_eq!(audio["channels"].as_u64(), Some(1));

    let format_s = seconds(&probe["format"]["duration"]);
    let audio_s = seconds(&audio["duration"]);
    let video_s = seconds(&video["duration"]);
    eprintln!(
        "ffprobe durations: format {}, audio {}, video {}",
        probe["format"]["duration"], audio["duration"], video["duration"]
    );
    assert!((audio_s - 2.0).abs() < 0.01, "audio {audio_s}");
    assert!((video_s - 2.0).abs() < 0.01, "video {video_s}");
    assert!(
        (format_s - audio_s).abs() <= 0.08,
        "format {format_s} vs audio {audio_s}"
    );

    for k in [0, 7, 12, 24] {
        let db = frame_psnr(&path, k as usize, &frame(k));
        eprintln!("frame {k}: PSNR {db:.2} dB");
        assert!(db >= 35.0, "frame {k}: PSNR {db:.2} dB");
    }

    // The decoded audio starts with the samples written: the edit list hides the encoder's
    // priming, so the tone starts at sample 0. (ffmpeg skips the priming but decodes the
    // last frame whole, so up to one frame of padding may follow.)
    let pcm = ffmpeg(&path, &["-map", "0:a", "-f", "f32le", "-ac", "1", "-"]);
    let decoded: Vec<f32> = pcm
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let written = sine(2.0);
    assert!(
        (written.len()..written.len() + 1024).contains(&decoded.len()),
        "decoded {} samples for {}",
        decoded.len(),
        written.len()
    );
    let (signal, noise) = written
        .iter()
        .zip(&decoded)
        .fold((0.0, 0.0), |(s, n), (&w, &d)| {
            (s + f64::from(w).powi(2), n + f64::from(w - d).powi(2))
        });
    let snr = 10.0 * (signal / noise).log10();
    eprintln!("audio: {} samples, SNR {snr:.1} dB", decoded.len());
    assert!(snr > 20.0, "audio SNR {snr:.1} dB");
}

#[test]
fn mp4_duration_is_the_longer_track() {
    let Some((_dir, path)) = scratch("long_audio.mp4") else {
        return;
    };
    // 1.2 s of video against 3 s of audio.
    let summary = write_mp4(&path, 15, 3.0);
    assert!((summary.duration_s - 3.0).abs() < 1e-9);
    let probe = ffprobe(&path);
    let format_s = seconds(&probe["format"]["duration"]);
    eprintln!("ffprobe format duration with 1.2 s video, 3 s audio: {format_s}");
    assert!((format_s - 3.0).abs() <= 0.08, "format {format_s}");
}

/// A harder picture than `frame`: a shaded face-like blob that drifts, with fine texture and
/// pixel noise everywhere.
fn detailed_frame(w: u32, h: u32, k: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    let t = k as f32 * 0.15;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let d = ((fx - 0.5 - 0.05 * t.sin()).powi(2) + (fy - 0.45).powi(2) * 0.7).sqrt();
            let face = (1.0 - (d / 0.3).powi(2)).clamp(0.0, 1.0);
            let (xf, yf) = (x as f32, y as f32);
            let texture = (xf * 0.9 + yf * 0.37).sin() * (yf * 0.21 - xf * 0.13).cos() * 12.0;
            let noise = ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 97) as f32;
            let grain = (noise - 48.0) * 0.15;
            let r = 60.0 + 120.0 * face + 40.0 * fy + texture + grain;
            let g = 50.0 + 90.0 * face + 30.0 * fx + texture * 0.8 + grain;
            let b = 90.0 + 40.0 * face - 30.0 * fy + texture * 0.5 + grain;
            rgb.extend([r, g, b].map(|c| c.clamp(0.0, 255.0) as u8));
        }
    }
    rgb
}

#[test]
fn mp4_keeps_detailed_512_frames_above_35_db() {
    let Some((_dir, path)) = scratch("detailed.mp4") else {
        return;
    };
    let (w, h) = (512, 512);
    let frames: Vec<Vec<u8>> = (0..20).map(|k| detailed_frame(w, h, k)).collect();
    let spec = VideoSpec {
        width: w,
        height: h,
        fps: Fps::new(25, 2).unwrap(),
        audio: None,
    };
    let (summary, ms) = encode(&path, spec, &frames);
    let kbps = summary.bytes as f64 * 8.0 / summary.duration_s / 1000.0;
    eprintln!("512x512: {ms:.1} ms/frame encoded, {kbps:.0} kbit/s");
    for k in [0, 9, 19] {
        let db = frame_psnr(&path, k, &frames[k]);
        eprintln!("512x512 frame {k}: PSNR {db:.2} dB");
        assert!(db >= 35.0, "frame {k}: PSNR {db:.2} dB");
    }
}
