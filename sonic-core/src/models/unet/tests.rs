use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::verify::verify;
use crate::weights::{read_config, VarBuilder, WeightStore};
use crate::{DType, Device, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn assert_passes(name: &str) {
    let report = verify(&fixture(name), Device::Cpu).unwrap();
    for o in &report.outputs {
        println!(
            "{name} {:24} rel {:.3e} max {:.3e}",
            o.name, o.rel_error, o.max_abs_error
        );
    }
    assert!(report.passed(), "{name} failed");
}

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
