//! The reference's `--crop`: a square around the detected face with room for hair, chin and
//! some shoulders, computed as `process_bbox` does.

use serde::Serialize;

use super::mask::FaceBox;
use super::pixels::RgbImage;
use crate::{Error, Result};

/// How far the crop reaches beyond the face box on every side, as a fraction of the box's
/// width (left, right) and height (top, bottom): the reference's `expand_ratio`.
pub const CROP_EXPAND: f64 = 0.5;

/// Pixel corners of a crop; the far corner is exclusive, as in a slice `[y1:y2, x1:x2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CropBox {
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
}

impl CropBox {
    pub fn width(&self) -> i64 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> i64 {
        self.y2 - self.y1
    }
}

/// The reference's crop square for `face` in a `width`×`height` image:
///
/// 1. expand the box by `expand`·w left and right and `expand`·h above and below, clipped
///    to the image;
/// 2. take the shorter side of that rectangle as the square's side;
/// 3. centre the square on the rectangle, moved along the longer side toward the face
///    centre by at most half the side difference, so it stays inside the rectangle;
/// 4. round each corner (Python's `round`: ties go to even).
pub fn crop_box(face: &FaceBox, width: usize, height: usize, expand: f64) -> Result<CropBox> {
    let FaceBox { x, y, w, h } = *face;
    if ![x, y, w, h, expand].iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 || expand < 0.0 {
        return Err(Error::invalid(
            "crop_box",
            format!("invalid face box {face:?} or expand ratio {expand}"),
        ));
    }
    let (x2, y2) = (x + w, y + h);
    let (bw, bh) = (x2 - x, y2 - y);
    let e = [
        (x - expand * bw).max(0.0),
        (y - expand * bh).max(0.0),
        (x2 + expand * bw).min(width as f64),
        (y2 + expand * bh).min(height as f64),
    ];
    let (eh, ew) = (e[3] - e[1], e[2] - e[0]);
    if eh <= 0.0 || ew <= 0.0 {
        return Err(Error::invalid(
            "crop_box",
            format!("face box {face:?} lies outside the {width}x{height} image"),
        ));
    }
    let (mut ch, mut cw) = ((e[1] + e[3]) / 2.0, (e[0] + e[2]) / 2.0);
    let half = eh.min(ew) / 2.0;
    let (face_ch, face_cw) = ((y + y2) / 2.0, (x + x2) / 2.0);
    let slack = ((eh - ew) / 2.0).abs();
    let nudge = |centre: f64, target: f64| {
        let s = slack.min((target - centre).abs());
        if target > centre {
            s
        } else {
            -s
        }
    };
    if ew < eh {
        ch += nudge(ch, face_ch);
    } else {
        cw += nudge(cw, face_cw);
    }
    let r = |v: f64| v.round_ties_even() as i64;
    Ok(CropBox {
        x1: r(cw - half),
        y1: r(ch - half),
        x2: r(cw + half),
        y2: r(ch + half),
    })
}

/// The pixels of `b` within `img` (a box reaching outside is cut at the edges).
pub fn crop_image(img: &RgbImage, b: &CropBox) -> Result<RgbImage> {
    let clamp = |v: i64, max: usize| v.clamp(0, max as i64) as usize;
    let (x1, x2) = (clamp(b.x1, img.width()), clamp(b.x2, img.width()));
    let (y1, y2) = (clamp(b.y1, img.height()), clamp(b.y2, img.height()));
    if x2 <= x1 || y2 <= y1 {
        return Err(Error::invalid(
            "crop_image",
            format!(
                "crop {b:?} is empty inside the {}x{} image",
                img.width(),
                img.height()
            ),
        ));
    }
    let stride = img.width() * 3;
    let mut data = Vec::with_capacity((x2 - x1) * (y2 - y1) * 3);
    for row in img.data().chunks_exact(stride).skip(y1).take(y2 - y1) {
        data.extend_from_slice(&row[x1 * 3..x2 * 3]);
    }
    RgbImage::new(x2 - x1, y2 - y1, data)
}

/// `--crop`: the square around `face` with the reference's expand ratio, and its pixels.
pub fn crop_to_face(img: &RgbImage, face: &FaceBox) -> Result<(RgbImage, CropBox)> {
    let b = crop_box(face, img.width(), img.height(), CROP_EXPAND)?;
    Ok((crop_image(img, &b)?, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_process_bbox() {
        // Expected values printed by the reference's process_bbox(bbox, 0.5, h, w).
        let cases = [
            ((156.0, 165.0, 356.0, 430.0), (512, 640), [56, 98, 456, 498]),
            ((20.0, 30.0, 120.0, 150.0), (400, 300), [0, 5, 170, 175]),
            (
                (1700.0, 200.0, 1850.0, 400.0),
                (1920, 1080),
                [1625, 152, 1920, 448],
            ),
            ((10.5, 300.25, 90.5, 380.75), (100, 400), [0, 290, 100, 390]),
            ((0.0, 0.0, 64.0, 64.0), (64, 64), [0, 0, 64, 64]),
        ];
        for ((x1, y1, x2, y2), (w, h), expected) in cases {
            let b = crop_box(&FaceBox::from_corners(x1, y1, x2, y2), w, h, CROP_EXPAND).unwrap();
            assert_eq!([b.x1, b.y1, b.x2, b.y2], expected, "{x1},{y1},{x2},{y2}");
        }
    }

    #[test]
    fn crops_the_pixels_and_rejects_bad_boxes() {
        let data: Vec<u8> = (0..6 * 4 * 3).map(|v| v as u8).collect();
        let img = RgbImage::new(6, 4, data).unwrap();
        let (crop, b) = crop_to_face(&img, &FaceBox::from_corners(2.0, 1.0, 4.0, 3.0)).unwrap();
        assert_eq!([b.x1, b.y1, b.x2, b.y2], [1, 0, 5, 4]);
        assert_eq!((crop.width(), crop.height()), (4, 4));
        assert_eq!(crop.pixel(0, 0), img.pixel(1, 0));
        assert_eq!(crop.pixel(3, 3), img.pixel(4, 3));
        assert!(crop_box(&FaceBox::from_corners(2.0, 1.0, 2.0, 3.0), 6, 4, 0.5).is_err());
        assert!(crop_box(&FaceBox::from_corners(10.0, 10.0, 12.0, 12.0), 6, 4, 0.5).is_err());
        assert!(crop_box(&FaceBox::from_corners(f64::NAN, 1.0, 2.0, 3.0), 6, 4, 0.5).is_err());
        let outside = CropBox {
            x1: 7,
            y1: 0,
            x2: 9,
            y2: 2,
        };
        assert!(crop_image(&img, &outside).is_err());
    }
}
