//! Fixture runners: `model.svd-vae-encode` and `model.svd-vae-decode`. Each fixture holds
//! only the weights of the half it exercises.

use std::collections::BTreeMap;

use super::{TemporalDecoder, VaeConfig, VaeEncoder};
use crate::verify::Fixture;
use crate::weights::read_config;
use crate::{Device, Result, Tensor};

type Outputs = BTreeMap<String, Tensor>;

pub fn verify_encode_fixture(fx: &Fixture, device: Device) -> Result<Outputs> {
    let config: VaeConfig = read_config(&fx.dir)?;
    let encoder = VaeEncoder::new(&config, &fx.weights(device)?)?;
    let mut out = Outputs::new();
    let mean =
        encoder.encode_latent_mean_traced(&fx.tensor("image", device)?, &mut |name, t| {
            out.insert(name.to_string(), t.clone());
        })?;
    out.insert("latent_mean".into(), mean);
    Ok(out)
}

/// Each run decoded as one chunk; the runs' last one also in chunks of `chunk` frames.
pub fn verify_decode_fixture(fx: &Fixture, device: Device) -> Result<Outputs> {
    let config: VaeConfig = read_config(&fx.dir)?;
    let decoder = TemporalDecoder::new(&config, &fx.weights(device)?)?;
    let runs: Vec<String> = fx.param("runs")?;
    let chunk: usize = fx.param("chunk")?;
    let mut out = Outputs::new();
    for run in &runs {
        let z = fx.tensor(&format!("{run}.latents"), device)?;
        let frames = z.dims()[0];
        let decoded = decoder.decode_traced(&z, frames, &mut |name, t| {
            out.insert(format!("{run}.{name}"), t.clone());
        })?;
        out.insert(format!("{run}.frames"), decoded);
        let mut chunks = Vec::new();
        for start in (0..frames).step_by(chunk) {
            let len = chunk.min(frames - start);
            chunks.push(decoder.decode(&z.narrow(0, start, len)?, len)?);
        }
        out.insert(
            format!("{run}.chunked"),
            Tensor::cat(&chunks.iter().collect::<Vec<_>>(), 0)?,
        );
    }
    Ok(out)
}
