//! Seeded Gaussian noise with one independent stream per frame, so that lengthening a
//! sequence never changes the noise of the frames it already had.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use rand_distr::StandardNormal;

use crate::{Device, Result, Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameNoise {
    seed: u64,
}

impl FrameNoise {
    pub fn new(seed: u64) -> Self {
        FrameNoise { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// `len` standard-normal values of frame `index`: ChaCha12 keyed by the seed, on the
    /// stream numbered by the frame.
    pub fn frame(&self, index: u64, len: usize) -> Vec<f32> {
        let mut rng = ChaCha12Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        (0..len)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect()
    }

    /// Frames `start..start+count` stacked into `[count, frame_shape…]`.
    pub fn frames(
        &self,
        start: u64,
        count: usize,
        frame_shape: &Shape,
        device: Device,
    ) -> Result<Tensor> {
        let per = frame_shape.elem_count();
        let mut data = Vec::with_capacity(count * per);
        for i in 0..count as u64 {
            data.extend(self.frame(start + i, per));
        }
        let mut dims = vec![count];
        dims.extend_from_slice(frame_shape.dims());
        Tensor::from_vec(data, dims, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise_and_streams_differ() {
        let a = FrameNoise::new(7);
        assert_eq!(a.frame(3, 64), FrameNoise::new(7).frame(3, 64));
        assert_ne!(a.frame(3, 64), a.frame(4, 64));
        assert_ne!(a.frame(3, 64), FrameNoise::new(8).frame(3, 64));
    }

    #[test]
    fn extending_a_sequence_keeps_earlier_frames() {
        let noise = FrameNoise::new(42);
        let shape = Shape::new([4, 3, 5]);
        let short = noise
            .frames(0, 3, &shape, Device::Cpu)
            .unwrap()
            .to_vec()
            .unwrap();
        let long = noise
            .frames(0, 9, &shape, Device::Cpu)
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(short[..], long[..short.len()]);
        let tail = noise
            .frames(3, 6, &shape, Device::Cpu)
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(tail[..], long[short.len()..]);
    }

    #[test]
    fn samples_are_standard_normal() {
        let v = FrameNoise::new(1).frame(0, 200_000);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let kurt = v.iter().map(|&x| (x as f64 - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
    }
}
