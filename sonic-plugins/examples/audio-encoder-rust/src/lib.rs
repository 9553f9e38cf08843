//! An example audio-encoder plugin: `log-mel-projection`. It implements sonic-core's
//! `AudioEncoder` trait, exactly like the built-in Whisper, and `export_plugin!` turns it into
//! a plugin. It needs no weights, so it is also a cheap stand-in encoder for tests and demos.
//!
//! What it computes, for 16 kHz mono PCM:
//!
//! 1. Whisper's log-mel features, chunk by chunk as Whisper takes them: the audio is cut into
//!    30 s chunks, each padded and normalised on its own (`sonic_core::audio::log_mel_chunk`),
//!    80 bins × 3000 frames per chunk (100 frames/s).
//! 2. Pairs of mel frames averaged: 1500 frames per chunk, 50 frames/s (Whisper's rate).
//! 3. For each of `layers` outputs `k`, a fixed projection to `hidden_size`:
//!    `layer_k = tanh(W_k · pooled)`, where `W_k [hidden_size, 80]` is drawn once from
//!    SplitMix64 seeded with [`SEED`] `+ k`: each entry is `(2u − 1)·√(3/80)` for the next
//!    uniform `u ∈ [0, 1)` made of the generator's top 24 bits (unit output variance for
//!    unit-variance input). The same configuration always gives the same weights.
//!
//! Configuration (the JSON the host passes at creation; every field optional):
//! `{"layers": 5, "hidden_size": 384}`. The defaults are what Sonic's audio conditioner takes
//! from Whisper-tiny: 5 hidden states of width 384.

use serde::Deserialize;
use sonic_core::audio::{CHUNK_FRAMES, N_MELS};
use sonic_core::models::{AudioEncoder, AudioEncoderInfo, ChunkedMelEncoder, MelEncoder};
use sonic_core::{Device, Error, Result, Tensor};

/// Seed of the projection weights; layer `k` uses `SEED + k`.
pub const SEED: u64 = 0x5301_1C00_A0D1_0000;
/// Output frames per second: 100 mel frames/s pooled in pairs.
pub const FRAMES_PER_SECOND: f32 = 50.0;
/// Most layers and widest hidden state the configuration accepts.
pub const MAX_LAYERS: usize = 64;
pub const MAX_HIDDEN_SIZE: usize = 8192;

/// The plugin's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub layers: usize,
    pub hidden_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            layers: 5,
            hidden_size: 384,
        }
    }
}

impl Config {
    /// Parses the host's JSON configuration; `None` (or blank) means the defaults.
    pub fn parse(json: Option<&str>) -> Result<Config> {
        let config = match json.map(str::trim) {
            None | Some("") => Config::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| bad_config(e.to_string()))?,
        };
        if !(1..=MAX_LAYERS).contains(&config.layers) {
            return Err(bad_config(format!(
                "layers {} is outside 1..={MAX_LAYERS}",
                config.layers
            )));
        }
        if !(1..=MAX_HIDDEN_SIZE).contains(&config.hidden_size) {
            return Err(bad_config(format!(
                "hidden_size {} is outside 1..={MAX_HIDDEN_SIZE}",
                config.hidden_size
            )));
        }
        Ok(config)
    }
}

fn bad_config(msg: String) -> Error {
    Error::InvalidArgument {
        op: "log-mel-projection config",
        msg,
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, fully specified generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) from the top 24 bits.
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The projection `W_k [hidden_size, 80]` of layer `k`.
pub fn projection(k: usize, hidden_size: usize) -> Result<Tensor> {
    let mut rng = SplitMix64(SEED.wrapping_add(k as u64));
    let scale = (3.0 / N_MELS as f32).sqrt();
    let w = (0..hidden_size * N_MELS)
        .map(|_| (2.0 * rng.uniform() - 1.0) * scale)
        .collect();
    Tensor::from_vec(w, [hidden_size, N_MELS], Device::Cpu)
}

/// The per-chunk part: one 30 s log-mel window → `layers` hidden states.
pub struct Projection {
    weights: Vec<Tensor>,
    hidden_size: usize,
}

impl Projection {
    pub fn new(config: Config) -> Result<Self> {
        let weights = (0..config.layers)
            .map(|k| projection(k, config.hidden_size))
            .collect::<Result<_>>()?;
        Ok(Projection {
            weights,
            hidden_size: config.hidden_size,
        })
    }
}

impl MelEncoder for Projection {
    fn encode(&self, mel: &Tensor) -> Result<Vec<Tensor>> {
        let [b, bins, frames] = *mel.dims() else {
            return Err(invalid(format!(
                "mel {} is not [batch, bins, frames]",
                mel.shape()
            )));
        };
        if bins != N_MELS || frames % 2 != 0 {
            return Err(invalid(format!(
                "mel {} is not [batch, {N_MELS}, even frames]",
                mel.shape()
            )));
        }
        // [b, 80, frames] → [b, frames/2, 2, 80] → mean of each pair → [b, frames/2, 80].
        let pooled = mel
            .transpose(1, 2)?
            .reshape([b, frames / 2, 2, N_MELS])?
            .mean(&[2], false)?;
        self.weights
            .iter()
            .map(|w| pooled.linear(w, None)?.tanh())
            .collect()
    }

    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn layers(&self) -> usize {
        self.weights.len()
    }

    fn frames_per_second(&self) -> f32 {
        FRAMES_PER_SECOND
    }

    fn mel_bins(&self) -> usize {
        N_MELS
    }

    fn input_frames(&self) -> usize {
        CHUNK_FRAMES
    }
}

/// The `log-mel-projection` encoder: [`Projection`] run on 30 s chunks of PCM the way
/// sonic runs Whisper.
pub struct LogMelProjection(ChunkedMelEncoder<Projection>);

impl LogMelProjection {
    pub fn new(config: Config) -> Result<Self> {
        ChunkedMelEncoder::new(Projection::new(config)?).map(LogMelProjection)
    }

    /// What the plugin's `create` calls: the host's JSON configuration, or `None`.
    pub fn from_config(json: Option<&str>) -> Result<Self> {
        Self::new(Config::parse(json)?)
    }
}

impl AudioEncoder for LogMelProjection {
    fn info(&self) -> AudioEncoderInfo {
        self.0.info()
    }

    fn frames_for(&self, samples: usize) -> usize {
        self.0.frames_for(samples)
    }

    fn encode(&self, samples: &[f32]) -> Result<Vec<Tensor>> {
        self.0.encode(samples)
    }
}

sonic_plugins::export_plugin! {
    host_min_version: "0.1.0",
    audio_encoders: [
        {
            id: "log-mel-projection",
            name: "Log-mel projection",
            version: "1.0.0",
            vendor: "Sonic SDK examples",
            description: "Whisper log-mel, pooled to 50 frames/s, fixed seeded tanh projections",
            create: LogMelProjection::from_config,
        },
    ],
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument {
        op: "log-mel-projection",
        msg,
    }
}
