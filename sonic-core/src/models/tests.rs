//! Loading the encoders from model folders laid out as upstream ships them. Numerical parity
//! is the fixtures' job (tests/fixtures/{whisper_encoder,clip_vision_*}); these tests reuse
//! their files and `tests/fixtures/whisper_tiny_layout`, all written by
//! `tests/fixtures/gen_encoders.py`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use half::f16;

use super::clip_vision::{ClipVision, ClipVisionConfig};
use super::whisper::WhisperEncoder;
use super::{AudioEncoder, ChunkedMelEncoder, ImageEncoder, MelEncoder};
use crate::verify::{errors, Fixture};
use crate::weights::WeightStore;
use crate::{DType, Device, Error};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

#[test]
fn whisper_loads_the_full_model_folder_and_reports_the_decoder_unused() {
    let dir = fixture("whisper_tiny_layout");
    let (encoder, report) = WhisperEncoder::load(&dir, Device::Cpu).unwrap();
    assert!(report.is_clean(), "{report}");

    let store = WeightStore::open(&[dir.join("model.safetensors")]).unwrap();
    let (encoder_keys, other_keys): (BTreeSet<&str>, BTreeSet<&str>) =
        store.keys().partition(|k| k.starts_with("model.encoder."));
    assert!(!other_keys.is_empty());
    assert!(
        other_keys.iter().all(|k| k.starts_with("model.decoder.")),
        "{other_keys:?}"
    );
    let unused: BTreeSet<&str> = report.unused.iter().map(String::as_str).collect();
    assert_eq!(unused, other_keys);
    assert_eq!(report.used, encoder_keys.len());

    // Same weights as the whisper_encoder fixture, so the folder reproduces its outputs.
    let fx = Fixture::open(&fixture("whisper_encoder")).unwrap();
    let encoder: Box<dyn MelEncoder> = Box::new(encoder);
    let states = encoder
        .encode(&fx.tensor("input_features", Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(states.len(), encoder.layers());
    for (i, state) in states.iter().enumerate() {
        let reference = fx
            .tensor(&format!("hidden_state_{i}"), Device::Cpu)
            .unwrap();
        let (rel, _) = errors(state, &reference).unwrap();
        assert!(rel < 1e-4, "hidden_state_{i}: rel {rel:e}");
    }
    assert_eq!(
        (
            encoder.hidden_size(),
            encoder.mel_bins(),
            encoder.input_frames()
        ),
        (64, 80, 3000)
    );
    assert_eq!(encoder.frames_per_second(), 50.0);
}

#[test]
fn whisper_rejects_mel_windows_of_another_length() {
    let (encoder, _) = WhisperEncoder::load(&fixture("whisper_tiny_layout"), Device::Cpu).unwrap();
    let short = crate::Tensor::zeros([1, 80, 2000], Device::Cpu).unwrap();
    let err = encoder.forward(&short).unwrap_err().to_string();
    assert!(err.contains("[batch, 80, 3000]"), "{err}");
}

#[test]
fn whisper_without_an_encoder_names_the_key_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    copy(
        &fixture("whisper_tiny_layout/config.json"),
        &dir.path().join("config.json"),
    );
    copy(
        &fixture("clip_vision_gelu/weights.safetensors"),
        &dir.path().join("model.safetensors"),
    );
    let Err(err) = WhisperEncoder::load(dir.path(), Device::Cpu) else {
        panic!("a CLIP checkpoint loaded as Whisper");
    };
    assert!(
        matches!(&err, Error::MissingWeight { key, .. } if key == "model.encoder.conv1.weight"),
        "{err}"
    );
}

#[test]
fn clip_config_reads_plain_and_nested_forms() {
    let plain = ClipVisionConfig::read(&fixture("clip_vision_gelu")).unwrap();
    assert_eq!(
        (plain.hidden_act.as_str(), plain.projection_dim),
        ("gelu", 24)
    );

    // The nested vision_config says projection_dim 512 (its default); CLIPModel uses the top level.
    let nested = ClipVisionConfig::read(&fixture("clip_vision_quick_gelu")).unwrap();
    assert_eq!(
        (
            nested.hidden_act.as_str(),
            nested.projection_dim,
            nested.hidden_size
        ),
        ("quick_gelu", 20, 32)
    );

    let dir = tempfile::tempdir().unwrap();
    let sparse =
        r#"{"model_type": "clip", "vision_config": {"hidden_size": 64, "patch_size": 14}}"#;
    std::fs::write(dir.path().join("config.json"), sparse).unwrap();
    let defaults = ClipVisionConfig::read(dir.path()).unwrap();
    assert_eq!(
        (
            defaults.hidden_size,
            defaults.patch_size,
            defaults.image_size,
            defaults.projection_dim
        ),
        (64, 14, 224, 512)
    );

    std::fs::write(dir.path().join("config.json"), r#"{"hidden_size": "wide"}"#).unwrap();
    let err = ClipVisionConfig::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
}

/// Writes every tensor of an f32 safetensors file as f16.
fn write_f16(from: &Path, to: &Path) {
    let store = WeightStore::open(&[from]).unwrap();
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = store
        .keys()
        .map(|k| {
            let raw = store.raw(k).unwrap();
            let bytes = raw
                .bytes()
                .chunks_exact(4)
                .flat_map(|b| {
                    f16::from_f32(f32::from_le_bytes(b.try_into().unwrap())).to_le_bytes()
                })
                .collect();
            (k.to_string(), bytes, raw.shape.clone())
        })
        .collect();
    let views: HashMap<&str, safetensors::tensor::TensorView> = data
        .iter()
        .map(|(k, bytes, shape)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F16, shape.clone(), bytes)
                    .unwrap();
            (k.as_str(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, to).unwrap();
}

#[test]
fn clip_loads_the_image_encoder_folder_and_its_fp16_variant() {
    let fx = Fixture::open(&fixture("clip_vision_gelu")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy(&fx.dir.join("config.json"), &dir.path().join("config.json"));
    copy(
        &fx.dir.join("weights.safetensors"),
        &dir.path().join("model.safetensors"),
    );
    write_f16(
        &fx.dir.join("weights.safetensors"),
        &dir.path().join("model.fp16.safetensors"),
    );
    let pixels = fx.tensor("pixel_values", Device::Cpu).unwrap();
    let reference = fx.tensor("image_embeds", Device::Cpu).unwrap();

    let (full, report) = ClipVision::load(dir.path(), None, DType::F32, Device::Cpu).unwrap();
    assert!(report.is_clean() && report.unused.is_empty(), "{report}");
    let (rel, _) = errors(&full.encode(&pixels).unwrap(), &reference).unwrap();
    assert!(rel < 1e-4, "f32 weights: rel {rel:e}");

    let (half, _) = ClipVision::load(dir.path(), Some("fp16"), DType::F32, Device::Cpu).unwrap();
    let half: Box<dyn ImageEncoder> = Box::new(half);
    assert_eq!((half.embedding_dim(), half.image_size()), (24, 32));
    let (rel, _) = errors(&half.encode(&pixels).unwrap(), &reference).unwrap();
    // Rounded weights: close to the reference, but not equal, so the variant was read.
    assert!(rel > 1e-6 && rel < 1e-2, "fp16 weights: rel {rel:e}");
}

#[test]
fn clip_rejects_images_of_another_size() {
    let fx = Fixture::open(&fixture("clip_vision_gelu")).unwrap();
    let config = ClipVisionConfig::read(&fx.dir).unwrap();
    let model = ClipVision::new(&config, &fx.weights(Device::Cpu).unwrap()).unwrap();
    let wrong = crate::Tensor::zeros([1, 3, 48, 48], Device::Cpu).unwrap();
    let err = model.forward(&wrong).err().unwrap().to_string();
    assert!(err.contains("[batch, 3, 32, 32]"), "{err}");
}

#[test]
fn whisper_on_pcm_encodes_30_second_chunks_and_joins_them() {
    let (whisper, _) = WhisperEncoder::load(&fixture("whisper_tiny_layout"), Device::Cpu).unwrap();
    let encoder = ChunkedMelEncoder::new(whisper).unwrap();
    let info = encoder.info();
    assert_eq!(
        (info.sample_rate, info.layers, info.hidden_size),
        (16_000, 3, 64)
    );
    let samples: Vec<f32> = (0..16_000 * 31)
        .map(|i| (i as f32 * 0.037).sin() * (1.0 + (i as f32 * 1e-4).sin()) * 0.3)
        .collect();
    assert_eq!(encoder.frames_for(samples.len()), 3000);
    let states = encoder.encode(&samples).unwrap();
    assert_eq!(states.len(), 3);
    // The second chunk is encoded on its own, padded to 30 s.
    let tail = crate::audio::log_mel_chunk(&samples[480_000..])
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let direct = encoder.inner().encode(&tail).unwrap();
    for (joined, direct) in states.iter().zip(&direct) {
        assert_eq!(joined.dims(), [3000, 64]);
        let second = joined.narrow(0, 1500, 1500).unwrap();
        let (rel, _) = errors(&second, &direct.squeeze(0).unwrap()).unwrap();
        assert!(rel < 1e-6, "{rel:e}");
    }
    assert!(encoder.encode(&[]).is_err());
}
