//! `sonic animate`'s pipeline: a portrait and an audio track in, frames out, composed from
//! the seams (image and audio encoders, audio conditioner, long-video scheduler, sampler,
//! UNet, VAE), each chosen by name.
//!
//! Memory: decoded frames are handed out chunk by chunk, so what grows with the audio's
//! length is the latents, the audio tokens and the 16 kHz samples.

mod layout;
mod models;
mod options;
mod progress;
mod run;
#[cfg(test)]
mod tests;

pub use layout::{WeightOverrides, WeightPaths};
pub use models::{ModelSet, ModelSource};
pub use options::{default_face_box, AnimateOptions, Interpolate, DEFAULT_SEED};
pub use progress::{Progress, Silent, Stage};
pub use run::{
    AnimateReport, Encoded, FaceSource, Prepared, SonicPipeline, StageTimings, OUTPUT_FPS,
};
