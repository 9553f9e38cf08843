//! Reading a portrait file into 8-bit RGB, as `Image.open(path).convert("RGB")` would.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use ::image::{DynamicImage, ImageError as DecodeError, ImageFormat, ImageReader};

use super::pixels::RgbImage;
use crate::{Error, Result};

/// The smallest portrait side accepted. The working size is at least 64 pixels a side and
/// the face detector needs some detail; anything smaller is almost surely the wrong file.
pub const MIN_SIDE: usize = 64;

/// Why an image file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },

    #[error("{path}: not an image in a supported format (PNG, JPEG, WebP or BMP)")]
    UnknownFormat { path: PathBuf },

    #[error("{path}: {format} images are not supported (PNG, JPEG, WebP and BMP are)")]
    UnsupportedFormat { path: PathBuf, format: String },

    #[error("{path}: corrupt or truncated image: {msg}")]
    Corrupt { path: PathBuf, msg: String },

    #[error("{path}: image too large to decode: {msg}")]
    TooLarge { path: PathBuf, msg: String },

    #[error(
        "{path}: too small for a portrait ({width}×{height}, need at least {MIN_SIDE}×{MIN_SIDE})"
    )]
    TooSmall {
        path: PathBuf,
        width: usize,
        height: usize,
    },
}

/// Loads a PNG, JPEG, WebP or BMP file (recognised by content, not extension) as 8-bit RGB.
///
/// Conversions follow Pillow's `convert("RGB")`: grey is replicated, alpha is dropped
/// without compositing, palettes are expanded, and 16-bit samples keep their high byte.
/// Differences from the reference: a 16-bit grey PNG keeps its high byte where Pillow
/// clips the 16-bit value to 255 (turning most of the picture white), and JPEG decoding
/// may differ from libjpeg's by a level or two. Like the reference, the EXIF orientation
/// is not applied.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file = || path.to_path_buf();
    if bytes.is_empty() {
        return Err(ImageError::Empty { path: file() }.into());
    }
    let reader = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let Some(format) = reader.format() else {
        return Err(ImageError::UnknownFormat { path: file() }.into());
    };
    // GIF decoding is compiled in only so the video module's GIF output can be read back;
    // portraits stay in the formats the messages above list.
    if format == ImageFormat::Gif {
        return Err(ImageError::UnsupportedFormat {
            path: file(),
            format: format!("{format:?}"),
        }
        .into());
    }
    let decoded = reader.decode().map_err(|e| match e {
        DecodeError::Unsupported(_) => ImageError::UnsupportedFormat {
            path: file(),
            format: format!("{format:?}"),
        },
        DecodeError::Limits(e) => ImageError::TooLarge {
            path: file(),
            msg: e.to_string(),
        },
        e => ImageError::Corrupt {
            path: file(),
            msg: e.to_string(),
        },
    })?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(ImageError::TooSmall {
            path: file(),
            width,
            height,
        }
        .into());
    }
    RgbImage::new(width, height, to_rgb(decoded))
}

/// Interleaved RGB bytes of any decoded image.
fn to_rgb(img: DynamicImage) -> Vec<u8> {
    fn rgb<T: Copy>(samples: &[T], channels: usize, byte: impl Fn(T) -> u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(samples.len() / channels * 3);
        for px in samples.chunks_exact(channels) {
            match px {
                [grey] | [grey, _] => out.extend([byte(*grey); 3]),
                [r, g, b, ..] => out.extend([byte(*r), byte(*g), byte(*b)]),
                [] => {}
            }
        }
        out
    }
    let same = |v: u8| v;
    let high = |v: u16| (v >> 8) as u8;
    match img {
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageRgba8(b) => rgb(&b, 4, same),
        DynamicImage::ImageLuma8(b) => rgb(&b, 1, same),
        DynamicImage::ImageLumaA8(b) => rgb(&b, 2, same),
        DynamicImage::ImageRgb16(b) => rgb(&b, 3, high),
        DynamicImage::ImageRgba16(b) => rgb(&b, 4, high),
        DynamicImage::ImageLuma16(b) => rgb(&b, 1, high),
        DynamicImage::ImageLumaA16(b) => rgb(&b, 2, high),
        // Float images come from no enabled format; the crate's clamping conversion will do.
        other => other.to_rgb8().into_raw(),
    }
}
