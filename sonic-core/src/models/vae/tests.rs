use std::sync::Arc;

use super::*;
use crate::verify::errors;
use crate::verify::testing::{assert_passes, fixture};

#[test]
fn encode_fixture_matches_diffusers() {
    assert_passes("svd_vae_encode");
}

#[test]
fn decode_fixture_matches_diffusers() {
    assert_passes("svd_vae_decode");
}

/// The encoder of one fixture and the decoder of the other (their configs differ only in
/// layers per block, which the trait does not read).
fn assembled() -> AutoencoderKLTemporalDecoder {
    let part = |name: &str| {
        let dir = fixture(name);
        let config: VaeConfig = read_config(&dir).unwrap();
        let store = WeightStore::open(&[dir.join("weights.safetensors")]).unwrap();
        (
            config,
            VarBuilder::new(Arc::new(store), DType::F32, Device::Cpu),
        )
    };
    let (enc_config, enc_vb) = part("svd_vae_encode");
    let (config, dec_vb) = part("svd_vae_decode");
    AutoencoderKLTemporalDecoder {
        encoder: VaeEncoder::new(&enc_config, &enc_vb).unwrap(),
        decoder: TemporalDecoder::new(&config, &dec_vb).unwrap(),
        config,
    }
}

fn io(name: &str, key: &str) -> Tensor {
    crate::verify::Fixture::open(&fixture(name))
        .unwrap()
        .tensor(key, Device::Cpu)
        .unwrap()
}

#[test]
fn the_vae_seam_unscales_and_streams_chunks() {
    let vae = assembled();
    let latents = io("svd_vae_decode", "f5.latents")
        .mul_scalar(vae.scaling_factor())
        .unwrap();
    let mut sizes = Vec::new();
    vae.decode_chunks(&latents, 3, &mut |frames| {
        sizes.push(frames.dims()[0]);
        Ok(())
    })
    .unwrap();
    assert_eq!(sizes, [3, 2]);
    let decoded = vae.decode(&latents, 3).unwrap();
    let (rel, _) = errors(&decoded, &io("svd_vae_decode", "f5.chunked")).unwrap();
    assert!(rel < 1e-4, "{rel}");

    let mean = vae.encode(&io("svd_vae_encode", "image")).unwrap();
    let (rel, _) = errors(&mean, &io("svd_vae_encode", "latent_mean")).unwrap();
    assert!(rel < 1e-4, "{rel}");
}

#[test]
fn bad_vae_inputs_are_errors() {
    let vae = assembled();
    let odd = Tensor::zeros([1, 3, 15, 24], Device::Cpu).unwrap();
    assert!(vae
        .encode(&odd)
        .unwrap_err()
        .to_string()
        .contains("[1, 3, 15, 24]"));
    let latents = Tensor::zeros([2, 4, 8, 12], Device::Cpu).unwrap();
    assert!(vae.decode(&latents, 0).is_err());
    let wrong = Tensor::zeros([2, 3, 8, 12], Device::Cpu).unwrap();
    assert!(vae
        .decode(&wrong, 8)
        .unwrap_err()
        .to_string()
        .contains("[2, 3, 8, 12]"));
}

#[test]
fn svd_config_parses() {
    let json = r#"{
      "_class_name": "AutoencoderKLTemporalDecoder",
      "_diffusers_version": "0.24.0.dev0",
      "block_out_channels": [128, 256, 512, 512],
      "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                           "DownEncoderBlock2D"],
      "force_upcast": true,
      "in_channels": 3,
      "latent_channels": 4,
      "layers_per_block": 2,
      "out_channels": 3,
      "sample_size": 768,
      "scaling_factor": 0.18215
    }"#;
    let parsed: VaeConfig = serde_json::from_str(json).unwrap();
    assert_eq!(parsed, VaeConfig::svd());
    assert_eq!(parsed.downscale(), 8);
}

/// The decoder and encoder cast their input to the weights' dtype and their output back,
/// so f32 latents and pixels meet half-precision weights on CUDA. On the CPU (f32 only)
/// the roles are mirrored: half inputs, f32 weights.
#[test]
fn inputs_of_another_dtype_are_cast_at_the_boundary() {
    let vae = assembled();
    let half = |t: Tensor| t.to_dtype(DType::F16).unwrap();
    let full = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let z = half(io("svd_vae_decode", "f5.latents"));
    let frames = vae.decoder.decode(&z, 5).unwrap();
    assert_eq!(frames.dtype(), DType::F16);
    let want = half(vae.decoder.decode(&full(&z), 5).unwrap());
    assert_eq!(frames.to_vec().unwrap(), want.to_vec().unwrap());

    let image = half(io("svd_vae_encode", "image"));
    let mean = vae.encoder.encode_latent_mean(&image).unwrap();
    assert_eq!(mean.dtype(), DType::F16);
    let want = half(vae.encoder.encode_latent_mean(&full(&image)).unwrap());
    assert_eq!(mean.to_vec().unwrap(), want.to_vec().unwrap());
}
