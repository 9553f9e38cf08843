//! 8-bit images with interleaved channels: the form Pillow works in, so resampling can be
//! reproduced byte for byte before anything becomes a float tensor.

use crate::{Device, Error, Result, Tensor};

/// An 8-bit image with `C` interleaved channels, rows top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image<const C: usize> {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

/// An RGB image, 3 bytes per pixel.
pub type RgbImage = Image<3>;

/// A single-channel image (masks).
pub type GrayImage = Image<1>;

impl<const C: usize> Image<C> {
    /// Wraps `data` (`height` rows of `width` pixels of `C` bytes); both sizes must be non-zero.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        if Self::byte_len(width, height)? != data.len() {
            return Err(Error::invalid(
                "Image::new",
                format!(
                    "{} bytes do not make a {width}x{height} image with {C} channels",
                    data.len()
                ),
            ));
        }
        Ok(Image {
            width,
            height,
            data,
        })
    }

    /// An image with every pixel set to `pixel`.
    pub fn filled(width: usize, height: usize, pixel: [u8; C]) -> Result<Self> {
        let data = pixel.repeat(Self::byte_len(width, height)? / C);
        Image::new(width, height, data)
    }

    /// Bytes of a `width`×`height` image; an error for empty or unaddressable sizes.
    fn byte_len(width: usize, height: usize) -> Result<usize> {
        width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(C))
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Error::invalid(
                    "Image::new",
                    format!("cannot make a {width}x{height} image"),
                )
            })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// The interleaved bytes, row by row.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The pixel at column `x`, row `y`; `None` outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Option<[u8; C]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y * self.width + x) * C;
        self.data[at..at + C].try_into().ok()
    }

    /// Reads an `[H, W, C]` tensor of whole numbers in 0..=255 (how fixtures store images).
    pub fn from_hwc_tensor(t: &Tensor) -> Result<Self> {
        let &[height, width, channels] = t.dims() else {
            return Err(Error::invalid(
                "Image::from_hwc_tensor",
                format!("expected [H, W, {C}], found {}", t.shape()),
            ));
        };
        if channels != C {
            return Err(Error::invalid(
                "Image::from_hwc_tensor",
                format!("expected {C} channels, found {}", t.shape()),
            ));
        }
        let data = t
            .to_vec()?
            .into_iter()
            .map(|v| {
                if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                    Ok(v as u8)
                } else {
                    Err(Error::invalid(
                        "Image::from_hwc_tensor",
                        format!("{v} is not a byte value"),
                    ))
                }
            })
            .collect::<Result<Vec<u8>>>()?;
        Image::new(width, height, data)
    }

    /// The image as an `[H, W, C]` f32 tensor of byte values, on the CPU.
    pub fn to_hwc_tensor(&self) -> Result<Tensor> {
        let data = self.data.iter().map(|&b| f32::from(b)).collect();
        Tensor::from_vec(data, [self.height, self.width, C], Device::Cpu)
    }

    /// Channel-first f32 `[1, C, H, W]` with each byte mapped through `f`, on the CPU.
    pub(crate) fn to_nchw(&self, f: impl Fn(usize, u8) -> f32) -> Result<Tensor> {
        let plane = self.width * self.height;
        let mut out = vec![0.0f32; plane * C];
        for (i, px) in self.data.chunks_exact(C).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                out[c * plane + i] = f(c, v);
            }
        }
        Tensor::from_vec(out, [1, C, self.height, self.width], Device::Cpu)
    }
}
