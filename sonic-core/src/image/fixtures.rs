//! Runners for the image fixtures (`tests/fixtures/gen_image.py`). Images are stored as
//! `[H, W, 3]` byte values; preprocessing runs on the host whatever the device.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::mask::{face_mask_image, mask_tensor, FaceBox};
use super::pixels::RgbImage;
use super::prep::{clip_pixel_values, ImagePrep};
use super::resample::{resize, Filter};
use crate::verify::Fixture;
use crate::{Device, Error, Result, Tensor};

type Outputs = BTreeMap<String, Tensor>;

fn input(fx: &Fixture, name: &str) -> Result<RgbImage> {
    RgbImage::from_hwc_tensor(&fx.tensor(name, Device::Cpu)?)
}

#[derive(Deserialize)]
struct Resize {
    name: String,
    input: String,
    filter: String,
    width: usize,
    height: usize,
}

/// `image.pil-resize`: each entry of `params.resizes` is one Pillow resize of an input.
pub(crate) fn pil_resize(fx: &Fixture, _: Device) -> Result<Outputs> {
    let resizes: Vec<Resize> = fx.param("resizes")?;
    let mut out = Outputs::new();
    for r in resizes {
        let filter = match r.filter.as_str() {
            "lanczos" => Filter::Lanczos,
            "bicubic" => Filter::Bicubic,
            other => {
                return Err(Error::file(
                    fx.dir.join("meta.json"),
                    format!("resize `{}`: unknown filter `{other}`", r.name),
                ))
            }
        };
        let resized = resize(&input(fx, &r.input)?, r.width, r.height, filter)?;
        out.insert(r.name, resized.to_hwc_tensor()?);
    }
    Ok(out)
}

/// `image.clip-preprocess`: `pixel_values` of the input image.
pub(crate) fn clip_preprocess(fx: &Fixture, _: Device) -> Result<Outputs> {
    let mut out = Outputs::new();
    out.insert(
        "pixel_values".into(),
        clip_pixel_values(&input(fx, "image")?)?,
    );
    Ok(out)
}

/// `image.sonic-prep`: the mask at the original size, then the reference tensor and the
/// mask at the working size.
pub(crate) fn sonic_prep(fx: &Fixture, _: Device) -> Result<Outputs> {
    let img = input(fx, "image")?;
    let face: FaceBox = fx.param("face_box")?;
    let prep = ImagePrep {
        short_side: fx.param("short_side")?,
        mask_scale: fx.param("mask_scale")?,
    };
    let full = face_mask_image(&face, img.width(), img.height(), prep.mask_scale)?;
    let prepared = prep.prepare(&img, &face)?;
    let mut out = Outputs::new();
    out.insert("face_mask_full".into(), mask_tensor(&full)?);
    out.insert("reference".into(), prepared.reference);
    out.insert("face_mask".into(), prepared.face_mask);
    Ok(out)
}
