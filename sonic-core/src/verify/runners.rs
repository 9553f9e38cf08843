//! The runner of each fixture kind: it rebuilds the component from the fixture and
//! produces every output the fixture's meta names.

use std::collections::BTreeMap;

use super::{Fixture, Runner};
use crate::sampling::{
    scale_model_input, sigma_to_timestep, v_to_denoised, Euler, Sampler, StepNoise, SvdSchedule,
};
use crate::schedule::{scheduler, WindowDenoiser};
use crate::{Device, Result, Tensor};

pub fn builtin_runner(kind: &str) -> Option<Runner> {
    Some(match kind {
        "sampler.euler-svd" => euler_svd,
        "model.sonic-audio-conditioning" => crate::models::sonic_audio::verify_fixture,
        "image.pil-resize" => crate::image::fixtures::pil_resize,
        "image.clip-preprocess" => crate::image::fixtures::clip_preprocess,
        "image.sonic-prep" => crate::image::fixtures::sonic_prep,
        "model.whisper-encoder" => crate::models::whisper::verify_fixture,
        "model.clip-vision" => crate::models::clip_vision::verify_fixture,
        "model.svd-unet" => crate::models::unet::verify_svd_fixture,
        "model.sonic-unet" => crate::models::unet::verify_sonic_fixture,
        "model.svd-vae-encode" => crate::models::vae::verify_encode_fixture,
        "model.svd-vae-decode" => crate::models::vae::verify_decode_fixture,
        "audio.whisper-log-mel" => crate::audio::verify_log_mel,
        "model.rife-ifnet" => crate::models::rife::verify_fixture,
        "op.warp" => crate::models::rife::verify_warp_fixture,
        "model.yolo-face" => crate::models::face::verify_yolo_fixture,
        _ => return None,
    })
}

type Outputs = BTreeMap<String, Tensor>;

/// The fixture's closed-form stand-in for a UNet: `v = 0.5·tanh(x_in) + 0.1·t`.
fn stand_in(x: &Tensor, sigma: f32) -> Result<Tensor> {
    let x_in = x.mul_scalar(scale_model_input(sigma))?;
    x_in.tanh()?
        .mul_scalar(0.5)?
        .add_scalar(0.1 * sigma_to_timestep(sigma))
}

/// The stand-in with frames coupled: plus 0.2 × the window's mean scaled input.
struct WindowStandIn;

impl WindowDenoiser for WindowStandIn {
    fn denoise_window(&mut self, x: &Tensor, sigma: f32, _: usize, _: &[usize]) -> Result<Tensor> {
        let coupled = x
            .mul_scalar(scale_model_input(sigma))?
            .mean(&[0], true)?
            .mul_scalar(0.2)?;
        v_to_denoised(x, &stand_in(x, sigma)?.add(&coupled)?, sigma)
    }
}

/// SVD's Euler scheduler: sigmas, timesteps, one step, a 25-step loop and Sonic's
/// shift-fusion loop.
fn euler_svd(fx: &Fixture, device: Device) -> Result<Outputs> {
    let steps: usize = fx.param("steps")?;
    let sigmas = SvdSchedule::default().sigmas(steps);
    let mut out = Outputs::new();
    out.insert(
        "sigmas".into(),
        Tensor::from_slice(&sigmas, [steps + 1], device)?,
    );
    let t: Vec<f32> = sigmas[..steps]
        .iter()
        .map(|&s| sigma_to_timestep(s))
        .collect();
    out.insert("timesteps".into(), Tensor::from_vec(t, [steps], device)?);

    let x = fx.tensor("step_x", device)?;
    out.insert(
        "step_scaled".into(),
        x.mul_scalar(scale_model_input(sigmas[0]))?,
    );
    let v = fx.tensor("step_v", device)?;
    let mut given = |x: &Tensor, s: f32| v_to_denoised(x, &v, s);
    out.insert(
        "step_out".into(),
        Euler.step(0, &sigmas, &x, &mut given, &StepNoise::new(0, 0))?,
    );

    let start = fx
        .tensor("loop_ref", device)?
        .add(&fx.tensor("loop_noise", device)?.mul_scalar(sigmas[0])?)?;
    out.insert("loop_start".into(), start.clone());
    let mut model = |x: &Tensor, s: f32| v_to_denoised(x, &stand_in(x, s)?, s);
    let mut x = start;
    for i in 0..steps {
        x = Euler.step(i, &sigmas, &x, &mut model, &StepNoise::new(0, i))?;
    }
    out.insert("loop_out".into(), x);

    let shift: serde_json::Value = fx.param("shift")?;
    let (window, alpha) = (
        shift["window"].as_u64().unwrap_or(25) as usize,
        shift["shift_offset"].as_u64().unwrap_or(7),
    );
    let fused = scheduler(&format!("shift:alpha={alpha},fusion=sonic-compat"))?;
    let result = fused.run(
        fx.tensor("shift_start", device)?,
        window,
        &sigmas,
        &mut Euler,
        &mut WindowStandIn,
        0,
    )?;
    out.insert("shift_out".into(), result);
    Ok(out)
}
