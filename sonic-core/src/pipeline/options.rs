//! What a run is asked to do: every knob of `sonic animate`, with the reference's defaults.

use serde::{Deserialize, Serialize};

use crate::image::FaceBox;

/// The reference's `seed_everything` default.
pub const DEFAULT_SEED: u64 = 72589;

/// Settings of one animation. [`Default`] gives the reference's values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnimateOptions {
    /// Denoising steps.
    pub steps: usize,
    /// Long-video schedule spec (`sonic plan --help` lists them).
    pub schedule: String,
    /// Sampler name: a built-in or a plugin's.
    pub sampler: String,
    /// Audio encoder name: `whisper` (with the weights) or a plugin's.
    pub audio_encoder: String,
    /// Image guidance scale.
    pub image_cfg: f32,
    /// Audio guidance scale.
    pub audio_cfg: f32,
    /// Multiplies both motion buckets (β in the paper).
    pub dynamic_scale: f32,
    /// Scale of the audio attention term (`ip_audio_scale`).
    pub audio_scale: f32,
    pub seed: u64,
    /// The fps conditioning given to the UNet. Frames are always generated one per 80 ms of
    /// audio (12.5 fps) so the video keeps to the audio; this only changes the conditioning.
    pub fps: f32,
    /// Short side of the working size before rounding to multiples of 64; `None` takes the
    /// model's (512 for the real weights, 192 for the demo model).
    pub short_side: Option<usize>,
    /// The face in the portrait's pixels; `None` takes [`default_face_box`].
    pub face_box: Option<FaceBox>,
    /// Frames per VAE decode call (time mixing stays inside a chunk).
    pub decode_chunk: usize,
    /// Longer audio is refused before any work.
    pub max_audio_seconds: f64,
    /// Crop the portrait around the face first (the reference's `--crop`).
    pub crop: bool,
    /// Frame interpolation to 25 fps.
    pub interpolate: Interpolate,
}

/// Whether frames are interpolated to twice the rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interpolate {
    /// RIFE when the model set has its weights, as the reference does.
    Auto,
    Rife,
    None,
}

impl std::str::FromStr for Interpolate {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "auto" => Ok(Interpolate::Auto),
            "rife" => Ok(Interpolate::Rife),
            "none" => Ok(Interpolate::None),
            other => Err(crate::Error::InvalidArgument {
                op: "interpolate",
                msg: format!("unknown interpolation `{other}` (auto, rife or none)"),
            }),
        }
    }
}

impl Default for AnimateOptions {
    fn default() -> Self {
        AnimateOptions {
            steps: 25,
            schedule: "shift:alpha=7".into(),
            sampler: "euler".into(),
            audio_encoder: crate::registry::BUILTIN_AUDIO_ENCODER.into(),
            image_cfg: 2.0,
            audio_cfg: 7.5,
            dynamic_scale: 1.0,
            audio_scale: 1.0,
            seed: DEFAULT_SEED,
            fps: 12.5,
            short_side: None,
            face_box: None,
            decode_chunk: 8,
            max_audio_seconds: 900.0,
            crop: false,
            interpolate: Interpolate::Auto,
        }
    }
}

/// The face box used when none is given: the middle half of the width, from 15 % to 75 %
/// of the height — where a head-and-shoulders portrait has its face.
pub fn default_face_box(width: usize, height: usize) -> FaceBox {
    let (w, h) = (width as f64, height as f64);
    FaceBox {
        x: 0.25 * w,
        y: 0.15 * h,
        w: 0.5 * w,
        h: 0.6 * h,
    }
}
