//! Scalar kernels written so LLVM can vectorise the loops that call them.

/// e^x with about 2 ulp error, branch-free so it vectorises. NaN stays NaN; results
/// below f32's normal range flush to zero.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let n = (xc * LOG2E + 0.5).floor();
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let e = p * r * r + r + 1.0;
    // Adding 1.5·2²³ puts the integer n, exactly, in the low mantissa bits: the value of
    // `n as i32` without the saturating conversion, which does not vectorise.
    let n = (n + 12_582_912.0).to_bits() as i32 - 0x4B40_0000;
    exp_finish(x, e, n)
}

/// [`exp`] with fused multiply-adds and round-to-nearest range reduction: fewer
/// instructions, same accuracy. For loops compiled with FMA (elsewhere `mul_add` is a
/// slow library call).
#[inline(always)]
pub fn exp_fma(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let t = xc.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, xc));
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p.mul_add(r, c);
    }
    let e = p.mul_add(r * r, r) + 1.0;
    exp_finish(x, e, t.to_bits() as i32 - 0x4B40_0000)
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_MIN: f32 = -87.336_55;
const EXP_MAX: f32 = 88.722_83;
/// e^r ≈ 1 + r + r²·p(r) on |r| ≤ ln2/2, highest coefficient first.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `e·2^n`, then the saturation and NaN cases of `exp(x)`.
#[inline(always)]
fn exp_finish(x: f32, e: f32, n: i32) -> f32 {
    // 2^n assembled from exponent bits in two halves: n is within [-126, 128] after the
    // clamp, and 2^128 (needed just below overflow) is not a finite f32.
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let y = e * pow2(n >> 1) * pow2(n - (n >> 1));
    let y = if x > EXP_MAX { f32::INFINITY } else { y };
    let y = if x < EXP_MIN { 0.0 } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

/// [`silu`] on [`exp_fma`].
#[inline(always)]
pub fn silu_fma(x: f32) -> f32 {
    x / (1.0 + exp_fma(-x))
}

#[inline(always)]
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // tanh(x) = 1 − 2/(e^{2x}+1); exact limits for large |x| come from exp's saturation.
    // Near 0 that difference cancels to an absolute error of an ulp of 1, so small inputs
    // take the odd Taylor series, whose truncation there is far below an ulp of the result.
    let x2 = x * x;
    let series =
        x + x * x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0))));
    let formula = 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
    if x.abs() < 0.25 {
        series
    } else {
        formula
    }
}

#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    0.5 * x * (1.0 + tanh(C * (x + 0.044_715 * x * x * x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        ((a as f64) - b).abs() / (b.abs() * f32::EPSILON as f64).max(f32::MIN_POSITIVE as f64)
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_f64() {
        for f in [exp, exp_fma] {
            let mut worst = 0.0f64;
            let mut x = -87.0f32;
            while x < 88.0 {
                worst = worst.max(ulps(f(x), (x as f64).exp()));
                x += 0.0137;
            }
            assert!(worst < 4.0, "worst error {worst} ulp");
        }
    }

    #[test]
    fn exponent_bits_trick_matches_the_integer_conversion() {
        for n in -126..=128 {
            let f = n as f32;
            assert_eq!((f + 12_582_912.0).to_bits() as i32 - 0x4B40_0000, n);
        }
    }

    #[test]
    fn exp_edges() {
        for f in [exp, exp_fma] {
            assert_eq!(f(0.0), 1.0);
            assert_eq!(f(-1000.0), 0.0);
            assert_eq!(f(1000.0), f32::INFINITY);
            assert_eq!(f(f32::NEG_INFINITY), 0.0);
            assert_eq!(f(f32::INFINITY), f32::INFINITY);
            assert!(f(f32::NAN).is_nan());
            for x in [88.72f32, 88.5, -87.33, -87.0] {
                assert!(ulps(f(x), (x as f64).exp()) < 4.0, "exp({x})");
            }
        }
    }

    #[test]
    fn silu_variants_match_f64() {
        for i in -400..=400 {
            let x = i as f32 * 0.05;
            let expected = x as f64 / (1.0 + (-(x as f64)).exp());
            for f in [silu, silu_fma] {
                assert!((f(x) as f64 - expected).abs() <= 4e-7 * expected.abs().max(1e-3));
            }
        }
    }

    #[test]
    fn tanh_and_sigmoid_match_f64() {
        for i in -400..=400 {
            let x = i as f32 * 0.05;
            assert!(
                (tanh(x) as f64 - (x as f64).tanh()).abs() < 2e-7,
                "tanh({x})"
            );
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid(x) as f64 - s).abs() < 2e-7, "sigmoid({x})");
        }
    }
}
