//! The portrait's path into the pipeline: loading, Pillow-exact resizing, the reference
//! and CLIP tensors, and the face mask.
//!
//! Everything here works on 8-bit images on the host, in the reference's order of
//! operations, so the tensors it hands on match the reference's bit for bit.

mod crop;
pub(crate) mod fixtures;
mod load;
mod mask;
mod pixels;
mod prep;
mod resample;

#[cfg(test)]
mod tests;

pub use crop::{crop_box, crop_image, crop_to_face, CropBox, CROP_EXPAND};
pub use load::{load_image, ImageError, MIN_SIDE};
pub use mask::{face_mask, face_mask_image, mask_tensor, FaceBox, FACE_MASK_SCALE};
pub use pixels::{GrayImage, Image, RgbImage};
pub use prep::{
    clip_pixel_values, reference_tensor, sonic_resize_dims, ImagePrep, PreparedImage, CLIP_MEAN,
    CLIP_SIZE, CLIP_STD, SHORT_SIDE,
};
pub use resample::{resize, resize_bicubic, resize_lanczos, Filter};
