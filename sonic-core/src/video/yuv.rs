//! RGB8 → YUV 4:2:0 (BT.601, limited range), the colour space the H.264 stream signals.
//!
//! BT.601 limited range is also what decoders assume for untagged SD-style streams, so the
//! tag and the common default agree. Chroma is the average of each 2×2 block (the conversion
//! is linear, so averaging RGB first is the same); all rounding is to nearest.

use openh264::formats::YUVSource;

/// One frame's planes, reused from frame to frame.
pub(super) struct Yuv420 {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

// BT.601 limited-range coefficients scaled by 2^16; each chroma row sums to zero so grey
// stays exactly at 128.
const KY: [i32; 3] = [16_829, 33_039, 6_416];
const KU: [i32; 3] = [-9_714, -19_070, 28_784];
const KV: [i32; 3] = [28_784, -24_103, -4_681];

fn dot(k: [i32; 3], r: i32, g: i32, b: i32) -> i32 {
    k[0] * r + k[1] * g + k[2] * b
}

impl Yuv420 {
    /// `width` and `height` must be even (checked by the spec).
    pub fn new(width: usize, height: usize) -> Yuv420 {
        Yuv420 {
            width,
            height,
            y: vec![0; width * height],
            u: vec![0; width * height / 4],
            v: vec![0; width * height / 4],
        }
    }

    /// Converts packed RGB8 rows of this frame's size.
    pub fn fill_from_rgb(&mut self, rgb: &[u8]) {
        debug_assert_eq!(rgb.len(), self.width * self.height * 3);
        let (w, cw) = (self.width, self.width / 2);
        let px = |x: usize, y: usize| {
            let i = (y * w + x) * 3;
            (
                i32::from(rgb[i]),
                i32::from(rgb[i + 1]),
                i32::from(rgb[i + 2]),
            )
        };
        for (i, luma) in self.y.iter_mut().enumerate() {
            let (r, g, b) = px(i % w, i / w);
            *luma = (16 + ((dot(KY, r, g, b) + (1 << 15)) >> 16)) as u8;
        }
        for cy in 0..self.height / 2 {
            for cx in 0..cw {
                let (mut r, mut g, mut b) = (0, 0, 0);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let p = px(2 * cx + dx, 2 * cy + dy);
                    (r, g, b) = (r + p.0, g + p.1, b + p.2);
                }
                // Sums of four pixels: two more bits to shift away.
                let chroma = |k| (128 + ((dot(k, r, g, b) + (1 << 17)) >> 18)).clamp(0, 255) as u8;
                self.u[cy * cw + cx] = chroma(KU);
                self.v[cy * cw + cx] = chroma(KV);
            }
        }
    }
}

impl YUVSource for Yuv420 {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(rgb: [u8; 3]) -> (u8, u8, u8) {
        let mut yuv = Yuv420::new(2, 2);
        yuv.fill_from_rgb(&rgb.repeat(4));
        assert!(yuv.y.iter().all(|&l| l == yuv.y[0]));
        (yuv.y[0], yuv.u[0], yuv.v[0])
    }

    #[test]
    fn reference_colours() {
        // BT.601 limited range: black 16, white 235, neutral chroma 128.
        assert_eq!(convert([0, 0, 0]), (16, 128, 128));
        assert_eq!(convert([255, 255, 255]), (235, 128, 128));
        assert_eq!(convert([128, 128, 128]), (126, 128, 128));
        assert_eq!(convert([255, 0, 0]), (81, 90, 240));
        assert_eq!(convert([0, 255, 0]), (145, 54, 34));
        assert_eq!(convert([0, 0, 255]), (41, 240, 110));
    }

    #[test]
    fn chroma_averages_each_block() {
        let mut yuv = Yuv420::new(4, 2);
        let mut rgb = Vec::new();
        for _row in 0..2 {
            rgb.extend([255, 0, 0].repeat(2));
            rgb.extend([0, 0, 255].repeat(2));
        }
        yuv.fill_from_rgb(&rgb);
        assert_eq!(yuv.u, [90, 240]);
        assert_eq!(yuv.v, [240, 110]);
    }
}
