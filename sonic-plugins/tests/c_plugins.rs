//! Plugins written in C against include/sonic_plugin.h, compiled here with the system C
//! compiler: the Euler example must match the built-in Euler, and every way of misbehaving
//! must come back as an error while the host keeps running.

use std::path::{Path, PathBuf};
use std::process::Command;

use sonic_core::models::AudioEncoder;
use sonic_core::sampling::{Euler, Sampler, StepNoise, SvdSchedule};
use sonic_core::{Device, Tensor};
use sonic_plugins::{load, PluginError};

fn compile(source: &Path, defines: &[&str], out: &Path) -> PathBuf {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-O1"])
        .args(defines)
        .arg("-I")
        .arg(&include)
        .arg(source)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("the C compiler `{cc}` is needed for this test: {e}"));
    assert!(status.success(), "compiling {} failed", source.display());
    out.to_path_buf()
}

fn latents() -> Tensor {
    sonic_core::rng::FrameNoise::new(4)
        .frames(0, 3, &[2, 5].into(), Device::Cpu)
        .unwrap()
        .mul_scalar(700.0)
        .unwrap()
}

fn run(sampler: &mut dyn Sampler, x: &Tensor) -> sonic_core::Result<Tensor> {
    let sigmas = SvdSchedule::default().sigmas(6);
    let mut model = |x: &Tensor, s: f32| x.mul_scalar(1.0 / (1.0 + s * s)).and_then(|t| t.tanh());
    let mut x = x.clone();
    sampler.reset();
    for i in 0..6 {
        x = sampler.step(i, &sigmas, &x, &mut model, &StepNoise::new(1, i))?;
    }
    Ok(x)
}

#[test]
fn the_c_euler_example_matches_the_built_in_euler() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sampler-c/euler.c");
    let lib = compile(&source, &[], &dir.path().join("libsonic_euler_c.so"));
    let plugin = load(&lib).unwrap();
    assert_eq!(plugin.samplers.len(), 1);
    assert_eq!(plugin.samplers[0].id, "euler-c");
    let mut ours = plugin.create_sampler("euler-c").unwrap();
    let x = latents();
    let (a, b) = (
        run(&mut ours, &x).unwrap().to_vec().unwrap(),
        run(&mut Euler, &x).unwrap().to_vec().unwrap(),
    );
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs() / q.abs().max(1e-3))
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "C Euler differs from the built-in by {worst}");
    assert!(plugin.create_sampler("nope").is_err());
    let again = load(&lib).unwrap();
    assert_eq!(again.path, plugin.path, "a second load reuses the first");
}

fn misbehaving(mode: u32, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/misbehaving.c");
    compile(
        &source,
        &[&format!("-DMODE={mode}")],
        &dir.join(format!("libsonic_bad{mode}.so")),
    )
}

#[test]
fn misbehaving_samplers_become_errors_and_the_host_survives() {
    let dir = tempfile::tempdir().unwrap();
    let x = latents();
    for (mode, expected) in [
        (1, "non-finite value"),
        (2, "unwritten"),
        (3, "past the end"),
        (4, "deliberate failure"),
    ] {
        let plugin = load(&misbehaving(mode, dir.path())).unwrap();
        let mut sampler = plugin.create_sampler("misbehaving").unwrap();
        let err = run(&mut sampler, &x).unwrap_err().to_string();
        assert!(
            err.contains(expected) && err.contains("misbehaving"),
            "mode {mode}: {err}"
        );
    }
    // The host still works after all of that.
    run(&mut Euler, &x).unwrap();
}

#[test]
fn abi_mismatch_and_missing_entry_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&misbehaving(5, dir.path())).unwrap_err();
    assert!(
        matches!(err, PluginError::AbiMismatch { major: 2, .. }),
        "{err}"
    );
    let err = load(&misbehaving(6, dir.path())).unwrap_err();
    assert!(matches!(err, PluginError::NoEntry { .. }), "{err}");
    let not_a_library = dir.path().join("libsonic_text.so");
    std::fs::write(&not_a_library, "hello").unwrap();
    assert!(matches!(
        load(&not_a_library).unwrap_err(),
        PluginError::Load { .. }
    ));
}

