//! The pipeline end to end on the demo model with tiny inputs, and its input checks.

use std::path::{Path, PathBuf};

use super::*;
use crate::image::FaceBox;
use crate::Device;

fn write_inputs(dir: &Path, seconds: f32) -> (PathBuf, PathBuf) {
    let image = dir.join("face.png");
    let pixels = ::image::RgbImage::from_fn(96, 80, |x, y| {
        ::image::Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 200) as u8])
    });
    pixels.save(&image).unwrap();
    let audio = dir.join("voice.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(&audio, spec).unwrap();
    for i in 0..(seconds * 16_000.0) as usize {
        let t = i as f32 / 16_000.0;
        let v = (t * 220.0 * std::f32::consts::TAU).sin() * (t * 3.0).sin().abs();
        wav.write_sample((v * 12_000.0) as i16).unwrap();
    }
    wav.finalize().unwrap();
    (image, audio)
}

fn quick() -> AnimateOptions {
    AnimateOptions {
        interpolate: Interpolate::None,
        steps: 2,
        short_side: Some(64),
        seed: 3,
        ..AnimateOptions::default()
    }
}

fn run(
    pipeline: &SonicPipeline,
    prepared: &Prepared,
    opts: &AnimateOptions,
) -> (Vec<Vec<u8>>, AnimateReport) {
    let mut frames = Vec::new();
    let report = pipeline
        .generate(prepared, opts, &mut Silent, &mut |rgb| {
            frames.push(rgb.to_vec());
            Ok(())
        })
        .unwrap();
    (frames, report)
}

#[test]
fn the_demo_model_animates_deterministically_frame_by_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (image, audio) = write_inputs(dir.path(), 0.6);
    let pipeline = SonicPipeline::new(ModelSet::demo(Device::Cpu).unwrap());
    let opts = quick();
    let prepared = pipeline.prepare(&image, &audio, &opts).unwrap();
    assert_eq!((prepared.width(), prepared.height()), (64, 64));
    assert_eq!(prepared.frames, 7);
    assert_ne!(prepared.face_source, FaceSource::Given);

    let (frames, report) = run(&pipeline, &prepared, &opts);
    assert_eq!(frames.len(), 7);
    assert!(frames.iter().all(|f| f.len() == 64 * 64 * 3));
    assert!(!report.trained);
    assert_eq!((report.frames, report.fps, report.steps), (7, 12.5, 2));
    // Seven frames fit in one 25-frame window: one call per step.
    assert_eq!(report.denoiser_calls, 2);
    assert!(
        report.schedule.starts_with("shift:alpha=7"),
        "{}",
        report.schedule
    );

    let (again, _) = run(&pipeline, &prepared, &opts);
    assert_eq!(frames, again, "same seed, same bytes");
    let other = AnimateOptions {
        seed: 4,
        ..opts.clone()
    };
    let (reseeded, _) = run(&pipeline, &prepared, &other);
    assert_ne!(frames, reseeded);

    // RIFE doubles the rate: every generated frame is kept and midpoints go between them.
    let doubled = AnimateOptions {
        interpolate: Interpolate::Rife,
        ..opts.clone()
    };
    let (interpolated, report) = run(&pipeline, &prepared, &doubled);
    assert_eq!((interpolated.len(), report.output_frames), (14, 14));
    assert_eq!(interpolated[12], interpolated[13], "the last frame is held");
    assert_eq!(report.fps, 25.0);
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(&interpolated[2 * k], f, "frame {k} kept as generated");
    }
}

#[test]
fn bad_inputs_and_options_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (image, audio) = write_inputs(dir.path(), 0.6);
    let (_, short) = {
        let sub = dir.path().join("short");
        std::fs::create_dir(&sub).unwrap();
        write_inputs(&sub, 0.05)
    };
    let pipeline = SonicPipeline::new(ModelSet::demo(Device::Cpu).unwrap());
    let err = |opts: AnimateOptions, audio: &Path| {
        pipeline
            .prepare(&image, audio, &opts)
            .err()
            .expect("an error")
            .to_string()
    };
    assert!(err(quick(), &short).contains("one video frame needs 0.08 s"));
    let limited = AnimateOptions {
        max_audio_seconds: 0.5,
        ..quick()
    };
    assert!(err(limited, &audio).contains("over the limit of 0.5 s"));
    let outside = AnimateOptions {
        face_box: Some(FaceBox {
            x: 500.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        }),
        ..quick()
    };
    assert!(err(outside, &audio).contains("not a box inside the 96×80 portrait"));
    let no_steps = AnimateOptions {
        steps: 0,
        ..quick()
    };
    assert!(err(no_steps, &audio).contains("--steps"));
    let missing = pipeline
        .prepare(&dir.path().join("nope.png"), &audio, &quick())
        .err()
        .unwrap()
        .to_string();
    assert!(missing.contains("nope.png"), "{missing}");
}
