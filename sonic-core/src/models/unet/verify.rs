//! Fixture runners: `model.svd-unet` (stock SVD, context given once per video as diffusers
//! takes it) and `model.sonic-unet` (per-frame image and audio tokens, face mask).

use std::collections::BTreeMap;

use super::{AudioTokens, UNetConditioning, UNetSpatioTemporalConditionModel};
use crate::verify::Fixture;
use crate::weights::read_config;
use crate::{Device, Error, Result, Tensor};

type Outputs = BTreeMap<String, Tensor>;

pub fn verify_svd_fixture(fx: &Fixture, device: Device) -> Result<Outputs> {
    run(fx, device, false)
}

pub fn verify_sonic_fixture(fx: &Fixture, device: Device) -> Result<Outputs> {
    run(fx, device, true)
}

fn run(fx: &Fixture, device: Device, sonic: bool) -> Result<Outputs> {
    let unet = UNetSpatioTemporalConditionModel::new(read_config(&fx.dir)?, &fx.weights(device)?)?;
    if unet.has_audio_adapters() != sonic {
        return Err(Error::file(
            fx.dir.join("weights.safetensors"),
            format!(
                "audio adapters present: {}, expected {sonic}",
                unet.has_audio_adapters()
            ),
        ));
    }
    let runs: Vec<String> = fx.param("runs")?;
    let mut out = Outputs::new();
    for run in runs {
        let input = |name: &str| fx.tensor(&format!("{run}.{name}"), device);
        let sample = input("sample")?;
        let cond = if sonic {
            UNetConditioning {
                image_tokens: input("image_tokens")?,
                audio: Some(AudioTokens {
                    tokens: input("audio_tokens")?,
                    face_mask: Some(fx.tensor("face_mask", device)?),
                    scale: fx.param("audio_scale")?,
                }),
                added_time_ids: input("added_time_ids")?,
            }
        } else {
            UNetConditioning::svd(
                &input("encoder_hidden_states")?,
                sample.dims()[1],
                input("added_time_ids")?,
            )?
        };
        let timesteps = input("timesteps")?.to_vec()?;
        let mut traced = Vec::new();
        let result = unet.forward_traced(&sample, &timesteps, &cond, &mut |name, t| {
            traced.push((format!("{run}.{name}"), t.clone()))
        })?;
        out.extend(traced);
        out.insert(format!("{run}.out"), result);
    }
    Ok(out)
}
