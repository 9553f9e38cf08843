//! Loads this crate's own cdylib (cargo builds it before these tests) through the host
//! loader, and checks the plugin against the same encoder linked in directly.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::PathBuf;

use sonic_audio_encoder_example::{Config, LogMelProjection, FRAMES_PER_SECOND};
use sonic_core::models::AudioEncoder;
use sonic_core::registry;

fn library() -> PathBuf {
    // Cargo builds the package's cdylib into the test binary's own `deps` folder.
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join(format!(
        "{DLL_PREFIX}sonic_audio_encoder_example{DLL_SUFFIX}"
    ))
}

/// `seconds` of a gliding tone with a little deterministic hiss, at 16 kHz.
fn speechy(seconds: f32) -> Vec<f32> {
    let n = (seconds * 16_000.0) as usize;
    let mut state = 1u32;
    (0..n)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let hiss = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            0.4 * (2.0 * std::f32::consts::PI * (150.0 + 40.0 * t) * t).sin() + 0.02 * hiss
        })
        .collect()
}

fn flat(states: &[sonic_core::Tensor]) -> Vec<Vec<f32>> {
    states.iter().map(|t| t.to_vec().unwrap()).collect()
}

#[test]
fn the_plugin_loads_registers_and_matches_the_linked_encoder() {
    let plugin = sonic_plugins::load(&library()).unwrap();
    let ids: Vec<&str> = plugin
        .audio_encoders
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(ids, ["log-mel-projection"]);
    assert!(plugin.samplers.is_empty(), "no sampler factory");
    plugin.register().unwrap();
    let listed = registry::audio_encoders();
    let entry = listed
        .iter()
        .find(|i| i.name == "log-mel-projection")
        .unwrap();
    assert_eq!(entry.origin, plugin.path.display().to_string());

    let through_plugin = registry::audio_encoder("log-mel-projection").unwrap();
    let linked = LogMelProjection::from_config(None).unwrap();
    let info = through_plugin.info();
    assert_eq!(info, linked.info());
    assert_eq!(
        (
            info.sample_rate,
            info.frames_per_second,
            info.layers,
            info.hidden_size
        ),
        (16_000, FRAMES_PER_SECOND, 5, 384)
    );
    for n in [0, 1, 320, 16_000, 480_000, 480_001, 10 * 480_000 + 7] {
        assert_eq!(
            through_plugin.frames_for(n),
            linked.frames_for(n),
            "{n} samples"
        );
    }
    // 35 s: two 30 s chunks, the second padded.
    let audio = speechy(35.0);
    let (a, b) = (
        through_plugin.encode(&audio).unwrap(),
        linked.encode(&audio).unwrap(),
    );
    assert_eq!(a.len(), 5);
    assert!(a.iter().all(|t| t.dims() == [3000, 384]));
    assert_eq!(flat(&a), flat(&b), "the plugin path changes nothing");
}

#[test]
fn configuration_reaches_the_plugin_and_bad_configuration_is_explained() {
    let plugin = sonic_plugins::load(&library()).unwrap();
    let json = r#"{"layers": 2, "hidden_size": 24}"#;
    let encoder = plugin
        .create_audio_encoder("log-mel-projection", Some(json))
        .unwrap();
    let linked = LogMelProjection::from_config(Some(json)).unwrap();
    assert_eq!((encoder.info().layers, encoder.info().hidden_size), (2, 24));
    let audio = speechy(3.0);
    let (a, b) = (
        encoder.encode(&audio).unwrap(),
        linked.encode(&audio).unwrap(),
    );
    assert!(a.iter().all(|t| t.dims() == [1500, 24]));
    assert_eq!(flat(&a), flat(&b));

    for (bad, expected) in [
        (r#"{"layers": 0}"#, "layers 0"),
        (r#"{"width": 3}"#, "unknown field"),
        ("not json", "expected"),
    ] {
        let err = plugin
            .create_audio_encoder("log-mel-projection", Some(bad))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(expected) && err.contains("log-mel-projection"),
            "{bad}: {err}"
        );
    }
    let err = plugin
        .create_audio_encoder("nope", None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no audio encoder `nope`"), "{err}");
    let err = plugin.create_sampler("anything").err().unwrap().to_string();
    assert!(err.contains("provides no samplers"), "{err}");
}

#[test]
fn the_encoder_is_deterministic_bounded_and_layers_differ() {
    let config = Config::parse(Some(r#"{"layers": 3, "hidden_size": 16}"#)).unwrap();
    let audio = speechy(2.0);
    let a = flat(
        &LogMelProjection::new(config)
            .unwrap()
            .encode(&audio)
            .unwrap(),
    );
    let b = flat(
        &LogMelProjection::new(config)
            .unwrap()
            .encode(&audio)
            .unwrap(),
    );
    assert_eq!(a, b);
    assert!(a.iter().flatten().all(|v| v.abs() < 1.0));
    assert_ne!(a[0], a[1]);
    assert_ne!(a[1], a[2]);
    assert_eq!(Config::parse(None).unwrap(), Config::default());
    assert_eq!(Config::parse(Some(" ")).unwrap(), Config::default());
    assert!(LogMelProjection::from_config(None)
        .unwrap()
        .encode(&[])
        .is_err());
}

#[test]
fn the_plugin_encoder_drives_the_sonic_pipeline() {
    use sonic_core::pipeline::{AnimateOptions, Interpolate, ModelSet, Silent, SonicPipeline};

    let plugin = sonic_plugins::load(&library()).unwrap();
    // Shaped for the demo model's audio conditioner: three hidden states of width 64.
    let encoder = plugin
        .create_audio_encoder(
            "log-mel-projection",
            Some(r#"{"layers":3,"hidden_size":64}"#),
        )
        .unwrap();
    let models = ModelSet::demo(sonic_core::Device::Cpu)
        .unwrap()
        .with_audio_encoder("log-mel-projection", Box::new(encoder));
    let pipeline = SonicPipeline::new(models);

    let dir = std::env::temp_dir().join(format!("sonic-encoder-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (image, audio) = (dir.join("face.png"), dir.join("voice.wav"));
    let pixels: Vec<u8> = (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect();
    image::RgbImage::from_raw(64, 64, pixels)
        .unwrap()
        .save(&image)
        .unwrap();
    write_wav(&audio, &speechy(0.4));

    let opts = AnimateOptions {
        steps: 2,
        short_side: Some(64),
        interpolate: Interpolate::None,
        audio_encoder: "log-mel-projection".into(),
        ..AnimateOptions::default()
    };
    let prepared = pipeline.prepare(&image, &audio, &opts).unwrap();
    let mut frames = 0;
    let report = pipeline
        .generate(&prepared, &opts, &mut Silent, &mut |_| {
            frames += 1;
            Ok(())
        })
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((frames, report.frames), (5, 5));
    assert_eq!(report.audio_encoder, "log-mel-projection");
}

fn write_wav(path: &std::path::Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        wav.write_sample((s * 20_000.0) as i16).unwrap();
    }
    wav.finalize().unwrap();
}
