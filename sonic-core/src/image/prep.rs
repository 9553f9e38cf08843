//! Sonic's image preprocessing: the working size, the reference tensor, the CLIP input and
//! the resized face mask, as `image_audio_to_tensor` in the reference produces them.

use super::mask::{face_mask_image, mask_tensor, FaceBox, FACE_MASK_SCALE};
use super::pixels::RgbImage;
use super::resample::resize_lanczos;
use crate::{Error, Result, Tensor};

/// The reference's default `min_resolution`: the short side of the working size.
pub const SHORT_SIDE: usize = 512;

/// Side of the square CLIP vision input.
pub const CLIP_SIZE: usize = 224;

// The OpenAI CLIP normalisation (`CLIPImageProcessor` defaults), written as transformers
// writes them so they can be compared at a glance.

/// Per-channel mean of the CLIP normalisation.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// Per-channel standard deviation of the CLIP normalisation.
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The working size for a `width`×`height` image: scaled so the short side is about
/// `short_side`, each side rounded to a multiple of 64 with Python's `round` (ties to even).
pub fn sonic_resize_dims(width: usize, height: usize, short_side: usize) -> Result<(usize, usize)> {
    let invalid = || {
        Error::invalid(
            "sonic_resize_dims",
            format!("cannot fit {width}x{height} to a short side of {short_side}"),
        )
    };
    if width == 0 || height == 0 || short_side == 0 {
        return Err(invalid());
    }
    let scale = short_side as f64 / width.min(height) as f64;
    let side = |dim: usize| (dim as f64 * scale / 64.0).round_ties_even() as usize * 64;
    match (side(width), side(height)) {
        (0, _) | (_, 0) => Err(invalid()),
        dims => Ok(dims),
    }
}

/// The VAE's reference image: `[1, 3, H, W]` in [−1, 1] (`ToTensor` then
/// `Normalize(0.5, 0.5)`, in f32 as torchvision computes it), on the CPU.
pub fn reference_tensor(img: &RgbImage) -> Result<Tensor> {
    img.to_nchw(|_, v| (f32::from(v) / 255.0 - 0.5) / 0.5)
}

/// The CLIP vision input `[1, 3, 224, 224]`, on the CPU: the image squashed to 224×224 with
/// Pillow's LANCZOS (no crop), then what `CLIPImageProcessor` does to a 224×224 image —
/// its own resize and centre crop leave it unchanged, it rescales by 1/255 in f64 and
/// rounds to f32, then normalises in f32.
pub fn clip_pixel_values(img: &RgbImage) -> Result<Tensor> {
    let square = resize_lanczos(img, CLIP_SIZE, CLIP_SIZE)?;
    square.to_nchw(|c, v| ((f64::from(v) * (1.0 / 255.0)) as f32 - CLIP_MEAN[c]) / CLIP_STD[c])
}

/// Settings of [`ImagePrep`]; the defaults are the reference's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImagePrep {
    /// Short side of the working size before rounding to multiples of 64.
    pub short_side: usize,
    /// Face mask size relative to the face box.
    pub mask_scale: f64,
}

impl Default for ImagePrep {
    fn default() -> Self {
        ImagePrep {
            short_side: SHORT_SIDE,
            mask_scale: FACE_MASK_SCALE,
        }
    }
}

/// Everything the pipeline takes from the portrait, on the CPU.
#[derive(Clone, Debug)]
pub struct PreparedImage {
    /// The portrait at the working size.
    pub image: RgbImage,
    /// `[1, 3, H, W]` in [−1, 1].
    pub reference: Tensor,
    /// `[1, 3, 224, 224]`, CLIP-normalised.
    pub clip_pixel_values: Tensor,
    /// `[1, 1, H, W]` in [0, 1]: soft-edged where it was resized.
    pub face_mask: Tensor,
}

impl ImagePrep {
    /// The reference's preprocessing of a portrait with the face at `face` (in the
    /// portrait's pixels): the mask is drawn at the original size, and when the working
    /// size differs both image and mask are resized with LANCZOS, so the mask's edges turn
    /// soft and ring as they do in the reference.
    pub fn prepare(&self, img: &RgbImage, face: &FaceBox) -> Result<PreparedImage> {
        let (w, h) = sonic_resize_dims(img.width(), img.height(), self.short_side)?;
        let mask = face_mask_image(face, img.width(), img.height(), self.mask_scale)?;
        let (image, mask) = if (w, h) == (img.width(), img.height()) {
            (img.clone(), mask)
        } else {
            (resize_lanczos(img, w, h)?, resize_lanczos(&mask, w, h)?)
        };
        Ok(PreparedImage {
            reference: reference_tensor(&image)?,
            clip_pixel_values: clip_pixel_values(&image)?,
            face_mask: mask_tensor(&mask)?,
            image,
        })
    }
}