#[test]
fn a_manifest_is_checked_before_any_code_runs() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sampler-c/euler.c");
    let lib = compile(&source, &[], &dir.path().join("libsonic_hashed.so"));
    let manifest = "name = \"euler-c\"\nversion = \"1.0.0\"\nabi_major = 1\nsha256 = \"00\"\n";
    std::fs::write(dir.path().join("libsonic_hashed.toml"), manifest).unwrap();
    assert!(matches!(
        load(&lib).unwrap_err(),
        PluginError::HashMismatch { .. }
    ));
    let future = "name = \"euler-c\"\nversion = \"1.0.0\"\nabi_major = 3\n";
    std::fs::write(dir.path().join("libsonic_hashed.toml"), future).unwrap();
    assert!(matches!(
        load(&lib).unwrap_err(),
        PluginError::AbiMismatch { major: 3, .. }
    ));
}

fn c_encoder(mode: u32, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/encoder.c");
    compile(
        &source,
        &[&format!("-DMODE={mode}")],
        &dir.join(format!("libsonic_encoder{mode}.so")),
    )
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 / n as f32).collect()
}

#[test]
fn a_c_audio_encoder_runs_behind_the_trait() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = load(&c_encoder(0, dir.path())).unwrap();
    assert!(plugin.samplers.is_empty());
    assert_eq!(plugin.audio_encoders.len(), 1);
    assert_eq!(plugin.audio_encoders[0].id, "c-encoder");
    let encoder = plugin.create_audio_encoder("c-encoder", None).unwrap();
    let info = encoder.info();
    assert_eq!(
        (
            info.sample_rate,
            info.frames_per_second,
            info.layers,
            info.hidden_size
        ),
        (16_000, 50.0, 2, 3)
    );
    assert_eq!(encoder.frames_for(641), 3);
    let samples = ramp(641);
    let states = encoder.encode(&samples).unwrap();
    assert_eq!(states.len(), 2);
    for (l, state) in states.iter().enumerate() {
        assert_eq!(state.dims(), [3, 3]);
        let v = state.to_vec().unwrap();
        for f in 0..3 {
            for h in 0..3 {
                let expected = (l + 1) as f32 * samples[f * 320] + h as f32;
                assert_eq!(v[f * 3 + h], expected, "layer {l} frame {f} element {h}");
            }
        }
    }
    let err = plugin
        .create_audio_encoder("other", None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("c-encoder: unknown id"), "{err}");
}

#[test]
fn misbehaving_audio_encoders_become_errors_and_the_host_survives() {
    let dir = tempfile::tempdir().unwrap();
    let samples = ramp(1000);
    // Caught when the encoder is created, from its info.
    for (mode, expected) in [
        (5, "44100 Hz"),
        (6, "layers 0"),
        (8, "frames_per_second inf"),
        (9, "struct_size 8"),
    ] {
        let plugin = load(&c_encoder(mode, dir.path())).unwrap();
        let err = plugin
            .create_audio_encoder("c-encoder", None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(expected) && err.contains("c-encoder"),
            "mode {mode}: {err}"
        );
    }
    // Caught when it encodes.
    for (mode, expected) in [
        (1, "non-finite value"),
        (2, "unwritten"),
        (3, "past the end"),
        (4, "deliberate encoder failure"),
        (7, "claims 1099511627776 frames"),
        (10, "unsupported"),
    ] {
        let plugin = load(&c_encoder(mode, dir.path())).unwrap();
        let encoder = plugin.create_audio_encoder("c-encoder", None).unwrap();
        let err = encoder.encode(&samples).unwrap_err().to_string();
        assert!(
            err.contains(expected) && err.contains("c-encoder"),
            "mode {mode}: {err}"
        );
        // The instance stays usable (and fails the same way again).
        assert!(encoder.encode(&samples).is_err());
        if mode >= 7 {
            assert_eq!(encoder.frames_for(1000), 0, "an unusable count reads as 0");
            assert!(encoder.checked_frames_for(1000).is_err());
        }
    }
    // The host still works after all of that.
    let good = load(&c_encoder(0, dir.path())).unwrap();
    let encoder = good.create_audio_encoder("c-encoder", None).unwrap();
    assert_eq!(encoder.encode(&samples).unwrap().len(), 2);
}
