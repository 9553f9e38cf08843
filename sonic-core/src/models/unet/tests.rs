use std::sync::Arc;

use super::*;
use crate::verify::testing::{assert_passes, fixture};
use crate::weights::{read_config, VarBuilder, WeightStore};
use crate::{DType, Device, Tensor};

#[test]
fn svd_fixture_matches_diffusers() {
    assert_passes("svd_unet");
}

#[test]
fn sonic_fixture_matches_the_spec() {
    assert_passes("sonic_unet");
}

fn fixture_weights(name: &str) -> WeightStore {
    WeightStore::open(&[fixture(name).join("weights.safetensors")]).unwrap()
}

fn builder(store: WeightStore) -> VarBuilder {
    VarBuilder::new(Arc::new(store), DType::F32, Device::Cpu)
}

fn fixture_model(name: &str) -> UNetSpatioTemporalConditionModel {
    UNetSpatioTemporalConditionModel::new(config(name), &builder(fixture_weights(name))).unwrap()
}

fn config(name: &str) -> UNetConfig {
    read_config(&fixture(name)).unwrap()
}

/// The fixture's weights without `dropped`, as a new file.
fn weights_without(name: &str, dropped: &str) -> (tempfile::TempDir, WeightStore) {
    let store = fixture_weights(name);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let kept = store
        .keys()
        .filter(|k| *k != dropped)
        .map(|k| (k.to_string(), store.raw(k).unwrap()));
    safetensors::serialize_to_file(kept, None, &path).unwrap();
    (dir, WeightStore::open(&[path]).unwrap())
}

#[test]
fn a_missing_audio_projection_is_named() {
    let key =
        "mid_block.attentions.0.temporal_transformer_blocks.0.attn2.processor.to_v_ip.0.weight";
    let (_dir, store) = weights_without("sonic_unet", key);
    let err = UNetSpatioTemporalConditionModel::new(config("sonic_unet"), &builder(store))
        .unwrap_err()
        .to_string();
    assert!(err.contains(key), "{err}");
}

#[test]
fn checkpoints_pick_stock_or_sonic_behaviour() {
    let svd = UNetSpatioTemporalConditionModel::new(
        config("svd_unet"),
        &builder(fixture_weights("svd_unet")),
    )
    .unwrap();
    let sonic = UNetSpatioTemporalConditionModel::new(
        config("sonic_unet"),
        &builder(fixture_weights("sonic_unet")),
    )
    .unwrap();
    assert!(!svd.has_audio_adapters() && sonic.has_audio_adapters());
    assert_eq!(svd.temporal_context(), TemporalContext::FirstFrame);
    assert_eq!(sonic.temporal_context(), TemporalContext::FrameMean);

    let (b, f) = (1, 2);
    let sample = Tensor::zeros([b, f, 8, 8, 12], Device::Cpu).unwrap();
    let cond = |audio: bool| UNetConditioning {
        image_tokens: Tensor::zeros([b * f, 1, 16], Device::Cpu).unwrap(),
        audio: audio.then(|| AudioTokens {
            tokens: Tensor::zeros([b * f, 3, 16], Device::Cpu).unwrap(),
            face_mask: None,
            scale: 1.0,
        }),
        added_time_ids: Tensor::zeros([b, 3], Device::Cpu).unwrap(),
    };
    let err = svd
        .forward(&sample, &[0.5], &cond(true))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no audio adapters"), "{err}");
    let err = sonic
        .forward(&sample, &[0.5], &cond(false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs audio tokens"), "{err}");
    assert_eq!(
        sonic.forward(&sample, &[0.5], &cond(true)).unwrap().dims(),
        &[b, f, 4, 8, 12]
    );
}

#[test]
fn bad_inputs_are_errors_naming_shapes() {
    let svd = UNetSpatioTemporalConditionModel::new(
        config("svd_unet"),
        &builder(fixture_weights("svd_unet")),
    )
    .unwrap();
    let cond = UNetConditioning {
        image_tokens: Tensor::zeros([3, 1, 16], Device::Cpu).unwrap(),
        audio: None,
        added_time_ids: Tensor::zeros([1, 3], Device::Cpu).unwrap(),
    };
    let sample = Tensor::zeros([1, 2, 8, 8, 12], Device::Cpu).unwrap();
    let err = svd.forward(&sample, &[0.5], &cond).unwrap_err().to_string();
    assert!(err.contains("image tokens [3, 1, 16]"), "{err}");
    let err = svd
        .forward(&sample, &[0.5, 0.1], &cond)
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 timesteps"), "{err}");
    let wrong_channels = Tensor::zeros([1, 3, 4, 8, 12], Device::Cpu).unwrap();
    let err = svd
        .forward(&wrong_channels, &[0.5], &cond)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1, 3, 4, 8, 12]"), "{err}");

    // Two levels: the latent must halve evenly once.
    let sonic = UNetSpatioTemporalConditionModel::new(
        config("sonic_unet"),
        &builder(fixture_weights("sonic_unet")),
    )
    .unwrap();
    let odd = Tensor::zeros([1, 3, 8, 7, 12], Device::Cpu).unwrap();
    let err = sonic.forward(&odd, &[0.5], &cond).unwrap_err().to_string();
    assert!(err.contains("7x12"), "{err}");
}

#[test]
fn a_second_audio_adapter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let store = fixture_weights("sonic_unet");
    let key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_ip.0.weight";
    let raw = store.raw(key).unwrap();
    let second = key.replace("to_k_ip.0", "to_k_ip.1");
    let tensors = store
        .keys()
        .map(|k| (k.to_string(), store.raw(k).unwrap()))
        .chain([(second.clone(), raw)]);
    safetensors::serialize_to_file(tensors, None, &path).unwrap();
    let err = UNetSpatioTemporalConditionModel::new(
        config("sonic_unet"),
        &builder(WeightStore::open(&[path]).unwrap()),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&second), "{err}");
}

