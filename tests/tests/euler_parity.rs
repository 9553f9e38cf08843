//! The built-in Euler sampler against diffusers' EulerDiscreteScheduler in SVD's
//! configuration (fixture written by tests/fixtures/gen_euler.py).

use sonic_core::sampling::{
    scale_model_input, sigma_to_timestep, v_to_denoised, Euler, Sampler, StepNoise, SvdSchedule,
};
use sonic_core::{Device, Tensor};
use sonic_tests::{compare, fixture_dir, load_tensors};

const TOL: f64 = 1e-5;

fn fixture() -> std::collections::BTreeMap<String, Tensor> {
    load_tensors(&fixture_dir("euler_svd").join("io.safetensors"))
}

fn assert_close(name: &str, ours: &Tensor, reference: &Tensor) {
    let (rel, max) = compare(ours, reference);
    assert!(
        rel <= TOL,
        "{name}: relative error {rel:e} (max abs {max:e})"
    );
}

#[test]
fn sigmas_and_timesteps_match() {
    let io = fixture();
    let sigmas = SvdSchedule::default().sigmas(25);
    let ours = Tensor::from_vec(sigmas.clone(), [26], Device::Cpu).unwrap();
    assert_close("sigmas", &ours, &io["sigmas"]);
    let t: Vec<f32> = sigmas[..25].iter().map(|&s| sigma_to_timestep(s)).collect();
    assert_close(
        "timesteps",
        &Tensor::from_vec(t, [25], Device::Cpu).unwrap(),
        &io["timesteps"],
    );
}

#[test]
fn one_step_matches() {
    let io = fixture();
    let sigmas = SvdSchedule::default().sigmas(25);
    let x = &io["step_x"];
    assert_close(
        "scaled input",
        &x.mul_scalar(scale_model_input(sigmas[0])).unwrap(),
        &io["step_scaled"],
    );
    let v = io["step_v"].clone();
    let mut model = |x: &Tensor, s: f32| v_to_denoised(x, &v, s);
    let out = Euler
        .step(0, &sigmas, x, &mut model, &StepNoise::new(0, 0))
        .unwrap();
    assert_close("one step", &out, &io["step_out"]);
}

#[test]
fn full_loop_with_a_stand_in_model_matches() {
    let io = fixture();
    let sigmas = SvdSchedule::default().sigmas(25);
    // Sonic's start: reference latent plus σ_0 times the noise.
    let start = io["loop_ref"]
        .add(&io["loop_noise"].mul_scalar(sigmas[0]).unwrap())
        .unwrap();
    assert_close("start", &start, &io["loop_start"]);
    let mut model = |x: &Tensor, s: f32| {
        let x_in = x.mul_scalar(scale_model_input(s))?;
        let v = x_in
            .tanh()?
            .mul_scalar(0.5)?
            .add_scalar(0.1 * sigma_to_timestep(s))?;
        v_to_denoised(x, &v, s)
    };
    let mut x = start;
    for i in 0..25 {
        x = Euler
            .step(i, &sigmas, &x, &mut model, &StepNoise::new(0, i))
            .unwrap();
    }
    assert_close("25-step loop", &x, &io["loop_out"]);
}

/// The stand-in window model of the fixture: couples the frames of a window (axis 0).
struct WindowStandIn;

impl sonic_core::schedule::WindowDenoiser for WindowStandIn {
    fn denoise_window(
        &mut self,
        x: &Tensor,
        s: f32,
        _: usize,
        _: &[usize],
    ) -> sonic_core::Result<Tensor> {
        let x_in = x.mul_scalar(scale_model_input(s))?;
        let v = x_in
            .tanh()?
            .mul_scalar(0.5)?
            .add_scalar(0.1 * sigma_to_timestep(s))?
            .add(&x_in.mean(&[0], true)?.mul_scalar(0.2)?)?;
        v_to_denoised(x, &v, s)
    }
}

#[test]
fn sonic_compat_shift_reproduces_the_reference_loop() {
    use sonic_core::schedule::{scheduler, LongVideoScheduler};
    let io = fixture();
    let sigmas = SvdSchedule::default().sigmas(25);
    for spec in [
        "shift:alpha=7,fusion=sonic-compat",
        "shift:alpha=7,fusion=fuse-then-step",
    ] {
        let s: Box<dyn LongVideoScheduler> = scheduler(spec).unwrap();
        let out = s
            .run(
                io["shift_start"].clone(),
                25,
                &sigmas,
                &mut Euler,
                &mut WindowStandIn,
                0,
            )
            .unwrap();
        assert_close(spec, &out, &io["shift_out"]);
    }
}
