//! The face box and the face-region mask that gates the spatial audio attention.

use serde::{Deserialize, Serialize};

use super::pixels::GrayImage;
use crate::{Error, Result, Tensor};

/// How much larger than the detected face the mask rectangle is, per side length
/// (the reference's `area` setting).
pub const FACE_MASK_SCALE: f64 = 1.1;

/// A detected face: top-left corner and size in pixels, as the face detector reports it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl FaceBox {
    /// The box from its corners `(x1, y1)` and `(x2, y2)`.
    pub fn from_corners(x1: f64, y1: f64, x2: f64, y2: f64) -> Self {
        FaceBox {
            x: x1,
            y: y1,
            w: x2 - x1,
            h: y2 - y1,
        }
    }
}

/// The mask as the reference draws it: 255 inside a rectangle `scale` times the box's size,
/// centred on the box centre, clipped to the `width`×`height` image; 0 elsewhere.
///
/// The arithmetic is the reference's, in f64 like Python floats: the centre is
/// `(x1 + x2) // 2`, the half sizes `(scale·w) // 2` (floor division), and the clipped
/// corners are truncated to whole pixels, the far one exclusive.
pub fn face_mask_image(
    face: &FaceBox,
    width: usize,
    height: usize,
    scale: f64,
) -> Result<GrayImage> {
    let FaceBox { x, y, w, h } = *face;
    if ![x, y, w, h, scale].iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 || scale <= 0.0 {
        return Err(Error::invalid(
            "face_mask",
            format!("invalid face box {face:?} or scale {scale}"),
        ));
    }
    // The reference recomputes the size from the corners, which can differ from w and h in
    // the last bit.
    let (x2, y2) = (x + w, y + h);
    let (half_w, half_h) = (
        ((x2 - x) * scale / 2.0).floor(),
        ((y2 - y) * scale / 2.0).floor(),
    );
    let (cx, cy) = (((x2 + x) / 2.0).floor(), ((y2 + y) / 2.0).floor());
    let cols = pixel_range(cx - half_w, cx + half_w, width);
    let rows = pixel_range(cy - half_h, cy + half_h, height);
    if cols.is_empty() || rows.is_empty() {
        return Err(Error::invalid(
            "face_mask",
            format!("face box {face:?} lies outside the {width}x{height} image"),
        ));
    }
    let mut data = vec![0u8; width * height];
    for row in data
        .chunks_exact_mut(width)
        .skip(rows.start)
        .take(rows.len())
    {
        row[cols.clone()].fill(255);
    }
    GrayImage::new(width, height, data)
}

/// `max(lo, 0)` and `min(hi, size)`, truncated to pixel indices.
fn pixel_range(lo: f64, hi: f64, size: usize) -> std::ops::Range<usize> {
    let start = lo.max(0.0) as usize;
    let end = hi.min(size as f64).max(0.0) as usize;
    start.min(end)..end
}

/// The face mask as a `[1, 1, H, W]` tensor of zeros and ones, on the CPU.
pub fn face_mask(face: &FaceBox, width: usize, height: usize, scale: f64) -> Result<Tensor> {
    mask_tensor(&face_mask_image(face, width, height, scale)?)
}

/// A mask image as `[1, 1, H, W]` in [0, 1] (torchvision's `ToTensor`), on the CPU.
pub fn mask_tensor(mask: &GrayImage) -> Result<Tensor> {
    mask.to_nchw(|_, v| f32::from(v) / 255.0)
}
