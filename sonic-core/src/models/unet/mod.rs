//! SVD's `UNetSpatioTemporalConditionModel`, built from diffusers' `config.json` with its key
//! names, and Sonic's changes to it: an audio cross-attention on every `attn2` (spatial and
//! temporal), masked by the face region on spatial layers, and a temporal context averaged
//! over the window's frames. A checkpoint with `…attn2.processor.to_k_ip.0.*` keys runs as
//! Sonic's UNet; one without runs as stock SVD.

mod attention;
pub(crate) mod blocks;
mod conditioning;
mod denoiser;
mod embeddings;
pub(crate) mod resnet;
mod transformer;
mod verify;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

pub use conditioning::{AudioTokens, TemporalContext, UNetConditioning};
pub use denoiser::{SonicConditioning, SonicDenoiser};
pub use embeddings::sinusoidal_embedding;
pub use verify::{verify_sonic_fixture, verify_svd_fixture};

use blocks::{DownBlock, LevelSpec, MidBlock, UpBlock};
use conditioning::Context;
use embeddings::TimestepEmbedding;
use transformer::TransformerDims;

use crate::nn::{Conv, GroupNorm};
use crate::weights::{find_weight_files, read_config, VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Tensor};

/// A setting diffusers accepts either once for all levels or per level.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PerLevel {
    All(usize),
    Each(Vec<usize>),
}

impl PerLevel {
    fn resolve(&self, levels: usize, name: &str) -> Result<Vec<usize>> {
        match self {
            PerLevel::All(v) => Ok(vec![*v; levels]),
            PerLevel::Each(v) if v.len() == levels => Ok(v.clone()),
            PerLevel::Each(v) => Err(Error::invalid(
                "unet config",
                format!("{name} has {} entries for {levels} levels", v.len()),
            )),
        }
    }
}

/// diffusers' `UNetSpatioTemporalConditionModel` config; absent fields take diffusers'
/// defaults, which are SVD-xt's values.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub addition_time_embed_dim: usize,
    pub projection_class_embeddings_input_dim: usize,
    pub layers_per_block: PerLevel,
    pub cross_attention_dim: PerLevel,
    pub transformer_layers_per_block: PerLevel,
    pub num_attention_heads: PerLevel,
    /// The window length the model was trained on.
    pub num_frames: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        UNetConfig {
            in_channels: 8,
            out_channels: 4,
            down_block_types: strings(&[
                "CrossAttnDownBlockSpatioTemporal",
                "CrossAttnDownBlockSpatioTemporal",
                "CrossAttnDownBlockSpatioTemporal",
                "DownBlockSpatioTemporal",
            ]),
            up_block_types: strings(&[
                "UpBlockSpatioTemporal",
                "CrossAttnUpBlockSpatioTemporal",
                "CrossAttnUpBlockSpatioTemporal",
                "CrossAttnUpBlockSpatioTemporal",
            ]),
            block_out_channels: vec![320, 640, 1280, 1280],
            addition_time_embed_dim: 256,
            projection_class_embeddings_input_dim: 768,
            layers_per_block: PerLevel::All(2),
            cross_attention_dim: PerLevel::All(1024),
            transformer_layers_per_block: PerLevel::All(1),
            num_attention_heads: PerLevel::Each(vec![5, 10, 20, 20]),
            num_frames: 25,
        }
    }
}

/// The config with every per-level setting expanded and checked.
#[derive(Clone, Debug)]
struct Levels {
    layers: Vec<usize>,
    cross: Vec<usize>,
    transformer_layers: Vec<usize>,
    heads: Vec<usize>,
}

impl UNetConfig {
    /// SVD-xt's `unet/config.json`.
    pub fn svd_xt() -> Self {
        UNetConfig::default()
    }

    pub fn time_embed_dim(&self) -> usize {
        4 * self.block_out_channels[0]
    }

