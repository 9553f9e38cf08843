//! Models built from their configs with upstream key names.

pub mod audio2bucket;
pub mod audio_proj;
pub mod sonic_audio;
pub mod unet;
pub mod vae;
