//! A Rust plugin whose sampler panics or fails, linked into this test and driven through
//! the same handshake, vtables and checks as a loaded library: a panic must come back as an
//! error, and the host must keep working.

use sonic_core::sampling::{Denoise, Euler, NoiseSource, Sampler, StepNoise, SvdSchedule};
use sonic_core::{Device, Error, Result, Tensor};

#[derive(Default)]
struct Panics;

impl Sampler for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    fn step(
        &mut self,
        _: usize,
        _: &[f32],
        _: &Tensor,
        _: &mut dyn Denoise,
        _: &dyn NoiseSource,
    ) -> Result<Tensor> {
        panic!("deliberate panic inside the plugin")
    }
}

#[derive(Default)]
struct Fails;

impl Sampler for Fails {
    fn name(&self) -> &str {
        "fails"
    }
    fn step(
        &mut self,
        _: usize,
        _: &[f32],
        _: &Tensor,
        _: &mut dyn Denoise,
        _: &dyn NoiseSource,
    ) -> Result<Tensor> {
        Err(Error::Component {
            component: "fails".into(),
            msg: "deliberate error".into(),
        })
    }
}

/// Returns a tensor of the wrong size: the SDK must refuse to copy it.
#[derive(Default)]
struct WrongSize;

impl Sampler for WrongSize {
    fn name(&self) -> &str {
        "wrong-size"
    }
    fn step(
        &mut self,
        _: usize,
        _: &[f32],
        x: &Tensor,
        _: &mut dyn Denoise,
        _: &dyn NoiseSource,
    ) -> Result<Tensor> {
        Tensor::zeros([x.elem_count() + 7], Device::Cpu)
    }
}

sonic_plugins::export_plugin! {
    host_min_version: "0.1.0",
    samplers: [
        { id: "panics", name: "Panics", version: "0", vendor: "tests", description: "panics in step", create: Panics::default },
        { id: "fails", name: "Fails", version: "0", vendor: "tests", description: "errors in step", create: Fails::default },
        { id: "wrong-size", name: "Wrong size", version: "0", vendor: "tests", description: "returns too many elements", create: WrongSize::default },
    ],
}

fn step_once(sampler: &mut dyn Sampler) -> Result<Tensor> {
    let sigmas = SvdSchedule::default().sigmas(4);
    let x = Tensor::ones([2, 3], Device::Cpu)?;
    let mut model = |x: &Tensor, _: f32| Ok(x.clone());
    sampler.step(0, &sigmas, &x, &mut model, &StepNoise::new(0, 0))
}

#[test]
fn panics_and_errors_in_a_plugin_come_back_as_errors() {
    let plugin = sonic_plugins::load_static(
        "in-process test plugin",
        &__sonic_plugin_export::sonic_plugin_entry,
    )
    .unwrap();
    assert_eq!(plugin.samplers.len(), 3);
    for (id, expected) in [
        ("panics", "deliberate panic inside the plugin"),
        ("fails", "deliberate error"),
        ("wrong-size", "elements"),
    ] {
        let mut sampler = plugin.create_sampler(id).unwrap();
        let err = step_once(&mut sampler).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains(id), "{id}: {err}");
        // The instance stays usable after a failure.
        assert!(step_once(&mut sampler).is_err());
    }
    step_once(&mut Euler).unwrap();
}
