//! The reference's YOLOv5m-face pre- and post-processing, independent of how the network
//! itself is run: the input size it resizes to, and the decoding of its `[N, 16]` output
//! rows into face boxes.

use super::{nms, Detection};
use crate::image::FaceBox;
use crate::{Error, Result};

/// Values per output row: `cx, cy, w, h, obj`, five landmarks (x, y), `cls`.
pub const YOLO_ROW: usize = 16;

/// The reference's thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct YoloDecode {
    /// Rows with objectness at or below this are dropped first.
    pub obj_threshold: f32,
    /// Then rows with `obj·cls` at or below this.
    pub conf_threshold: f32,
    pub nms_iou: f64,
}

impl Default for YoloDecode {
    fn default() -> Self {
        YoloDecode {
            obj_threshold: 0.5,
            conf_threshold: 0.5,
            nms_iou: super::NMS_IOU,
        }
    }
}

/// The network input size `(w1, h1)` for a `width`×`height` image: the short side scaled
/// to about 416 and both sides rounded up to a multiple of 32, no letterbox —
/// `int(h·r + 31) // 32 · 32` with `r = 416 / min(h, w)`.
pub fn yolo_input_size(width: usize, height: usize) -> Result<(usize, usize)> {
    if width == 0 || height == 0 {
        return Err(Error::invalid(
            "yolo_input_size",
            format!("empty image {width}x{height}"),
        ));
    }
    let r = 416.0 / width.min(height) as f64;
    let side = |s: usize| ((s as f64 * r + 31.0) as usize) / 32 * 32;
    Ok((side(width), side(height)))
}

impl YoloDecode {
    /// Decodes output rows (`[cx, cy, w, h]` in input pixels of the `input` = `(w1, h1)`
    /// image) into boxes of the `original` = `(w0, h0)` image, after the thresholds and NMS.
    pub fn decode(
        &self,
        rows: &[f32],
        input: (usize, usize),
        original: (usize, usize),
    ) -> Result<Vec<Detection>> {
        if !rows.len().is_multiple_of(YOLO_ROW) || input.0 == 0 || input.1 == 0 {
            return Err(Error::invalid(
                "yolo decode",
                format!(
                    "{} values are not rows of {YOLO_ROW}, or input size {input:?} is empty",
                    rows.len()
                ),
            ));
        }
        let sx = original.0 as f64 / input.0 as f64;
        let sy = original.1 as f64 / input.1 as f64;
        let found = rows
            .chunks_exact(YOLO_ROW)
            .filter(|r| r[4] > self.obj_threshold)
            .map(|r| (r, r[4] * r[15]))
            .filter(|&(_, conf)| conf > self.conf_threshold)
            .map(|(r, conf)| {
                let (cx, cy, w, h) = (r[0] as f64, r[1] as f64, r[2] as f64, r[3] as f64);
                Detection {
                    face: FaceBox {
                        x: (cx - w / 2.0) * sx,
                        y: (cy - h / 2.0) * sy,
                        w: w * sx,
                        h: h * sy,
                    },
                    score: conf,
                }
            })
            .collect();
        Ok(nms(found, self.nms_iou))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cx: f32, cy: f32, w: f32, h: f32, obj: f32, cls: f32) -> Vec<f32> {
        let mut r = vec![cx, cy, w, h, obj];
        r.extend([0.0; 10]);
        r.push(cls);
        r
    }

    #[test]
    fn input_size_follows_the_reference() {
        // 512x640: r = 0.8125 → 416, int(520 + 31) // 32 · 32 = 544.
        assert_eq!(yolo_input_size(512, 640).unwrap(), (416, 544));
        // 1920x1080: r = 0.385…, 739.5 + 31 → 770 // 32 · 32 = 768.
        assert_eq!(yolo_input_size(1920, 1080).unwrap(), (768, 416));
        assert_eq!(yolo_input_size(100, 100).unwrap(), (416, 416));
        assert!(yolo_input_size(0, 10).is_err());
    }

    #[test]
    fn decode_thresholds_rescales_and_suppresses() {
        let rows = [
            row(100.0, 100.0, 40.0, 50.0, 0.9, 0.9),  // conf 0.81: kept
            row(102.0, 101.0, 40.0, 50.0, 0.8, 0.9),  // overlaps the first: suppressed
            row(300.0, 200.0, 20.0, 20.0, 0.6, 0.9),  // conf 0.54: kept
            row(200.0, 300.0, 20.0, 20.0, 0.45, 1.0), // obj too low
            row(250.0, 300.0, 20.0, 20.0, 0.7, 0.7),  // conf 0.49: dropped
        ]
        .concat();
        let found = YoloDecode::default()
            .decode(&rows, (416, 544), (832, 1088))
            .unwrap();
        assert_eq!(found.len(), 2);
        assert!((found[0].score - 0.81).abs() < 1e-6);
        assert_eq!(
            found[0].face,
            FaceBox {
                x: 160.0,
                y: 150.0,
                w: 80.0,
                h: 100.0
            }
        );
        assert_eq!(found[1].face.x, 580.0);
        assert!(YoloDecode::default()
            .decode(&rows[..20], (416, 544), (832, 1088))
            .is_err());
    }
}
