//! SVD's VAE, diffusers' `AutoencoderKLTemporalDecoder`: a 2d encoder to the latent mean and
//! a temporal decoder that mixes the frames of each decoded chunk. Built from diffusers'
//! `config.json` with its key names.

mod attention;
mod decoder;
mod encoder;
mod verify;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

pub use decoder::TemporalDecoder;
pub use encoder::VaeEncoder;
pub use verify::{verify_decode_fixture, verify_encode_fixture};

use crate::weights::{find_weight_files, read_config, VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Tensor};

/// The seam the pipeline uses: encode the reference image, decode latents chunk by chunk.
pub trait Vae: Send + Sync {
    /// Multiplies a latent mean into the diffusion model's space.
    fn scaling_factor(&self) -> f32;

    /// `image [n, 3, H, W]` in [−1, 1] → the latent distribution's mean, unscaled (SVD
    /// conditions on it as is and starts from it × [`scaling_factor`](Self::scaling_factor)).
    fn encode(&self, image: &Tensor) -> Result<Tensor>;

    /// Decodes diffusion latents `[f, C, h, w]` (divided by the scaling factor here) `chunk`
    /// frames at a time, handing each chunk's frames `[≤ chunk, 3, H, W]`, roughly in
    /// [−1, 1], to `sink` in order. Frames are mixed in time only within a chunk.
    fn decode_chunks(
        &self,
        latents: &Tensor,
        chunk: usize,
        sink: &mut dyn FnMut(Tensor) -> Result<()>,
    ) -> Result<()>;

    /// Every frame of [`decode_chunks`](Self::decode_chunks) at once, `[f, 3, H, W]`.
    fn decode(&self, latents: &Tensor, chunk: usize) -> Result<Tensor> {
        let mut frames = Vec::new();
        self.decode_chunks(latents, chunk, &mut |f| {
            frames.push(f);
            Ok(())
        })?;
        Tensor::cat(&frames.iter().collect::<Vec<_>>(), 0)
    }
}

/// diffusers' `AutoencoderKLTemporalDecoder` config; absent fields take diffusers' defaults.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct VaeConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    pub scaling_factor: f32,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            in_channels: 3,
            out_channels: 3,
            down_block_types: vec!["DownEncoderBlock2D".into()],
            block_out_channels: vec![64],
            layers_per_block: 1,
            latent_channels: 4,
            scaling_factor: 0.18215,
        }
    }
}

impl VaeConfig {
    /// SVD-xt's `vae/config.json`.
    pub fn svd() -> Self {
        VaeConfig {
            down_block_types: vec!["DownEncoderBlock2D".into(); 4],
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            ..VaeConfig::default()
        }
    }

    /// The checked `block_out_channels`.
    fn levels(&self) -> Result<&[usize]> {
        let boc = &self.block_out_channels;
        if boc.is_empty() || boc.len() != self.down_block_types.len() {
            return Err(Error::invalid(
                "vae config",
                format!(
                    "{} down block types for {} block_out_channels",
                    self.down_block_types.len(),
                    boc.len()
                ),
            ));
        }
        if let Some(c) = boc.iter().find(|&&c| c == 0 || c % 32 != 0) {
            return Err(Error::invalid(
                "vae config",
                format!("{c} channels are not a multiple of 32 (GroupNorm)"),
            ));
        }
        Ok(boc)
    }

    /// Image pixels per latent pixel along each side.
    pub fn downscale(&self) -> usize {
        1 << (self.block_out_channels.len().saturating_sub(1))
    }
}

#[derive(Clone, Debug)]
pub struct AutoencoderKLTemporalDecoder {
    pub config: VaeConfig,
    pub encoder: VaeEncoder,
    pub decoder: TemporalDecoder,
}

impl AutoencoderKLTemporalDecoder {
    pub fn new(config: VaeConfig, vb: &VarBuilder) -> Result<Self> {
        Ok(AutoencoderKLTemporalDecoder {
            encoder: VaeEncoder::new(&config, vb)?,
            decoder: TemporalDecoder::new(&config, vb)?,
            config,
        })
    }

    /// Loads a diffusers `vae/` folder (the fp16 variant when present), as f32 on `device`.
    pub fn from_folder(dir: &Path, device: Device) -> Result<Self> {
        let store = Arc::new(WeightStore::open(&find_weight_files(dir, Some("fp16"))?)?);
        Self::new(
            read_config(dir)?,
            &VarBuilder::new(store, DType::F32, device),
        )
    }
}

impl Vae for AutoencoderKLTemporalDecoder {
    fn scaling_factor(&self) -> f32 {
        self.config.scaling_factor
    }

    fn encode(&self, image: &Tensor) -> Result<Tensor> {
        let d = image.dims();
        let factor = self.config.downscale();
        if d.len() != 4
            || d[1] != self.config.in_channels
            || !d[2].is_multiple_of(factor)
            || !d[3].is_multiple_of(factor)
        {
            return Err(Error::invalid(
                "vae encode",
                format!(
                    "image {} is not [n, {}, H, W] with H and W multiples of {factor}",
                    image.shape(),
                    self.config.in_channels
                ),
            ));
        }
        self.encoder.encode_latent_mean(image)
    }

    fn decode_chunks(
        &self,
        latents: &Tensor,
        chunk: usize,
        sink: &mut dyn FnMut(Tensor) -> Result<()>,
    ) -> Result<()> {
        let d = latents.dims();
        if chunk == 0 || d.len() != 4 || d[1] != self.config.latent_channels {
            return Err(Error::invalid(
                "vae decode",
                format!(
                    "latents {} are not [frames, {}, h, w], or chunk {chunk} is 0",
                    latents.shape(),
                    self.config.latent_channels
                ),
            ));
        }
        let unscale = 1.0 / self.config.scaling_factor;
        for start in (0..d[0]).step_by(chunk) {
            let len = chunk.min(d[0] - start);
            let z = latents.narrow(0, start, len)?.mul_scalar(unscale)?;
            sink(self.decoder.decode(&z, len)?)?;
        }
        Ok(())
    }
}
