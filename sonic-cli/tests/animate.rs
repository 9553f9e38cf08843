//! `sonic animate` end to end on the embedded demo model, and every bad input the issue
//! lists: each must exit non-zero with a one-line error naming the problem, never panic, and
//! leave no output (nor any temporary) behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sonic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sonic"))
        .args(args)
        .env_remove("SONIC_PLUGIN_PATH")
        .output()
        .expect("run sonic")
}

fn portrait(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    })
    .save(path)
    .unwrap();
}

/// A 44.1 kHz stereo tone: the pipeline hears it at 16 kHz mono, the MP4 keeps 44.1 kHz.
fn speech(path: &Path, seconds: f32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: SPEECH_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(seconds * SPEECH_RATE as f32) as usize {
        let t = i as f32 / SPEECH_RATE as f32;
        let sample = ((t * 1300.0).sin() * 9000.0) as i16;
        wav.write_sample(sample).unwrap();
        wav.write_sample(sample).unwrap();
    }
    wav.finalize().unwrap();
}

const SPEECH_RATE: u32 = 44_100;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let case = Case {
            dir: tempfile::tempdir().unwrap(),
        };
        portrait(&case.path("face.png"), 96, 80);
        speech(&case.path("voice.wav"), 0.5);
        case
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Runs animate with quick settings and `extra` flags, writing `out.mp4` unless
    /// `extra` names another output.
    fn animate(&self, extra: &[&str]) -> Output {
        let (image, audio, out) = (self.s("face.png"), self.s("voice.wav"), self.s("out.mp4"));
        let mut args = vec!["animate", "--image", &image, "--audio", &audio];
        if !extra.contains(&"-o") {
            args.extend(["-o", &out]);
        }
        args.extend(["--steps", "2", "--size", "64", "--seed", "1"]);
        args.extend(extra);
        sonic(&args)
    }

    /// Names in the case folder other than the inputs.
    fn leftovers(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !["face.png", "voice.wav"].contains(&n.as_str()))
            .collect();
        names.sort();
        names
    }
}

/// A failed run: non-zero exit, one error line containing `expected`, no panic, nothing left.
fn assert_fails(case: &Case, out: &Output, expected: &str, left: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(expected),
        "expected `{expected}` in: {stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(case.leftovers(), left, "{stderr}");
}

/// One H.264 and one AAC stream (mono, at `audio_rate`); the file and its video last the
/// audio's `seconds` within one 25 fps frame.
/// Skipped without ffprobe unless SONIC_REQUIRE_FFPROBE=1 (as .ci/run sets).
fn check_with_ffprobe(mp4: &Path, seconds: f64, audio_rate: u32) {
    let probe = Command::new("ffprobe")
        .args("-v error -show_streams -show_format -of json".split(' '))
        .arg(mp4)
        .output();
    let probe = match probe {
        Ok(p) => p,
        Err(e) if std::env::var("SONIC_REQUIRE_FFPROBE").as_deref() == Ok("1") => {
            panic!("ffprobe is required (SONIC_REQUIRE_FFPROBE=1): {e}")
        }
        Err(_) => {
            eprintln!("skipped: ffprobe not found (install ffmpeg)");
            return;
        }
    };
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let codecs: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["h264", "aac"]);
    let audio = &v["streams"][1];
    assert_eq!(audio["sample_rate"], audio_rate.to_string());
    assert_eq!(audio["channels"], 1);
    for duration in [&v["format"]["duration"], &v["streams"][0]["duration"]] {
        let d: f64 = duration.as_str().unwrap().parse().unwrap();
        assert!(
            (d - seconds).abs() <= 0.04 + 1e-6,
            "{d} s against {seconds} s"
        );
    }
}

