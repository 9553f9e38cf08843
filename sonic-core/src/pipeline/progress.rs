//! How a run reports progress; the CLI draws bars from it, libraries may ignore it.

/// The long stages of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// CLIP, VAE encode, audio encoder and audio conditioning; counted in components.
    Encode,
    /// Denoiser calls over every step and window.
    Denoise,
    /// Frames decoded and written.
    Decode,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Encode => "encode",
            Stage::Denoise => "denoise",
            Stage::Decode => "decode",
        }
    }
}

pub trait Progress {
    fn begin(&mut self, stage: Stage, total: u64);
    fn advance(&mut self, n: u64);
    fn end(&mut self);
    /// Polled between denoiser calls and frames: `true` stops the run with an error, so the
    /// caller can drop its output (e.g. on Ctrl-C).
    fn cancelled(&self) -> bool {
        false
    }
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&mut self, _: Stage, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn end(&mut self) {}
}
