//! The audio and image encoder seams. The pipeline asks these for the numbers it plans with
//! (frame rate, window, widths), so a plugin encoder slots in without knowing Whisper or CLIP.

use crate::{Result, Tensor};

/// Log-mel windows to frame-level hidden states.
pub trait AudioEncoder: Send + Sync {
    /// `mel [b, mel_bins, input_frames]` → every hidden state the encoder exposes, each
    /// `[b, frames, hidden_size]`, first to last.
    fn encode(&self, mel: &Tensor) -> Result<Vec<Tensor>>;
    /// Width of each hidden state.
    fn hidden_size(&self) -> usize;
    /// How many hidden states [`encode`](Self::encode) returns.
    fn layers(&self) -> usize;
    /// Output frames per second of audio.
    fn frames_per_second(&self) -> f32;
    /// Mel bins the encoder expects.
    fn mel_bins(&self) -> usize;
    /// Mel frames per call; longer audio is cut into windows of this length.
    fn input_frames(&self) -> usize;
}

/// A preprocessed image batch to one embedding per image.
pub trait ImageEncoder: Send + Sync {
    /// `pixel_values [b, 3, image_size, image_size]` → `[b, embedding_dim]`.
    fn encode(&self, pixel_values: &Tensor) -> Result<Tensor>;
    fn embedding_dim(&self) -> usize;
    /// Side of the square input the encoder expects.
    fn image_size(&self) -> usize;
}
