//! Face detection: the seam the pipeline asks for a face box (for the mask and the optional
//! crop), the reference's post-processing (NMS, largest face), a built-in detector that
//! needs no downloaded weights, and the reference's YOLOv5m-face for when its weights are at hand.

mod skin;
mod yolo;
mod yolov5;

pub use skin::SkinFaceDetector;
pub use yolo::{
    verify_fixture as verify_yolo_fixture, yolo_input, yolo_input_size, YoloDecode,
    YoloFaceDetector, YOLO_ROW,
};
pub use yolov5::{LayerSpec, YoloConfig, YoloFaceNet, YoloOutput, YOLO_STRIDE_MULTIPLE};

use crate::image::{FaceBox, RgbImage};
use crate::Result;

/// IoU above which the reference's NMS drops the lower-scoring box.
pub const NMS_IOU: f64 = 0.45;

/// One detected face.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub face: FaceBox,
    /// Confidence in [0, 1]; comparable only between detections of the same detector.
    pub score: f32,
}

/// Finds faces in an image.
pub trait FaceDetector {
    /// Every face found, best score first; empty when there is none.
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>>;
}

/// The face the pipeline uses: the largest detected box, or `None` when nothing was found
/// (the caller then falls back to its default box and warns).
///
/// The reference's `maxface` selection never updates its running maximum, so it returns
/// the last face larger than the first one; this returns the largest.
pub fn largest_face(detector: &dyn FaceDetector, img: &RgbImage) -> Result<Option<FaceBox>> {
    Ok(detector
        .detect(img)?
        .into_iter()
        .map(|d| d.face)
        .max_by(|a, b| (a.w * a.h).total_cmp(&(b.w * b.h))))
}

/// Intersection over union of two boxes; 0 when either is empty.
pub fn iou(a: &FaceBox, b: &FaceBox) -> f64 {
    let ix = ((a.x + a.w).min(b.x + b.w) - a.x.max(b.x)).max(0.0);
    let iy = ((a.y + a.h).min(b.y + b.h) - a.y.max(b.y)).max(0.0);
    let inter = ix * iy;
    let union = a.w * a.h + b.w * b.h - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy non-maximum suppression as torchvision's `nms`: by descending score (stable for
/// ties), keep a box unless it overlaps an already kept one by more than `threshold`.
pub fn nms(mut detections: Vec<Detection>, threshold: f64) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(detections.len());
    for d in detections {
        if kept.iter().all(|k| iou(&k.face, &d.face) <= threshold) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests;