#[test]
fn the_demo_model_writes_an_mp4_and_reports_json() {
    let case = Case::new();
    let out = case.animate(&["--json", "-q"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 6);
    // The demo model carries RIFE, so the video is interpolated to 25 fps by default.
    assert_eq!(
        (v["output_frames"].as_u64(), v["fps"].as_f64()),
        (Some(12), Some(25.0))
    );
    assert_eq!(v["seed"], 1);
    assert_eq!(v["trained"], false);
    assert_eq!(v["components"]["model"]["kind"], "demo");
    assert_eq!(v["components"]["sampler"], "euler");
    assert_eq!(v["has_audio"], true);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(64), Some(64))
    );
    for stage in ["prepare_s", "encode_s", "denoise_s", "decode_s"] {
        assert!(v["timings"][stage].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(case.leftovers(), ["out.mp4"]);
    check_with_ffprobe(&case.path("out.mp4"), 0.5, SPEECH_RATE);

    // GIF and PNG sinks through the same run.
    let gif = case.s("out.gif");
    assert!(case.animate(&["-o", &gif, "-q"]).status.success());
    let frames = case.s("frames");
    assert!(case
        .animate(&[
            "-o",
            &frames,
            "--format",
            "png",
            "--interpolate",
            "none",
            "-q"
        ])
        .status
        .success());
    assert_eq!(std::fs::read_dir(case.path("frames")).unwrap().count(), 6);
}

#[test]
fn an_existing_output_is_kept_without_overwrite() {
    let case = Case::new();
    std::fs::write(case.path("out.mp4"), b"precious").unwrap();
    let out = case.animate(&[]);
    assert_fails(
        &case,
        &out,
        "already exists (pass --overwrite",
        &["out.mp4"],
    );
    assert_eq!(std::fs::read(case.path("out.mp4")).unwrap(), b"precious");
    assert!(case.animate(&["--overwrite", "-q"]).status.success());
    assert_ne!(std::fs::read(case.path("out.mp4")).unwrap(), b"precious");
}

#[test]
fn a_missing_image_is_named() {
    let case = Case::new();
    std::fs::remove_file(case.path("face.png")).unwrap();
    let out = case.animate(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("face.png"),
        "{stderr}"
    );
    assert!(!case.path("out.mp4").exists());
}

#[test]
fn a_missing_audio_file_is_named() {
    let case = Case::new();
    std::fs::remove_file(case.path("voice.wav")).unwrap();
    let out = case.animate(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("voice.wav"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
    assert!(!case.path("out.mp4").exists());
}

#[test]
fn an_unreadable_image_is_refused() {
    let case = Case::new();
    std::fs::write(case.path("face.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = case.animate(&[]);
    assert_fails(&case, &out, "face.png: corrupt or truncated image", &[]);
}

#[test]
fn a_tiny_image_is_refused() {
    let case = Case::new();
    portrait(&case.path("face.png"), 12, 10);
    let out = case.animate(&[]);
    assert_fails(&case, &out, "too small for a portrait (12×10", &[]);
}

#[test]
fn zero_length_audio_is_refused() {
    let case = Case::new();
    speech(&case.path("voice.wav"), 0.0);
    let out = case.animate(&[]);
    assert_fails(&case, &out, "voice.wav", &[]);
}

#[test]
fn corrupt_audio_is_refused() {
    let case = Case::new();
    std::fs::write(
        case.path("voice.wav"),
        b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk",
    )
    .unwrap();
    let out = case.animate(&[]);
    assert_fails(&case, &out, "voice.wav", &[]);
}

#[test]
fn audio_over_the_length_limit_is_refused() {
    let case = Case::new();
    let out = case.animate(&["--max-audio-seconds", "0.25"]);
    assert_fails(&case, &out, "over the limit of 0.25 s", &[]);
}

/// A weights folder in the reference's layout whose files are placeholders.
fn placeholder_weights(case: &Case) -> PathBuf {
    let weights = case.path("weights");
    let svd = weights.join("stable-video-diffusion-img2vid-xt");
    for dir in ["Sonic", "whisper-tiny"] {
        std::fs::create_dir_all(weights.join(dir)).unwrap();
    }
    for dir in ["unet", "vae", "image_encoder"] {
        std::fs::create_dir_all(svd.join(dir)).unwrap();
        std::fs::write(svd.join(dir).join("config.json"), b"{}").unwrap();
    }
    std::fs::write(svd.join("vae/diffusion_pytorch_model.safetensors"), b"x").unwrap();
    std::fs::write(svd.join("image_encoder/model.safetensors"), b"x").unwrap();
    std::fs::write(weights.join("whisper-tiny/config.json"), b"{}").unwrap();
    std::fs::write(weights.join("whisper-tiny/model.safetensors"), b"x").unwrap();
    for f in ["unet.pth", "audio2token.pth", "audio2bucket.pth"] {
        std::fs::write(weights.join("Sonic").join(f), b"x").unwrap();
    }
    weights
}

#[test]
fn a_weights_folder_missing_a_file_names_it() {
    let case = Case::new();
    let weights = placeholder_weights(&case);
    std::fs::remove_file(weights.join("Sonic/unet.pth")).unwrap();
    let w = weights.display().to_string();
    let out = case.animate(&["--weights", &w]);
    assert_fails(
        &case,
        &out,
        "Sonic/unet.pth: missing: Sonic's UNet",
        &["weights"],
    );
}

#[test]
fn a_wrong_weights_file_names_it() {
    let case = Case::new();
    let weights = placeholder_weights(&case);
    std::fs::write(weights.join("Sonic/unet.pth"), b"this is not a checkpoint").unwrap();
    let w = weights.display().to_string();
    let out = case.animate(&["--weights", &w]);
    assert_fails(&case, &out, "Sonic/unet.pth", &["weights"]);
}

#[test]
fn an_unwritable_output_path_is_refused_before_work() {
    let case = Case::new();
    std::fs::write(case.path("plain-file"), b"").unwrap();
    let inside_a_file = case.s("plain-file/out.mp4");
    let out = case.animate(&["-o", &inside_a_file]);
    assert_fails(&case, &out, "the folder does not exist", &["plain-file"]);
}

fn png_frames(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| image::open(p).unwrap().to_rgb8().into_raw())
        .collect()
}

#[test]
fn a_c_plugin_sampler_runs_the_pipeline_like_the_builtin_euler() {
    let case = Case::new();
    let library = case.path("libeuler_c.so");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c99", "-shared", "-fPIC", "-O1", "-I"])
        .arg(root.join("sonic-plugins/include"))
        .arg(root.join("sonic-plugins/examples/sampler-c/euler.c"))
        .arg("-o")
        .arg(&library)
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(status.success());
    let lib = library.display().to_string();
    let (builtin, plugin) = (case.s("builtin"), case.s("plugin"));
    let out = case.animate(&[
        "-o",
        &builtin,
        "--format",
        "png",
        "--interpolate",
        "none",
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = case.animate(&[
        "--plugin",
        &lib,
        "--sampler",
        "euler-c",
        "-o",
        &plugin,
        "--format",
        "png",
        "--json",
        "-q",
        "--interpolate",
        "none",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["components"]["sampler"], "euler-c");
    let (a, b) = (
        png_frames(&case.path("builtin")),
        png_frames(&case.path("plugin")),
    );
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| p.abs_diff(*q)))
        .max()
        .unwrap();
    assert!(worst <= 2, "frames differ by up to {worst} levels");

    let out = sonic(&[
        "--plugin",
        &lib,
        "ablate",
        "--sampler",
        "euler-c",
        "--frames",
        "30",
        "--steps",
        "4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4);
}

#[test]
fn ablate_runs_the_pipeline_with_every_schedule() {
    let case = Case::new();
    let (image, audio) = (case.s("face.png"), case.s("voice.wav"));
    let out = sonic(&[
        "ablate",
        "--image",
        &image,
        "--audio",
        &audio,
        "--size",
        "64",
        "--steps",
        "2",
        "--schedule",
        "tiles",
        "--schedule",
        "shift:alpha=7",
        "--schedule",
        "overlap:o=2",
        "--schedule",
        "motion-frames:o=2",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert_eq!(
            row["denoiser_calls"], row["predicted"]["denoiser_calls"],
            "{row}"
        );
        assert!(
            row["metrics"]["flicker"].as_f64().unwrap().is_finite(),
            "{row}"
        );
    }
}

#[test]
fn crop_and_rife_run_on_the_sample_portrait_and_a_faceless_image_falls_back() {
    let case = Case::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/portrait.png");
    std::fs::copy(&sample, case.path("face.png")).unwrap();
    let out = case.animate(&["--crop", "--interpolate", "rife", "--json", "-q"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["face_source"], "detected");
    assert_eq!(
        (v["output_frames"].as_u64(), v["interpolated"].as_bool()),
        (Some(12), Some(true))
    );
    // The square crop makes a square working size.
    assert_eq!(v["width"], v["height"]);
    // The video ends within one output frame of the audio.
    let video_s = v["output_frames"].as_f64().unwrap() / v["fps"].as_f64().unwrap();
    let audio_s = v["audio_seconds"].as_f64().unwrap();
    assert!(
        (video_s - audio_s).abs() <= 0.04 + 1e-6,
        "{video_s} s vs {audio_s} s"
    );

    portrait(&case.path("face.png"), 96, 80);
    let out = case.animate(&["--json", "--overwrite"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no face found; using the default box"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["face_source"], "default");
}

#[test]
fn rife_without_its_weights_is_refused_before_work() {
    let case = Case::new();
    let weights = placeholder_weights(&case);
    let w = weights.display().to_string();
    let missing = case.s("weights/nope.pkl");
    let out = case.animate(&["--weights", &w, "--rife", &missing]);
    assert_fails(
        &case,
        &out,
        "nope.pkl: missing: RIFE's flownet.pkl",
        &["weights"],
    );
}

#[test]
fn ctrl_c_stops_the_run_and_leaves_no_partial_output() {
    let case = Case::new();
    speech(&case.path("voice.wav"), 4.0);
    let (image, audio, out) = (case.s("face.png"), case.s("voice.wav"), case.s("out.mp4"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sonic"))
        .args(["animate", "--image", &image, "--audio", &audio, "-o", &out])
        .args(["--size", "64", "--steps", "50", "--seed", "1", "-q"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The temporary output appears once the inputs are ready and the sink is open.
    let started = std::time::Instant::now();
    while !case.leftovers().iter().any(|n| n.contains(".partial")) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(
            started.elapsed().as_secs() < 120,
            "no temporary output appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(case.leftovers(), Vec::<String>::new(), "{stderr}");
}
