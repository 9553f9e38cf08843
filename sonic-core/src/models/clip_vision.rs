//! CLIP's vision tower with its projection, as transformers' `CLIPVisionModelWithProjection`
//! builds it: patch embedding, class token, learned positions, `pre_layrnorm`, pre-LN layers,
//! `post_layernorm` on the class token and a bias-free `visual_projection`. SVD's
//! image_encoder/ is this model (OpenCLIP ViT-H/14).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::ImageEncoder;
use crate::nn::{Activation, Conv, LayerNorm, Linear, SelfAttention};
use crate::verify::Fixture;
use crate::weights::{find_weight_files, read_config, LoadReport, VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Tensor};

/// transformers' `CLIPVisionConfig`. Defaults are its class defaults: a `vision_config`
/// nested in a `CLIPConfig` is written without the fields that equal them.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f32,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        ClipVisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// Reads `dir/config.json`: a `CLIPVisionConfig`, or a `CLIPConfig` whose `vision_config`
    /// describes the tower. A `CLIPModel` projects to the top-level `projection_dim` (the
    /// nested one is then only a default), so that one wins.
    pub fn read(dir: &Path) -> Result<Self> {
        let value: serde_json::Value = read_config(dir)?;
        let bad = |e: serde_json::Error| Error::Config {
            path: dir.join("config.json"),
            msg: e.to_string(),
        };
        let Some(vision) = value.get("vision_config") else {
            return serde_json::from_value(value).map_err(bad);
        };
        let mut config: ClipVisionConfig = serde_json::from_value(vision.clone()).map_err(bad)?;
        config.projection_dim = match value.get("projection_dim") {
            Some(dim) => serde_json::from_value(dim.clone()).map_err(bad)?,
            None => ClipVisionConfig::default().projection_dim,
        };
        Ok(config)
    }

    fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: SelfAttention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl EncoderLayer {
    fn new(cfg: &ClipVisionConfig, activation: Activation, vb: &VarBuilder) -> Result<Self> {
        let (d, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        Ok(EncoderLayer {
            layer_norm1: LayerNorm::new(&vb.pp("layer_norm1"), d, eps)?,
            self_attn: SelfAttention::new(&vb.pp("self_attn"), d, cfg.num_attention_heads)?,
            layer_norm2: LayerNorm::new(&vb.pp("layer_norm2"), d, eps)?,
            fc1: Linear::new(&vb.pp("mlp").pp("fc1"), d, cfg.intermediate_size)?,
            fc2: Linear::new(&vb.pp("mlp").pp("fc2"), cfg.intermediate_size, d)?,
            activation,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.add(&self.self_attn.forward(&self.layer_norm1.forward(x)?)?)?;
        let hidden = self.fc1.forward(&self.layer_norm2.forward(&x)?)?;
        x.add(&self.fc2.forward(&self.activation.forward(&hidden)?)?)
    }
}

/// What one forward pass yields.
pub struct ClipVisionOutput {
    /// `[b, 1 + patches, hidden_size]`, the encoder's last layer (before `post_layernorm`).
    pub last_hidden_state: Tensor,
    /// `[b, projection_dim]`.
    pub image_embeds: Tensor,
}

pub struct ClipVision {
    config: ClipVisionConfig,
    patch_embedding: Conv,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    visual_projection: Linear,
}

impl ClipVision {
    /// Builds the model from `vb` at the checkpoint root (`vision_model.*`, `visual_projection.*`).
    pub fn new(config: &ClipVisionConfig, vb: &VarBuilder) -> Result<Self> {
        let (c, d, p) = (config.hidden_size, config.num_channels, config.patch_size);
        if p == 0 || !config.image_size.is_multiple_of(p) {
            return Err(Error::invalid(
                "clip vision",
                format!(
                    "patch size {p} does not tile image size {}",
                    config.image_size
                ),
            ));
        }
        let activation = Activation::from_config(&config.hidden_act)?;
        let tower = vb.pp("vision_model");
        let embeddings = tower.pp("embeddings");
        let positions = config.patches_per_side().pow(2) + 1;
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::new(config, activation, &tower.pp("encoder").pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(ClipVision {
            config: config.clone(),
            patch_embedding: Conv::new(
                &embeddings.pp("patch_embedding"),
                d,
                c,
                &[p, p],
                p,
                &[0, 0],
                false,
            )?,
            class_embedding: embeddings.get([c], "class_embedding")?,
            position_embedding: embeddings
                .pp("position_embedding")
                .get([positions, c], "weight")?,
            pre_layrnorm: LayerNorm::new(&tower.pp("pre_layrnorm"), c, config.layer_norm_eps)?,
            layers,
            post_layernorm: LayerNorm::new(&tower.pp("post_layernorm"), c, config.layer_norm_eps)?,
            visual_projection: Linear::no_bias(
                &vb.pp("visual_projection"),
                c,
                config.projection_dim,
            )?,
        })
    }

    /// Loads a transformers folder: `config.json` beside `model.safetensors`, or
    /// `model.<variant>.safetensors` when `variant` is given and present (SVD's
    /// image_encoder/ ships `model.fp16.safetensors`). Weights are converted to `dtype`.
    pub fn load(
        dir: &Path,
        variant: Option<&str>,
        dtype: DType,
        device: Device,
    ) -> Result<(Self, LoadReport)> {
        let config = ClipVisionConfig::read(dir)?;
        let store = WeightStore::open(&find_weight_files(dir, variant)?)?;
        let vb = VarBuilder::new(Arc::new(store), dtype, device);
        let model = ClipVision::new(&config, &vb)?;
        Ok((model, vb.report()))
    }

    pub fn config(&self) -> &ClipVisionConfig {
        &self.config
    }

    /// `pixel_values [b, num_channels, image_size, image_size]`, already normalised.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<ClipVisionOutput> {
        let cfg = &self.config;
        let expected = [cfg.num_channels, cfg.image_size, cfg.image_size];
        if pixel_values.rank() != 4 || pixel_values.dims()[1..] != expected {
            return Err(Error::invalid(
                "clip vision",
                format!(
                    "pixel_values {} must be [batch, {}, {}, {}]",
                    pixel_values.shape(),
                    expected[0],
                    expected[1],
                    expected[2]
                ),
            ));
        }
        let (b, c) = (pixel_values.dims()[0], cfg.hidden_size);
        let patches = self
            .patch_embedding
            // Pixels are prepared in f32; the weights may be half precision on CUDA.
            .forward(&pixel_values.to_dtype(self.patch_embedding.weight.dtype())?)?
            .reshape([b, c, cfg.patches_per_side().pow(2)])?
            .transpose(1, 2)?;
        let class = self
            .class_embedding
            .reshape([1, 1, c])?
            .index_select(0, &vec![0; b])?;
        let mut x = Tensor::cat(&[&class, &patches], 1)?.add(&self.position_embedding)?;
        x = self.pre_layrnorm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        let pooled = self
            .post_layernorm
            .forward(&x.narrow(1, 0, 1)?.reshape([b, c])?)?;
        Ok(ClipVisionOutput {
            image_embeds: self.visual_projection.forward(&pooled)?,
            last_hidden_state: x,
        })
    }
}

impl ImageEncoder for ClipVision {
    fn encode(&self, pixel_values: &Tensor) -> Result<Tensor> {
        Ok(self.forward(pixel_values)?.image_embeds)
    }

    fn embedding_dim(&self) -> usize {
        self.config.projection_dim
    }

    fn image_size(&self) -> usize {
        self.config.image_size
    }
}

/// Fixture kind `model.clip-vision`: `pixel_values` → `last_hidden_state`, `image_embeds`.
pub fn verify_fixture(fx: &Fixture, device: Device) -> Result<BTreeMap<String, Tensor>> {
    let config = ClipVisionConfig::read(&fx.dir)?;
    let model = ClipVision::new(&config, &fx.weights(device)?)?;
    let out = model.forward(&fx.tensor("pixel_values", device)?)?;
    Ok(BTreeMap::from([
        ("last_hidden_state".to_string(), out.last_hidden_state),
        ("image_embeds".to_string(), out.image_embeds),
    ]))
}
