//! The reference's YOLOv5m-face detector: the input size it resizes to, the decoding of the
//! network's `[N, 16]` output rows into face boxes, and [`YoloFaceDetector`], which runs
//! [`YoloFaceNet`] between the two.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::yolov5::{check_face_rows, yolo_load_report, YoloConfig, YoloFaceNet};
use super::{nms, Detection, FaceDetector};
use crate::backend::ResizeMode;
use crate::image::{FaceBox, RgbImage};
use crate::weights::{LoadReport, VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Tensor};

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

/// The network input for `img`: resized bilinearly (half-pixel centres, no antialias, as
/// OpenCV's `INTER_LINEAR`) to [`yolo_input_size`], rounded to bytes as OpenCV's uint8
/// output is, then RGB/255 as `[1, 3, h1, w1]` on the CPU.
pub fn yolo_input(img: &RgbImage) -> Result<Tensor> {
    let (w1, h1) = yolo_input_size(img.width(), img.height())?;
    let resized =
        img.to_nchw(|_, v| f32::from(v))?
            .resize2d(h1, w1, ResizeMode::Bilinear, false)?;
    let scaled = resized
        .to_vec()?
        .into_iter()
        .map(|v| v.round().clamp(0.0, 255.0) / 255.0)
        .collect();
    Tensor::from_vec(scaled, [1, 3, h1, w1], Device::Cpu)
}

/// YOLOv5-face as a [`FaceDetector`]: preprocessing, network and decoding as the reference.
#[derive(Clone, Debug)]
pub struct YoloFaceDetector {
    net: YoloFaceNet,
    pub decode: YoloDecode,
    device: Device,
    report: LoadReport,
}

impl YoloFaceDetector {
    /// Builds from a state dict under `vb` (keys `model.<i>.…`).
    pub fn new(config: YoloConfig, vb: &VarBuilder) -> Result<Self> {
        let net = YoloFaceNet::new(config, vb)?;
        check_face_rows(&net)?;
        Ok(YoloFaceDetector {
            net,
            decode: YoloDecode::default(),
            device: vb.device(),
            report: yolo_load_report(vb),
        })
    }

    /// Loads yolov5m-face in f32 from the released TorchScript archive (`yoloface_v5m.pt`)
    /// or from a state dict file (safetensors or a `torch.save`d `.pth`).
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        Self::load_with(path, YoloConfig::default(), device)
    }

    pub fn load_with(path: &Path, config: YoloConfig, device: Device) -> Result<Self> {
        let store = Arc::new(WeightStore::open(&[path])?);
        Self::new(config, &VarBuilder::new(store, DType::F32, device))
    }

    pub fn net(&self) -> &YoloFaceNet {
        &self.net
    }

    /// What the load read; BatchNorm step counters are listed as expected unused.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }
}

impl FaceDetector for YoloFaceDetector {
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let input = yolo_input(img)?;
        let size = (input.dims()[3], input.dims()[2]);
        let out = self.net.forward(&input.to_device(self.device)?)?;
        self.decode
            .decode(&out.rows.to_vec()?, size, (img.width(), img.height()))
    }
}

/// Fixture kind `model.yolo-face`: `config.json` (the model description) and
/// `weights.safetensors` (upstream keys, BatchNorm unfused), `image` `[1, 3, H, W]` →
/// `raw0`… per level and the decoded `rows`.
pub fn verify_fixture(
    fx: &crate::verify::Fixture,
    device: Device,
) -> Result<BTreeMap<String, Tensor>> {
    let config_path = fx.dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let config: YoloConfig = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: config_path,
        msg: e.to_string(),
    })?;
    let vb = fx.weights(device)?;
    let net = YoloFaceNet::new(config, &vb)?;
    let report = yolo_load_report(&vb);
    if !report.is_clean() || !report.unused.is_empty() {
        return Err(Error::file(
            fx.dir.join("weights.safetensors"),
            format!("unexpected load report: {report}"),
        ));
    }
    let out = net.forward(&fx.tensor("image", device)?)?;
    let mut produced: BTreeMap<String, Tensor> = out
        .raw
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("raw{i}"), t))
        .collect();
    produced.insert("rows".into(), out.rows);
    Ok(produced)
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