#[test]
fn svd_xt_config_parses_to_the_defaults() {
    let json = r#"{
      "_class_name": "UNetSpatioTemporalConditionModel",
      "_diffusers_version": "0.24.0.dev0",
      "addition_time_embed_dim": 256,
      "block_out_channels": [320, 640, 1280, 1280],
      "cross_attention_dim": 1024,
      "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                           "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
      "in_channels": 8,
      "layers_per_block": 2,
      "num_attention_heads": [5, 10, 20, 20],
      "num_frames": 25,
      "out_channels": 4,
      "projection_class_embeddings_input_dim": 768,
      "sample_size": 96,
      "transformer_layers_per_block": 1,
      "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
                         "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"]
    }"#;
    let parsed: UNetConfig = serde_json::from_str(json).unwrap();
    assert_eq!(parsed, UNetConfig::svd_xt());
    let mut bad = UNetConfig::svd_xt();
    bad.num_attention_heads = PerLevel::Each(vec![5, 10, 20]);
    assert!(bad
        .levels()
        .unwrap_err()
        .to_string()
        .contains("num_attention_heads"));
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut state = seed;
    let data = (0..n)
        .map(|_| {
            // xorshift: deterministic, dependency-free test values in [-1, 1).
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_vec(data, shape.to_vec(), Device::Cpu).unwrap()
}

fn sonic_conditioning(frames: usize) -> SonicConditioning {
    SonicConditioning {
        image_embeds: randn(&[1, 16], 1),
        image_latent: randn(&[1, 4, 8, 12], 2),
        audio_tokens: randn(&[frames, 6, 16], 3),
        uncond_audio_tokens: randn(&[6, 16], 4),
        buckets: randn(&[frames, 2], 5).affine(20.0, 40.0).unwrap(),
        face_mask: Some(
            crate::verify::Fixture::open(&fixture("sonic_unet"))
                .unwrap()
                .tensor("face_mask", Device::Cpu)
                .unwrap(),
        ),
        fps: 12.5,
        audio_scale: 1.0,
    }
}

/// One branch alone: `with_image` selects the image embedding and latent, `audio` the
/// window's audio tokens (silence otherwise).
fn single_branch(
    unet: &UNetSpatioTemporalConditionModel,
    c: &SonicConditioning,
    x: &Tensor,
    sigma: f32,
    frames: &[usize],
    with_image: bool,
    audio: bool,
) -> Tensor {
    use crate::sampling::{scale_model_input, sigma_to_timestep};
    let f = frames.len();
    let keep = if with_image { 1.0 } else { 0.0 };
    let latent = c
        .image_latent
        .index_select(0, &vec![0; f])
        .unwrap()
        .mul_scalar(keep)
        .unwrap();
    let x_in = x.mul_scalar(scale_model_input(sigma)).unwrap();
    let sample = Tensor::cat(&[&x_in, &latent], 1)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let tokens = if audio {
        c.audio_tokens.index_select(0, frames).unwrap()
    } else {
        c.uncond_audio_tokens
            .unsqueeze(0)
            .unwrap()
            .index_select(0, &vec![0; f])
            .unwrap()
    };
    let buckets = c
        .buckets
        .index_select(0, frames)
        .unwrap()
        .mean(&[0], false)
        .unwrap()
        .to_vec()
        .unwrap();
    let cond = UNetConditioning {
        image_tokens: c
            .image_embeds
            .unsqueeze(0)
            .unwrap()
            .index_select(0, &vec![0; f])
            .unwrap()
            .mul_scalar(keep)
            .unwrap(),
        audio: Some(AudioTokens {
            tokens,
            face_mask: c.face_mask.clone(),
            scale: c.audio_scale,
        }),
        added_time_ids: Tensor::from_vec(vec![c.fps, buckets[0], buckets[1]], [1, 3], Device::Cpu)
            .unwrap(),
    };
    unet.forward(&sample, &[sigma_to_timestep(sigma)], &cond)
        .unwrap()
        .squeeze(0)
        .unwrap()
}

#[test]
fn the_denoiser_batches_the_three_guidance_branches_in_order() {
    use crate::sampling::{GuidanceSchedule, MultiCondGuidance};
    use crate::verify::errors;
    let unet = UNetSpatioTemporalConditionModel::new(
        config("sonic_unet"),
        &builder(fixture_weights("sonic_unet")),
    )
    .unwrap();
    let frames = [4, 5, 6, 0];
    let x = randn(&[4, 4, 8, 12], 9).mul_scalar(3.0).unwrap();
    let sigma = 4.2;
    let guided = |image: f32, audio: f32| {
        let guidance = MultiCondGuidance {
            image: GuidanceSchedule::constant(image),
            audio: GuidanceSchedule::constant(audio),
        };
        SonicDenoiser::new(&unet, sonic_conditioning(7), guidance, 10)
            .unwrap()
            .guided_v(&x, sigma, 3, &frames)
            .unwrap()
    };
    let c = sonic_conditioning(7);
    // Scales 0 keep the unconditional branch; scales 1 telescope to the full condition.
    let uncond = single_branch(&unet, &c, &x, sigma, &frames, false, false);
    let (rel, _) = errors(&guided(0.0, 0.0), &uncond).unwrap();
    assert!(rel < 1e-5, "uncond {rel}");
    let full = single_branch(&unet, &c, &x, sigma, &frames, true, true);
    let (rel, _) = errors(&guided(1.0, 1.0), &full).unwrap();
    assert!(rel < 1e-5, "full {rel}");
    // Image guidance alone lands on the image branch.
    let image = single_branch(&unet, &c, &x, sigma, &frames, true, false);
    let (rel, _) = errors(&guided(1.0, 0.0), &image).unwrap();
    assert!(rel < 1e-5, "image {rel}");
}

#[test]
fn the_denoiser_runs_under_a_long_video_scheduler() {
    use crate::sampling::{Euler, MultiCondGuidance, SvdSchedule};
    use crate::schedule::scheduler;
    let unet = UNetSpatioTemporalConditionModel::new(
        config("sonic_unet"),
        &builder(fixture_weights("sonic_unet")),
    )
    .unwrap();
    let mut denoiser = SonicDenoiser::new(
        &unet,
        sonic_conditioning(7),
        MultiCondGuidance::default(),
        2,
    )
    .unwrap();
    assert_eq!(denoiser.native_window(), 5);
    let sigmas = SvdSchedule::default().sigmas(2);
    let start = randn(&[7, 4, 8, 12], 11).mul_scalar(sigmas[0]).unwrap();
    let out = scheduler("shift:alpha=2")
        .unwrap()
        .run(start, 5, &sigmas, &mut Euler, &mut denoiser, 0)
        .unwrap();
    assert_eq!(out.dims(), &[7, 4, 8, 12]);
    assert!(out.to_vec().unwrap().iter().all(|v| v.is_finite()));

    let svd = UNetSpatioTemporalConditionModel::new(
        config("svd_unet"),
        &builder(fixture_weights("svd_unet")),
    )
    .unwrap();
    assert!(
        SonicDenoiser::new(&svd, sonic_conditioning(7), MultiCondGuidance::default(), 2).is_err()
    );
}

/// Latents and the audio tokens stay f32 while the UNet's weights may be half precision, so
/// the forward casts its inputs to the weights' dtype and its output back to the sample's.
/// The CPU computes in f32 only, so here the roles are mirrored: f32 weights, half inputs.
#[test]
fn inputs_of_another_dtype_are_cast_at_the_boundary() {
    let sonic = fixture_model("sonic_unet");
    let (b, f) = (1, 3);
    let through = |t: Tensor, dtype: DType| t.to_dtype(dtype).unwrap();
    let sample = through(randn(&[b, f, 8, 8, 12], 1), DType::F16);
    let image = through(randn(&[b * f, 1, 16], 2), DType::BF16);
    let audio = through(randn(&[b * f, 3, 16], 3), DType::F16);
    let mask = Tensor::ones([1, 1, 8, 12], Device::Cpu).unwrap();
    let cond = |image: &Tensor, audio: &Tensor| UNetConditioning {
        image_tokens: image.clone(),
        audio: Some(AudioTokens {
            tokens: audio.clone(),
            face_mask: Some(mask.clone()),
            scale: 1.0,
        }),
        added_time_ids: Tensor::from_slice(&[24.0, 60.0, 120.0], [b, 3], Device::Cpu).unwrap(),
    };
    let half = sonic
        .forward(&sample, &[0.5], &cond(&image, &audio))
        .unwrap();
    assert_eq!(half.dtype(), DType::F16);
    let f32s = |t: &Tensor| through(t.clone(), DType::F32);
    let full = sonic
        .forward(&f32s(&sample), &[0.5], &cond(&f32s(&image), &f32s(&audio)))
        .unwrap();
    assert_eq!(full.dtype(), DType::F32);
    assert_eq!(
        half.to_vec().unwrap(),
        through(full, DType::F16).to_vec().unwrap()
    );
}
