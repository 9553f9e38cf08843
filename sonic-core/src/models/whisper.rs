//! Whisper's audio encoder as transformers' `WhisperEncoder` builds it: a two-convolution stem
//! over the log-mel, learned positions, pre-LN transformer layers and a final LayerNorm.
//! Sonic runs it in f32 and uses every hidden state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::MelEncoder;
use crate::nn::{Activation, Conv, LayerNorm, Linear, SelfAttention};
use crate::verify::Fixture;
use crate::weights::{find_weight_files, read_config, LoadReport, VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Tensor};

/// The encoder fields of a Whisper `config.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct WhisperConfig {
    pub d_model: usize,
    pub encoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub num_mel_bins: usize,
    pub max_source_positions: usize,
    pub activation_function: String,
}

impl WhisperConfig {
    /// Mel frames per call: the stem halves time, and every output frame has a position.
    pub fn input_frames(&self) -> usize {
        2 * self.max_source_positions
    }
}

/// transformers' `nn.LayerNorm` default; Whisper's config has no eps field.
const LAYER_NORM_EPS: f32 = 1e-5;

/// The feature extractor's hop of 160 samples at 16 kHz gives 100 mel frames per second;
/// the stride-2 stem halves that.
const FRAMES_PER_SECOND: f32 = 50.0;

/// Where the encoder's keys live in the checkpoints Whisper ships as: the full model
/// (openai/whisper-*, `WhisperForConditionalGeneration`), `WhisperModel`, the bare encoder.
const ENCODER_PREFIXES: [&[&str]; 3] = [&["model", "encoder"], &["encoder"], &[]];

