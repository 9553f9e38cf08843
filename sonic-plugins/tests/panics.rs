//! A Rust plugin whose samplers and audio encoders panic or fail, linked into this test and
//! driven through the same handshake, vtables and checks as a loaded library: a panic must
//! come back as an error, and the host must keep working.

use sonic_core::models::{AudioEncoder, AudioEncoderInfo};
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

fn bad(msg: String) -> Error {
    Error::Component {
        component: "bad encoder".into(),
        msg,
    }
}

/// An audio encoder that misbehaves in the way its name says.
struct BadEncoder(&'static str);

impl BadEncoder {
    fn create(which: &'static str, config: Option<&str>) -> Result<BadEncoder> {
        match (which, config) {
            ("panics-in-create", _) => panic!("deliberate panic while creating"),
            (_, Some(c)) => Err(bad(format!("refuses {c}"))),
            _ => Ok(BadEncoder(which)),
        }
    }
}

impl AudioEncoder for BadEncoder {
    fn info(&self) -> AudioEncoderInfo {
        if self.0 == "panics-in-info" {
            panic!("deliberate panic in info");
        }
        AudioEncoderInfo {
            sample_rate: 16_000,
            frames_per_second: 50.0,
            layers: 2,
            hidden_size: 4,
        }
    }
    fn frames_for(&self, samples: usize) -> usize {
        if self.0 == "panics-in-frames" {
            panic!("deliberate panic in frames_for");
        }
        samples / 320
    }
    fn encode(&self, samples: &[f32]) -> Result<Vec<Tensor>> {
        let frames = self.frames_for(samples.len());
        match self.0 {
            "panics-in-encode" => panic!("deliberate panic in encode"),
            "fails-in-encode" => Err(bad("deliberate encode error".into())),
            "wrong-shape" => Ok(vec![Tensor::zeros([frames, 5], Device::Cpu)?; 2]),
            "one-layer" => Ok(vec![Tensor::zeros([frames, 4], Device::Cpu)?]),
            _ => Ok(vec![Tensor::ones([frames, 4], Device::Cpu)?; 2]),
        }
    }
}

sonic_plugins::export_plugin! {
    host_min_version: "0.1.0",
    samplers: [
        { id: "panics", name: "Panics", version: "0", vendor: "tests", description: "panics in step", create: Panics::default },
        { id: "fails", name: "Fails", version: "0", vendor: "tests", description: "errors in step", create: Fails::default },
        { id: "wrong-size", name: "Wrong size", version: "0", vendor: "tests", description: "returns too many elements", create: WrongSize::default },
    ],
    audio_encoders: [
        { id: "fine", name: "Fine", version: "0", vendor: "tests", description: "works; refuses any config", create: |c| BadEncoder::create("fine", c) },
        { id: "panics-in-create", name: "P", version: "0", vendor: "tests", description: "", create: |c| BadEncoder::create("panics-in-create", c) },
        { id: "panics-in-info", name: "P", version: "0", vendor: "tests", description: "", create: |c| BadEncoder::create("panics-in-info", c) },
        { id: "panics-in-frames", name: "P", version: "0", vendor: "tests", description: "", create: |c| BadEncoder::create("panics-in-frames", c) },
        { id: "panics-in-encode", name: "P", version: "0", vendor: "tests", description: "", create: |c| BadEncoder::create("panics-in-encode", c) },
        { id: "fails-in-encode", name: "F", version: "0", vendor: "tests", description: "", create: |c| BadEncoder::create("fails-in-encode", c) },
        { id: "wrong-shape", name: "W", version: "0", vendor: "tests", description: "", create: |c| BadEncoder::create("wrong-shape", c) },
        { id: "one-layer", name: "O", version: "0", vendor: "tests", description: "", create: |c| BadEncoder::create("one-layer", c) },
    ],
}

fn plugin() -> sonic_plugins::LoadedPlugin {
    sonic_plugins::load_static(
        "in-process test plugin",
        &__sonic_plugin_export::sonic_plugin_entry,
    )
    .unwrap()
}

fn step_once(sampler: &mut dyn Sampler) -> Result<Tensor> {
    let sigmas = SvdSchedule::default().sigmas(4);
    let x = Tensor::ones([2, 3], Device::Cpu)?;
    let mut model = |x: &Tensor, _: f32| Ok(x.clone());
    sampler.step(0, &sigmas, &x, &mut model, &StepNoise::new(0, 0))
}

#[test]
fn panics_and_errors_in_a_plugin_come_back_as_errors() {
    let plugin = plugin();
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

#[test]
fn panics_and_errors_in_a_plugin_audio_encoder_come_back_as_errors() {
    let plugin = plugin();
    assert_eq!(plugin.audio_encoders.len(), 8);
    let samples = vec![0.25f32; 3200];
    let fine = plugin.create_audio_encoder("fine", None).unwrap();
    let states = fine.encode(&samples).unwrap();
    assert_eq!(states.len(), 2);
    assert!(states.iter().all(|s| s.dims() == [10, 4]));

    for (id, config, expected) in [
        ("panics-in-create", None, "deliberate panic while creating"),
        ("panics-in-info", None, "deliberate panic in info"),
        ("fine", Some("{}"), "refuses {}"),
    ] {
        let err = plugin
            .create_audio_encoder(id, config)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(expected) && err.contains(id), "{id}: {err}");
    }
    for (id, expected) in [
        ("panics-in-frames", "deliberate panic in frames_for"),
        ("panics-in-encode", "deliberate panic in encode"),
        ("fails-in-encode", "deliberate encode error"),
        ("wrong-shape", "hidden state 0 is [10, 5], expected [10, 4]"),
        ("one-layer", "1 hidden states, info says 2"),
    ] {
        let encoder = plugin.create_audio_encoder(id, None).unwrap();
        let err = encoder.encode(&samples).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains(id), "{id}: {err}");
        // The instance stays usable after a failure.
        assert!(encoder.encode(&samples).is_err());
    }
    assert_eq!(fine.encode(&samples).unwrap().len(), 2);
    step_once(&mut Euler).unwrap();
}
