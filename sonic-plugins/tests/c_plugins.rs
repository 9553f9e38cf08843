//! Plugins written in C against include/sonic_plugin.h, compiled here with the system C
//! compiler: the Euler example must match the built-in Euler, and every way of misbehaving
//! must come back as an error while the host keeps running.

use std::path::{Path, PathBuf};
use std::process::Command;

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
