//! What the kernel test suites share: fresh random inputs and the per-dtype tolerance.

use sonic_core::DType;

/// xorshift64*: fresh per run unless SONIC_TEST_SEED fixes it.
pub struct Rng(u64);

impl Rng {
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("SONIC_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: SONIC_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
}

/// Absolute-plus-relative tolerance per dtype, scaled for ops that sum long rows.
pub fn tolerance(dtype: DType, loose: f32) -> f32 {
    loose
        * match dtype {
            DType::F32 => 2e-5,
            DType::F16 => 2e-3,
            DType::BF16 => 1.6e-2,
        }
}
