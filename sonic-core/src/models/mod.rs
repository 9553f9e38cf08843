//! Models built from their configs with upstream key names.

pub mod audio2bucket;
pub mod audio_proj;
pub mod clip_vision;
pub mod encoders;
pub mod face;
pub mod rife;
pub mod sonic_audio;
pub mod unet;
pub mod vae;
pub mod whisper;

pub use encoders::{AudioEncoder, AudioEncoderInfo, ChunkedMelEncoder, ImageEncoder, MelEncoder};
pub use rife::{FrameDoubler, FrameInterpolator, Rife, RifeConfig};

#[cfg(test)]
mod tests;
