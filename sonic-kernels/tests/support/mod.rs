//! What the kernel test suites share: fresh random inputs and the per-dtype tolerance.

use sonic_core::backend::UnaryOp;
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

/// (x, slopes) of PReLU: per channel, shared, on a matrix, at rank 5 and on a vector.
pub const PRELU_CASES: [(&[usize], usize); 5] = [
    (&[3, 5, 7, 4], 5),
    (&[3, 5, 7, 4], 1),
    (&[7, 5], 5),
    (&[2, 3, 2, 3, 5], 3),
    (&[9], 1),
];

/// (x, w [c, o, kh, kw], stride, padding) of the transposed convolution: RIFE's 4×4
/// stride-2 upsampling, stride 1, a stride that leaves output positions no tap reaches,
/// and padding cropping taps.
pub const CONV_TRANSPOSE_CASES: [(&[usize], &[usize], usize, usize); 5] = [
    (&[2, 5, 9, 13], &[5, 7, 4, 4], 2, 1),
    (&[1, 3, 6, 5], &[3, 4, 3, 3], 1, 0),
    (&[2, 3, 4, 3], &[3, 2, 2, 3], 4, 0),
    (&[1, 2, 3, 4], &[2, 3, 5, 5], 2, 2),
    (&[1, 6, 7, 2], &[6, 5, 3, 2], 3, 1),
];

/// (x, grid) of grid_sample; the second is a single-row input, where align_corners maps
/// every y to row 0.
pub const GRID_SAMPLE_CASES: [(&[usize], &[usize]); 2] = [
    (&[2, 3, 7, 11], &[2, 5, 9, 2]),
    (&[1, 2, 1, 6], &[1, 4, 3, 2]),
];

/// `n` grid_sample coordinates: random ones reaching past the edges, and every seventh
/// an exact corner or a non-finite value (the reference reads zero at NaN and clamps ±∞
/// to the edge with border padding).
pub fn grid_points(rng: &mut Rng, n: usize) -> Vec<f32> {
    let special = [
        -1.0,
        1.0,
        0.0,
        -1.7,
        2.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
    ];
    let mut points = rng.vec(n, 1.6);
    for (p, &v) in points.iter_mut().step_by(7).zip(special.iter().cycle()) {
        *p = v;
    }
    points
}

/// Inputs of max_pool2d, on planes of the last two dims.
pub const MAX_POOL_SHAPES: [&[usize]; 2] = [&[2, 3, 11, 9], &[5, 8, 7]];

/// (kernel, stride, padding) of max_pool2d: YOLOv5-face's stem pool and SPP pools, an
/// overlapping strided pool, and windows that floor mode drops at the far edge.
pub const MAX_POOLS: [(usize, usize, usize); 5] =
    [(2, 2, 0), (5, 1, 2), (13, 1, 6), (3, 2, 1), (3, 3, 0)];

/// Exact equality in which NaN matches NaN: a NaN input must reach every output it touches.
#[track_caller]
pub fn assert_same_or_nan(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w || (g.is_nan() && w.is_nan()),
            "{what}: element {i} is {g}, expected {w}"
        );
    }
}

/// sonic-core's `UnaryOp` in declaration order: the CUDA kernel's op code is the index.
pub const UNARY_OPS: [UnaryOp; 16] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Square,
    UnaryOp::Recip,
    UnaryOp::Tanh,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Relu,
    UnaryOp::Sigmoid,
    UnaryOp::Silu,
    UnaryOp::GeluErf,
    UnaryOp::GeluTanh,
    UnaryOp::QuickGelu,
];

/// Log, Sqrt and Recip: the unary ops tested on positive inputs only.
pub fn positive_domain(op: UnaryOp) -> bool {
    matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip)
}