    fn levels(&self) -> Result<Levels> {
        let n = self.block_out_channels.len();
        let bad = |msg: String| Err(Error::invalid("unet config", msg));
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return bad(format!(
                "{} down and {} up block types for {n} block_out_channels",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        let levels = Levels {
            layers: self.layers_per_block.resolve(n, "layers_per_block")?,
            cross: self.cross_attention_dim.resolve(n, "cross_attention_dim")?,
            transformer_layers: self
                .transformer_layers_per_block
                .resolve(n, "transformer_layers_per_block")?,
            heads: self.num_attention_heads.resolve(n, "num_attention_heads")?,
        };
        for (&c, &h) in self.block_out_channels.iter().zip(&levels.heads) {
            if c % 32 != 0 || h == 0 || c % h != 0 {
                return bad(format!(
                    "{c} channels must be a multiple of 32 (GroupNorm) and of the {h} heads"
                ));
            }
        }
        if levels.cross.iter().any(|&c| c != levels.cross[0]) {
            return bad(format!(
                "cross_attention_dim {:?} differs between levels; one context cannot serve them all",
                levels.cross
            ));
        }
        if self.addition_time_embed_dim == 0
            || !self
                .projection_class_embeddings_input_dim
                .is_multiple_of(self.addition_time_embed_dim)
        {
            return bad(format!(
                "projection_class_embeddings_input_dim {} is not a multiple of addition_time_embed_dim {}",
                self.projection_class_embeddings_input_dim, self.addition_time_embed_dim
            ));
        }
        Ok(levels)
    }
}

/// Key fragment that marks Sonic's audio adapters.
const AUDIO_ADAPTER_KEY: &str = ".processor.to_k_ip.";

#[derive(Clone, Debug)]
pub struct UNetSpatioTemporalConditionModel {
    pub config: UNetConfig,
    conv_in: Conv,
    time_embedding: TimestepEmbedding,
    add_embedding: TimestepEmbedding,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv,
    cross_attention_dim: usize,
    audio_adapters: bool,
}

impl UNetSpatioTemporalConditionModel {
    /// Builds the model from `vb`'s keys. Whether it is Sonic's UNet is read from the
    /// checkpoint: with any `to_k_ip` key, every `attn2` must carry both audio projections.
    pub fn new(config: UNetConfig, vb: &VarBuilder) -> Result<Self> {
        let levels = config.levels()?;
        let audio = audio_adapters(vb)?;
        let boc = &config.block_out_channels;
        let n = boc.len();
        let mut down_blocks = Vec::with_capacity(n);
        for (i, block_type) in config.down_block_types.iter().enumerate() {
            let in_ch = boc[i.saturating_sub(1)];
            let s = levels.spec(&config, i, block_type, in_ch, levels.layers[i], audio);
            down_blocks.push(DownBlock::new(&vb.pp("down_blocks").pp(i), &s, i + 1 < n)?);
        }
        let mid = levels.spec(&config, n - 1, "", boc[n - 1], 1, audio);
        let mid_block = MidBlock::new(&vb.pp("mid_block"), &mid)?;
        let mut up_blocks = Vec::with_capacity(n);
        for (i, block_type) in config.up_block_types.iter().enumerate() {
            let level = n - 1 - i;
            let skip_ch = boc[level.saturating_sub(1)];
            let prev_ch = boc[(level + 1).min(n - 1)];
            let s = levels.spec(
                &config,
                level,
                block_type,
                skip_ch,
                levels.layers[level] + 1,
                audio,
            );
            up_blocks.push(UpBlock::new(
                &vb.pp("up_blocks").pp(i),
                &s,
                prev_ch,
                i + 1 < n,
            )?);
        }
        let temb = config.time_embed_dim();
        let add_in = config.projection_class_embeddings_input_dim;
        Ok(UNetSpatioTemporalConditionModel {
            conv_in: Conv::new(
                &vb.pp("conv_in"),
                config.in_channels,
                boc[0],
                &[3, 3],
                1,
                &[1, 1],
                true,
            )?,
            time_embedding: TimestepEmbedding::new(&vb.pp("time_embedding"), boc[0], temb, temb)?,
            add_embedding: TimestepEmbedding::new(&vb.pp("add_embedding"), add_in, temb, temb)?,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNorm::new(&vb.pp("conv_norm_out"), 32, boc[0], 1e-5)?,
            conv_out: Conv::new(
                &vb.pp("conv_out"),
                boc[0],
                config.out_channels,
                &[3, 3],
                1,
                &[1, 1],
                true,
            )?,
            cross_attention_dim: levels.cross[0],
            audio_adapters: audio,
            config,
        })
    }

    /// Loads a diffusers `unet/` folder (the fp16 variant when present), as f32 on `device`.
    pub fn from_folder(dir: &Path, device: Device) -> Result<Self> {
        Self::load(dir, &find_weight_files(dir, Some("fp16"))?, device)
    }

    /// The config of the folder `config_dir` with the weights of `weight_files` (e.g. SVD's
    /// `unet/config.json` with Sonic's `unet.pth`).
    pub fn load(
        config_dir: &Path,
        weight_files: &[impl AsRef<Path>],
        device: Device,
    ) -> Result<Self> {
        let store = Arc::new(WeightStore::open(weight_files)?);
        Self::new(
            read_config(config_dir)?,
            &VarBuilder::new(store, DType::F32, device),
        )
    }

    /// Whether the checkpoint carries Sonic's audio adapters.
    pub fn has_audio_adapters(&self) -> bool {
        self.audio_adapters
    }

    /// The temporal layers' context: Sonic averages the window's frames, SVD takes the first.
    pub fn temporal_context(&self) -> TemporalContext {
        if self.audio_adapters {
            TemporalContext::FrameMean
        } else {
            TemporalContext::FirstFrame
        }
    }

    /// `sample [batch, frames, in_channels, h, w]` at the continuous `timesteps` (one per
    /// video) → `[batch, frames, out_channels, h, w]`. h and w must be multiples of
    /// 2^(levels − 1).
    pub fn forward(
        &self,
        sample: &Tensor,
        timesteps: &[f32],
        cond: &UNetConditioning,
    ) -> Result<Tensor> {
        self.forward_traced(sample, timesteps, cond, &mut |_, _| {})
    }

    /// [`forward`](Self::forward), handing the time embedding and every block's output to
    /// `trace` under diffusers' module names (`time_embedding`, `down_blocks.0`, …).
    pub fn forward_traced(
        &self,
        sample: &Tensor,
        timesteps: &[f32],
        cond: &UNetConditioning,
        trace: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Tensor> {
        let c = &self.config;
        let [b, f, h, w] = self.check_inputs(sample, timesteps, cond)?;
        let device = sample.device();
        // The weights' dtype is the working one (f16/bf16 on CUDA); latents and the f32
        // audio tokens are cast on the way in, and the output goes back to the latents'.
        let dtype = self.conv_in.weight.dtype();
        let cond = &cond.to_dtype(dtype)?;
        let emb = self.time_embedding.forward(&sinusoidal_embedding(
            timesteps,
            c.block_out_channels[0],
            device,
        )?)?;
        trace("time_embedding", &emb);
        let ids = cond.added_time_ids.to_vec()?;
        let time_ids = sinusoidal_embedding(&ids, c.addition_time_embed_dim, device)?
            .reshape([b, c.projection_class_embeddings_input_dim])?;
        let emb = emb.add(&self.add_embedding.forward(&time_ids)?)?;
        let per_frame: Vec<usize> = (0..b).flat_map(|i| std::iter::repeat_n(i, f)).collect();
        let emb = emb.index_select(0, &per_frame)?;

        let resolutions = self.resolutions(h, w);
        let ctx = Context::new(
            cond,
            b,
            f,
            self.cross_attention_dim,
            self.temporal_context(),
            &resolutions,
        )?;

        let mut x = self.conv_in.forward(
            &sample
                .reshape([b * f, c.in_channels, h, w])?
                .to_dtype(dtype)?,
        )?;
        let mut skips = vec![x.clone()];
        for (i, block) in self.down_blocks.iter().enumerate() {
            let (out, res) = block.forward(&x, &emb, f, &ctx)?;
            skips.extend(res);
            x = out;
            trace(&format!("down_blocks.{i}"), &x);
        }
        x = self.mid_block.forward(&x, &emb, f, &ctx)?;
        trace("mid_block", &x);
        for (i, block) in self.up_blocks.iter().enumerate() {
            let res = skips.split_off(skips.len() - block.skip_count());
            x = block.forward(&x, res, &emb, f, &ctx)?;
            trace(&format!("up_blocks.{i}"), &x);
        }
        let out = self
            .conv_out
            .forward(&self.conv_norm_out.forward_silu(&x)?)?;
        out.reshape([b, f, c.out_channels, h, w])?
            .to_dtype(sample.dtype())
    }

    /// The (h, w) of every level for a latent of `h × w`.
    fn resolutions(&self, h: usize, w: usize) -> Vec<(usize, usize)> {
        std::iter::successors(Some((h, w)), |&(h, w)| Some((h.div_ceil(2), w.div_ceil(2))))
            .take(self.config.block_out_channels.len())
            .collect()
    }

    /// `[batch, frames, h, w]` of valid inputs.
    fn check_inputs(
        &self,
        sample: &Tensor,
        timesteps: &[f32],
        cond: &UNetConditioning,
    ) -> Result<[usize; 4]> {
        let c = &self.config;
        let d = sample.dims();
        let factor = 1 << (c.block_out_channels.len() - 1);
        if d.len() != 5 || d[2] != c.in_channels || d[0] == 0 || d[1] == 0 {
            return Err(Error::invalid(
                "unet",
                format!(
                    "sample {} is not [batch, frames, {}, h, w]",
                    sample.shape(),
                    c.in_channels
                ),
            ));
        }
        let [b, f, h, w] = [d[0], d[1], d[3], d[4]];
        if h % factor != 0 || w % factor != 0 || h == 0 || w == 0 {
            return Err(Error::invalid(
                "unet",
                format!("latent {h}x{w} is not a multiple of {factor} in both dims"),
            ));
        }
        if timesteps.len() != b {
            return Err(Error::invalid(
                "unet",
                format!("{} timesteps for a batch of {b}", timesteps.len()),
            ));
        }
        let ids = c.projection_class_embeddings_input_dim / c.addition_time_embed_dim;
        if cond.added_time_ids.dims() != [b, ids] {
            return Err(Error::invalid(
                "unet",
                format!(
                    "added_time_ids {} is not [{b}, {ids}]",
                    cond.added_time_ids.shape()
                ),
            ));
        }
        match (self.audio_adapters, &cond.audio) {
            (true, None) => Err(Error::invalid(
                "unet",
                "this checkpoint has Sonic's audio adapters and needs audio tokens",
            )),
            (false, Some(_)) => Err(Error::invalid(
                "unet",
                "audio tokens were given but this checkpoint has no audio adapters (no to_k_ip keys)",
            )),
            _ => Ok([b, f, h, w]),
        }
    }
}

impl Levels {
    fn spec<'a>(
        &self,
        config: &UNetConfig,
        level: usize,
        block_type: &'a str,
        in_channels: usize,
        layers: usize,
        audio_adapters: bool,
    ) -> LevelSpec<'a> {
        let channels = config.block_out_channels[level];
        LevelSpec {
            block_type,
            in_channels,
            out_channels: channels,
            temb_channels: config.time_embed_dim(),
            layers,
            attention: TransformerDims {
                channels,
                heads: self.heads[level],
                cross_attention_dim: self.cross[level],
                layers: self.transformer_layers[level],
                audio_adapters,
            },
        }
    }
}

/// Whether the checkpoint under `vb` carries Sonic's audio adapters. A second adapter
/// (`to_k_ip.1`, as in DICE-Talk's UNet) is refused rather than silently ignored.
fn audio_adapters(vb: &VarBuilder) -> Result<bool> {
    let prefix = vb.key("");
    let mut found = false;
    for key in vb.store().keys().filter(|k| k.starts_with(&prefix)) {
        if key.contains(".to_k_ip.1.") || key.contains(".to_v_ip.1.") {
            return Err(Error::invalid(
                "unet",
                format!(
                    "`{key}` belongs to a second audio adapter, which Sonic's UNet does not have"
                ),
            ));
        }
        found |= key.contains(AUDIO_ADAPTER_KEY) || key.contains(".processor.to_v_ip.");
    }
    Ok(found)
}