struct EncoderLayer {
    self_attn_layer_norm: LayerNorm,
    self_attn: SelfAttention,
    final_layer_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl EncoderLayer {
    fn new(cfg: &WhisperConfig, activation: Activation, vb: &VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        Ok(EncoderLayer {
            self_attn_layer_norm: LayerNorm::new(
                &vb.pp("self_attn_layer_norm"),
                d,
                LAYER_NORM_EPS,
            )?,
            self_attn: SelfAttention::without_key_bias(
                &vb.pp("self_attn"),
                d,
                cfg.encoder_attention_heads,
            )?,
            final_layer_norm: LayerNorm::new(&vb.pp("final_layer_norm"), d, LAYER_NORM_EPS)?,
            fc1: Linear::new(&vb.pp("fc1"), d, cfg.encoder_ffn_dim)?,
            fc2: Linear::new(&vb.pp("fc2"), cfg.encoder_ffn_dim, d)?,
            activation,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let attended = self
            .self_attn
            .forward(&self.self_attn_layer_norm.forward(x)?)?;
        let x = x.add(&attended)?;
        let hidden = self.fc1.forward(&self.final_layer_norm.forward(&x)?)?;
        x.add(&self.fc2.forward(&self.activation.forward(&hidden)?)?)
    }
}

pub struct WhisperEncoder {
    config: WhisperConfig,
    conv1: Conv,
    conv2: Conv,
    embed_positions: Tensor,
    layers: Vec<EncoderLayer>,
    layer_norm: LayerNorm,
}

impl WhisperEncoder {
    /// Builds the encoder from `vb` scoped at the encoder's keys (`conv1.weight`, …).
    pub fn new(config: &WhisperConfig, vb: &VarBuilder) -> Result<Self> {
        let (mels, d) = (config.num_mel_bins, config.d_model);
        let activation = Activation::from_config(&config.activation_function)?;
        let layers = (0..config.encoder_layers)
            .map(|i| EncoderLayer::new(config, activation, &vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(WhisperEncoder {
            config: config.clone(),
            conv1: Conv::new(&vb.pp("conv1"), mels, d, &[3], 1, &[1], true)?,
            conv2: Conv::new(&vb.pp("conv2"), d, d, &[3], 2, &[1], true)?,
            embed_positions: vb
                .pp("embed_positions")
                .get([config.max_source_positions, d], "weight")?,
            layers,
            layer_norm: LayerNorm::new(&vb.pp("layer_norm"), d, LAYER_NORM_EPS)?,
        })
    }

    /// Loads a Whisper folder (`config.json` and `model.safetensors`, as openai/whisper-tiny
    /// ships) in f32. The report lists the decoder's keys as unused.
    pub fn load(dir: &Path, device: Device) -> Result<(Self, LoadReport)> {
        let config: WhisperConfig = read_config(dir)?;
        let store = WeightStore::open(&find_weight_files(dir, None)?)?;
        let vb = VarBuilder::new(Arc::new(store), DType::F32, device);
        let encoder = WhisperEncoder::new(&config, &encoder_scope(&vb)?)?;
        Ok((encoder, vb.report()))
    }

    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    /// `mel [b, num_mel_bins, 2·max_source_positions]` → the `encoder_layers + 1` hidden states
    /// of transformers' `output_hidden_states=True`, each `[b, max_source_positions, d_model]`:
    /// the embedding output, the residual stream after every layer but the last, and the
    /// final `layer_norm` output (which is also `last_hidden_state`).
    pub fn forward(&self, mel: &Tensor) -> Result<Vec<Tensor>> {
        let expected = [self.config.num_mel_bins, self.config.input_frames()];
        if mel.rank() != 3 || mel.dims()[1..] != expected {
            return Err(Error::invalid(
                "whisper encoder",
                format!(
                    "mel input {} must be [batch, {}, {}] (Whisper encodes fixed 30 s windows)",
                    mel.shape(),
                    expected[0],
                    expected[1]
                ),
            ));
        }
        let stem = self
            .conv2
            .forward(&self.conv1.forward(mel)?.gelu()?)?
            .gelu()?;
        let mut x = stem.transpose(1, 2)?.add(&self.embed_positions)?;
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        for layer in &self.layers {
            let next = layer.forward(&x)?;
            states.push(x);
            x = next;
        }
        states.push(self.layer_norm.forward(&x)?);
        Ok(states)
    }
}

/// `vb` narrowed to wherever the checkpoint keeps the encoder.
fn encoder_scope(vb: &VarBuilder) -> Result<VarBuilder> {
    ENCODER_PREFIXES
        .iter()
        .map(|parts| parts.iter().fold(vb.clone(), |scope, p| scope.pp(p)))
        .find(|scope| scope.pp("conv1").contains("weight"))
        .ok_or_else(|| Error::MissingWeight {
            key: "model.encoder.conv1.weight".into(),
            hint: Some("no Whisper encoder under `model.encoder.`, `encoder.` or the root".into()),
        })
}

impl MelEncoder for WhisperEncoder {
    fn encode(&self, mel: &Tensor) -> Result<Vec<Tensor>> {
        self.forward(mel)
    }

    fn hidden_size(&self) -> usize {
        self.config.d_model
    }

    fn layers(&self) -> usize {
        self.config.encoder_layers + 1
    }

    fn frames_per_second(&self) -> f32 {
        FRAMES_PER_SECOND
    }

    fn mel_bins(&self) -> usize {
        self.config.num_mel_bins
    }

    fn input_frames(&self) -> usize {
        self.config.input_frames()
    }
}

/// Fixture kind `model.whisper-encoder`: `input_features` → `hidden_state_0…N`.
pub fn verify_fixture(fx: &Fixture, device: Device) -> Result<BTreeMap<String, Tensor>> {
    let config: WhisperConfig = read_config(&fx.dir)?;
    let encoder = WhisperEncoder::new(&config, &encoder_scope(&fx.weights(device)?)?)?;
    let states = encoder.forward(&fx.tensor("input_features", device)?)?;
    Ok(states
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("hidden_state_{i}"), s))
        .collect())
}

/// Whisper on 16 kHz PCM, the reference's way (30 s chunks, one log-mel each).
pub type WhisperAudioEncoder = super::ChunkedMelEncoder<WhisperEncoder>;
