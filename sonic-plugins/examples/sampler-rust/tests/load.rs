//! Loads this crate's own cdylib (cargo builds it before these tests) through the host
//! loader, and checks the plugin against the same sampler linked in directly.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::PathBuf;

use sonic_core::rng::FrameNoise;
use sonic_core::sampling::{karras_sigmas, Sampler, StepNoise};
use sonic_core::{registry, Device, Tensor};
use sonic_sampler_example::DpmPp2mSde;

fn library() -> PathBuf {
    // Cargo builds the package's cdylib into the test binary's own `deps` folder.
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .join(format!("{DLL_PREFIX}sonic_sampler_example{DLL_SUFFIX}"))
}

/// Data N(0.7, 0.5²): the exact denoiser is closed-form.
fn gaussian(x: &Tensor, sigma: f32) -> sonic_core::Result<Tensor> {
    let k = 0.25 / (0.25 + sigma * sigma);
    x.add_scalar(-0.7)?.mul_scalar(k)?.add_scalar(0.7)
}

fn run(sampler: &mut dyn Sampler, steps: usize) -> Vec<f32> {
    let sigmas = karras_sigmas(steps, 0.002, 80.0);
    let mut x = FrameNoise::new(9)
        .frames(0, 32, &[128].into(), Device::Cpu)
        .unwrap()
        .mul_scalar(80.0)
        .unwrap();
    let mut model = gaussian;
    sampler.reset();
    for i in 0..steps {
        x = sampler
            .step(i, &sigmas, &x, &mut model, &StepNoise::new(3, i))
            .unwrap();
    }
    x.to_vec().unwrap()
}

#[test]
fn the_plugin_loads_registers_and_matches_the_linked_sampler() {
    let plugin = sonic_plugins::load(&library()).unwrap();
    assert_eq!(
        plugin
            .samplers
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        vec!["dpmpp-2m-sde"]
    );
    assert_eq!(
        (plugin.abi_major, plugin.host_min_version.as_str()),
        (1, "0.1.0")
    );
    plugin.register().unwrap();
    let mut through_plugin = registry::sampler("dpmpp-2m-sde").unwrap();
    assert_eq!(through_plugin.name(), "dpmpp-2m-sde");
    let (a, b) = (
        run(through_plugin.as_mut(), 30),
        run(&mut DpmPp2mSde::default(), 30),
    );
    assert_eq!(a, b, "the plugin path changes nothing");
}

#[test]
fn the_sde_sampler_reaches_the_data_distribution() {
    let out = run(&mut DpmPp2mSde::default(), 200);
    let n = out.len() as f64;
    let mean = out.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = out.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!((mean - 0.7).abs() < 0.03, "mean {mean}");
    assert!((var / 0.25 - 1.0).abs() < 0.08, "variance {var}");
}
