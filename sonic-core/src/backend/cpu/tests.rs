//! Op tests of the CPU backend through the public `Tensor` API. Every op is compared with a
//! naive f64 reference written here (direct loops, no blocking, tiling or vector lanes),
//! with hand-computed values, or with literal outputs of PyTorch.
//!
//! Tolerances. `check` allows `tol · max(|expected|, 1)`: relative above magnitude 1 and
//! absolute below it, because a sum of signed terms can cancel to near zero while keeping
//! the rounding error of its terms. `check_rel` is purely relative, for maps that must be
//! accurate to a few ulp everywhere, as PyTorch's are. `TOL` covers a handful of f32
//! roundings; `LOOSE` is for reductions of hundreds of terms or more in f32 (dot products
//! of convolutions, group statistics), whose error grows with the number of terms.

use crate::backend::{ConvParams, ResizeMode};
use crate::rng::FrameNoise;
use crate::{DType, Device, Error, Result, Tensor};

const TOL: f64 = 1e-5;
const LOOSE: f64 = 1e-4;

fn tensor(data: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_slice(data, dims, Device::Cpu).unwrap()
}

/// Standard-normal data; distinct seeds give unrelated tensors.
fn randn(seed: u64, dims: &[usize]) -> Tensor {
    let len = dims.iter().product();
    tensor(&FrameNoise::new(seed).frame(0, len), dims)
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_vec().unwrap().into_iter().map(f64::from).collect()
}

/// Asserts the shape, and every value within `tol · max(|expected|, floor)`; non-finite
/// expected values must be matched exactly (NaN by NaN).
fn compare(what: &str, actual: &Tensor, dims: &[usize], expected: &[f64], tol: f64, floor: f64) {
    assert_eq!(actual.dims(), dims, "{what}: shape");
    let actual = actual.to_vec().unwrap();
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let a = f64::from(a);
        let ok = if e.is_finite() {
            (a - e).abs() <= tol * e.abs().max(floor)
        } else {
            a == e || (a.is_nan() && e.is_nan())
        };
        assert!(ok, "{what}: element {i} is {a}, expected {e}");
    }
}

fn check(what: &str, actual: &Tensor, dims: &[usize], expected: &[f64], tol: f64) {
    compare(what, actual, dims, expected, tol, 1.0);
}

fn check_rel(what: &str, actual: &Tensor, dims: &[usize], expected: &[f64], tol: f64) {
    compare(what, actual, dims, expected, tol, 0.0);
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T>, op: &str) {
    match result {
        Err(Error::InvalidArgument { op: found, .. }) if found == op => {}
        other => panic!("expected an invalid-argument error from {op}, got {other:?}"),
    }
}

fn assert_shape_mismatch<T: std::fmt::Debug>(result: Result<T>, op: &str) {
    match result {
        Err(Error::ShapeMismatch { op: found, .. }) if found == op => {}
        other => panic!("expected a shape mismatch from {op}, got {other:?}"),
    }
}

/// The multi-index of flat row-major position `i`.
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for (slot, &d) in index.iter_mut().zip(dims).rev() {
        *slot = i % d;
        i /= d;
    }
    index
}

/// The flat row-major position of a multi-index.
fn ravel(index: &[usize], dims: &[usize]) -> usize {
    index.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

mod elementwise {
    use super::*;

    /// Two elementwise chunks (2^15 elements each) and an odd tail.
    const LEN: usize = 2 * (1 << 15) + 13;

    fn linspace(lo: f64, hi: f64, n: usize) -> Tensor {
        let data: Vec<f32> = (0..n)
            .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32)
            .collect();
        tensor(&data, &[n])
    }

    type Map = fn(&Tensor) -> Result<Tensor>;
    type UnaryCase = (&'static str, Map, fn(f64) -> f64);

    fn gelu_tanh(x: f64) -> f64 {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
    }

    /// Compares each map with its f64 reference within `TOL` (see [`compare`] for `floor`).
    fn run_unary(cases: &[UnaryCase], x: &Tensor, floor: f64) {
        let xs = f64s(x);
        for &(name, op, reference) in cases {
            let expected: Vec<f64> = xs.iter().map(|&v| reference(v)).collect();
            compare(name, &op(x).unwrap(), x.dims(), &expected, TOL, floor);
        }
    }

    #[test]
    fn unary_maps_are_accurate_relative_to_f64() {
        let cases: [UnaryCase; 12] = [
            ("neg", Tensor::neg, |x| -x),
            ("abs", Tensor::abs, f64::abs),
            ("exp", Tensor::exp, f64::exp),
            ("sqr", Tensor::sqr, |x| x * x),
            ("recip", Tensor::recip, |x| 1.0 / x),
            ("tanh", Tensor::tanh, f64::tanh),
            ("sin", Tensor::sin, f64::sin),
            ("cos", Tensor::cos, f64::cos),
            ("relu", Tensor::relu, |x| x.max(0.0)),
            ("sigmoid", Tensor::sigmoid, sigmoid),
            ("silu", Tensor::silu, |x| x * sigmoid(x)),
            ("quick_gelu", Tensor::quick_gelu, |x| x * sigmoid(1.702 * x)),
        ];
        run_unary(&cases, &linspace(-9.0, 9.0, LEN), 0.0);
    }

    #[test]
    fn log_and_sqrt_on_positive_inputs() {
        let cases: [UnaryCase; 2] = [
            ("log", Tensor::log, f64::ln),
            ("sqrt", Tensor::sqrt, f64::sqrt),
        ];
        run_unary(&cases, &linspace(1e-3, 50.0, LEN), 0.0);
    }

    /// Both GELUs compute `1 + erf` or `1 + tanh`, which cancels for negative inputs, as in
    /// PyTorch's formula; only the absolute error stays small there.
    #[test]
    fn gelus_match_f64() {
        let cases: [UnaryCase; 2] = [
            ("gelu", Tensor::gelu, gelu),
            ("gelu_tanh", Tensor::gelu_tanh, gelu_tanh),
        ];
        run_unary(&cases, &linspace(-9.0, 9.0, LEN), 1.0);
    }

    #[test]
    fn unary_maps_near_zero_keep_relative_accuracy() {
        let cases: [UnaryCase; 5] = [
            ("tanh", Tensor::tanh, f64::tanh),
            ("sin", Tensor::sin, f64::sin),
            ("exp", Tensor::exp, f64::exp),
            ("silu", Tensor::silu, |x| x * sigmoid(x)),
            ("sigmoid", Tensor::sigmoid, sigmoid),
        ];
        let x = tensor(&[1e-8, -3e-6, 1e-4, -2e-3, 0.01, -0.1, 0.3, 0.6], &[8]);
        run_unary(&cases, &x, 0.0);
    }

    /// Just below overflow `exp` needs 2^128 as the power-of-two factor.
    #[test]
    fn exp_near_the_top_of_the_f32_range() {
        let x = tensor(&[80.0, 88.0, 88.3, 88.4, 88.5, 88.7, 88.72], &[7]);
        let expected: Vec<f64> = f64s(&x).into_iter().map(f64::exp).collect();
        check_rel("exp", &x.exp().unwrap(), &[7], &expected, TOL);
        let sig = tensor(&[-88.5, -88.0], &[2])
            .sigmoid()
            .unwrap()
            .to_vec()
            .unwrap();
        for (s, x) in sig.into_iter().zip([-88.5f64, -88.0]) {
            // Subnormal results keep a few significant bits only.
            assert!(
                (f64::from(s) / x.exp() - 1.0).abs() < 1e-2,
                "sigmoid({x}) = {s}"
            );
        }
    }

    #[test]
    fn unary_maps_saturate_at_extremes() {
        let x = tensor(&[-1000.0, -100.0, 0.0, 100.0, 1000.0], &[5]);
        let inf = f64::INFINITY;
        let expected: [(&str, Map, [f64; 5]); 8] = [
            ("exp", Tensor::exp, [0.0, 0.0, 1.0, inf, inf]),
            ("tanh", Tensor::tanh, [-1.0, -1.0, 0.0, 1.0, 1.0]),
            ("sigmoid", Tensor::sigmoid, [0.0, 0.0, 0.5, 1.0, 1.0]),
            ("silu", Tensor::silu, [0.0, 0.0, 0.0, 100.0, 1000.0]),
            ("gelu", Tensor::gelu, [0.0, 0.0, 0.0, 100.0, 1000.0]),
            (
                "gelu_tanh",
                Tensor::gelu_tanh,
                [0.0, 0.0, 0.0, 100.0, 1000.0],
            ),
            (
                "quick_gelu",
                Tensor::quick_gelu,
                [0.0, 0.0, 0.0, 100.0, 1000.0],
            ),
            ("relu", Tensor::relu, [0.0, 0.0, 0.0, 100.0, 1000.0]),
        ];
        for (name, op, want) in expected {
            check(name, &op(&x).unwrap(), &[5], &want, TOL);
        }
    }

    /// NaN marks a failure upstream; like PyTorch, no map may hide it.
    #[test]
    fn unary_maps_propagate_nan() {
        let x = tensor(&[f32::NAN, 1.0], &[2]);
        let ops: [(&str, Map); 16] = [
            ("neg", Tensor::neg),
            ("abs", Tensor::abs),
            ("exp", Tensor::exp),
            ("log", Tensor::log),
            ("sqrt", Tensor::sqrt),
            ("sqr", Tensor::sqr),
            ("recip", Tensor::recip),
            ("tanh", Tensor::tanh),
            ("sin", Tensor::sin),
            ("cos", Tensor::cos),
            ("relu", Tensor::relu),
            ("sigmoid", Tensor::sigmoid),
            ("silu", Tensor::silu),
            ("gelu", Tensor::gelu),
            ("gelu_tanh", Tensor::gelu_tanh),
            ("quick_gelu", Tensor::quick_gelu),
        ];
        for (name, op) in ops {
            let out = op(&x).unwrap().to_vec().unwrap();
            assert!(out[0].is_nan(), "{name}(NaN) = {}", out[0]);
            assert!(out[1].is_finite(), "{name}(1) = {}", out[1]);
        }
    }

    #[test]
    fn affine_and_scalar_ops() {
        let x = randn(1, &[LEN]);
        let xs = f64s(&x);
        let map = |f: &dyn Fn(f64) -> f64| xs.iter().map(|&v| f(v)).collect::<Vec<_>>();
        let (mul, add) = (-1.75f32, 0.375f32);
        let (m, a) = (f64::from(mul), f64::from(add));
        check(
            "affine",
            &x.affine(mul, add).unwrap(),
            &[LEN],
            &map(&|v| v * m + a),
            TOL,
        );
        check(
            "add_scalar",
            &x.add_scalar(add).unwrap(),
            &[LEN],
            &map(&|v| v + a),
            TOL,
        );
        check(
            "mul_scalar",
            &x.mul_scalar(mul).unwrap(),
            &[LEN],
            &map(&|v| v * m),
            TOL,
        );
        check(
            "clamp",
            &x.clamp(-0.5, 1.25).unwrap(),
            &[LEN],
            &map(&|v| v.clamp(-0.5, 1.25)),
            0.0,
        );
        let nan = tensor(&[f32::NAN], &[1]).clamp(0.0, 1.0).unwrap();
        assert!(nan.to_scalar().unwrap().is_nan(), "clamp must keep NaN");
    }

    #[test]
    fn clamp_rejects_bad_ranges() {
        let x = randn(1, &[3]);
        assert_invalid(x.clamp(1.0, -1.0), "clamp");
        assert_invalid(x.clamp(f32::NAN, 1.0), "clamp");
        assert_invalid(x.clamp(0.0, f32::NAN), "clamp");
    }

    type Zip = fn(&Tensor, &Tensor) -> Result<Tensor>;
    type BinaryCase = (&'static str, Zip, fn(f64, f64) -> f64);

    const BINARY: [BinaryCase; 6] = [
        ("add", Tensor::add, |a, b| a + b),
        ("sub", Tensor::sub, |a, b| a - b),
        ("mul", Tensor::mul, |a, b| a * b),
        ("div", Tensor::div, |a, b| a / b),
        ("maximum", Tensor::maximum, f64::max),
        ("minimum", Tensor::minimum, f64::min),
    ];

    /// NumPy broadcasting by index arithmetic on every output element.
    fn broadcast_ref(
        a: &[f64],
        ad: &[usize],
        b: &[f64],
        bd: &[usize],
        f: fn(f64, f64) -> f64,
    ) -> (Vec<f64>, Vec<usize>) {
        let rank = ad.len().max(bd.len());
        let pad = |d: &[usize]| [vec![1; rank - d.len()], d.to_vec()].concat();
        let (pa, pb) = (pad(ad), pad(bd));
        let out: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
        let at = |index: &[usize], dims: &[usize]| {
            let clamped: Vec<usize> = index
                .iter()
                .zip(dims)
                .map(|(&i, &d)| if d == 1 { 0 } else { i })
                .collect();
            ravel(&clamped, dims)
        };
        let data = (0..out.iter().product())
            .map(|i| {
                let index = unravel(i, &out);
                f(a[at(&index, &pa)], b[at(&index, &pb)])
            })
            .collect();
        (data, out)
    }

    #[test]
    fn binary_ops_broadcast_like_numpy() {
        let patterns: [(&[usize], &[usize]); 11] = [
            (&[2, 3, 5, 7], &[3, 1, 1]), // per-channel bias on NCHW
            (&[2, 13, 33], &[33]),       // bias over the last dim
            (&[2, 13, 33], &[]),         // scalar on the right
            (&[], &[7, 5]),              // scalar on the left
            (&[4, 1, 5], &[3, 1]),       // both sides broadcast
            (&[1, 65], &[13, 1]),        // outer product
            (&[13, 1], &[1, 65]),
            (&[7, 1], &[1, 1]),          // one value per output row
            (&[3, 7, 33], &[3, 7, 33]),  // same shape
            (&[2, 300, 129], &[300, 1]), // rows spanning several chunks
            (&[LEN], &[LEN]),            // same shape over several chunks
        ];
        for (i, (ad, bd)) in patterns.into_iter().enumerate() {
            let (a, b) = (randn(10 + i as u64, ad), randn(40 + i as u64, bd));
            let (af, bf) = (f64s(&a), f64s(&b));
            for (name, op, f) in BINARY {
                let (expected, out) = broadcast_ref(&af, ad, &bf, bd, f);
                let what = format!("{name} {ad:?} {bd:?}");
                check(&what, &op(&a, &b).unwrap(), &out, &expected, TOL);
            }
        }
    }

    #[test]
    fn maximum_and_minimum_propagate_nan() {
        let a = tensor(&[f32::NAN, 1.0, 2.0], &[3]);
        let b = tensor(&[1.0, f32::NAN, 3.0], &[3]);
        let max = a.maximum(&b).unwrap().to_vec().unwrap();
        let min = a.minimum(&b).unwrap().to_vec().unwrap();
        assert!(
            max[0].is_nan() && max[1].is_nan() && max[2] == 3.0,
            "{max:?}"
        );
        assert!(
            min[0].is_nan() && min[1].is_nan() && min[2] == 2.0,
            "{min:?}"
        );
    }

    #[test]
    fn incompatible_shapes_do_not_broadcast() {
        for (ad, bd) in [
            (&[2, 3][..], &[4][..]),
            (&[2, 3], &[3, 2]),
            (&[5, 1, 3], &[2, 3, 3]),
        ] {
            let err = randn(1, ad).add(&randn(2, bd));
            assert!(
                matches!(err, Err(Error::Broadcast { .. })),
                "{ad:?} + {bd:?}: {err:?}"
            );
        }
    }

    #[test]
    fn geglu_gates_the_first_half_with_gelu_of_the_second() {
        let x = randn(3, &[2, 7, 66]);
        let xs = f64s(&x);
        let expected: Vec<f64> = xs
            .chunks(66)
            .flat_map(|row| (0..33).map(move |j| row[j] * gelu(row[33 + j])))
            .collect();
        check("geglu", &x.geglu().unwrap(), &[2, 7, 33], &expected, TOL);
        assert_invalid(randn(3, &[2, 7]).geglu(), "geglu");
    }
}

mod matmul {
    use super::*;

    /// `batch` products `[m, k] · [k, n]` by the textbook triple loop.
    fn matmul_ref(
        a: &[f64],
        b: &[f64],
        batch: usize,
        (m, k, n): (usize, usize, usize),
        shared_rhs: bool,
    ) -> Vec<f64> {
        let mut out = Vec::with_capacity(batch * m * n);
        for p in 0..batch {
            let b_off = if shared_rhs { 0 } else { p * k * n };
            for i in 0..m {
                for j in 0..n {
                    out.push(
                        (0..k)
                            .map(|t| a[(p * m + i) * k + t] * b[b_off + t * n + j])
                            .sum(),
                    );
                }
            }
        }
        out
    }

    fn check_matmul(ad: &[usize], bd: &[usize]) {
        let (a, b) = (randn(1, ad), randn(2, bd));
        let (m, k, n) = (ad[ad.len() - 2], ad[ad.len() - 1], bd[bd.len() - 1]);
        let batch: usize = ad[..ad.len() - 2].iter().product();
        let expected = matmul_ref(&f64s(&a), &f64s(&b), batch, (m, k, n), bd.len() == 2);
        let dims = [&ad[..ad.len() - 2], &[m, n]].concat();
        check(
            &format!("matmul {ad:?} {bd:?}"),
            &a.matmul(&b).unwrap(),
            &dims,
            &expected,
            TOL,
        );
    }

    #[test]
    fn batched_matmul_matches_naive() {
        check_matmul(&[2, 3, 13, 33], &[2, 3, 33, 7]);
        check_matmul(&[1, 7], &[7, 1]);
        check_matmul(&[7, 1], &[1, 9]);
        check_matmul(&[13, 65], &[65, 33]);
        // Large enough for the threaded paths: over the batch, then within one product.
        check_matmul(&[5, 65, 129], &[5, 129, 33]);
        check_matmul(&[130, 65], &[65, 70]);
    }

    #[test]
    fn shared_rhs_applies_to_every_batch_entry() {
        check_matmul(&[4, 13, 65], &[65, 9]);
        check_matmul(&[2, 3, 7, 5], &[5, 11]);
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let out = Tensor::zeros([3, 0], Device::Cpu)
            .unwrap()
            .matmul(&Tensor::zeros([0, 4], Device::Cpu).unwrap())
            .unwrap();
        check("matmul k=0", &out, &[3, 4], &[0.0; 12], 0.0);
    }

    fn linear_ref(x: &[f64], w: &[f64], bias: Option<&[f64]>, k: usize, n: usize) -> Vec<f64> {
        x.chunks(k)
            .flat_map(|row| {
                (0..n).map(move |j| {
                    let dot: f64 = row
                        .iter()
                        .zip(&w[j * k..(j + 1) * k])
                        .map(|(x, w)| x * w)
                        .sum();
                    dot + bias.map_or(0.0, |b| b[j])
                })
            })
            .collect()
    }

    #[test]
    fn linear_uses_pytorch_weight_layout() {
        let cases: [(&[usize], usize, bool); 5] = [
            (&[2, 5, 33], 13, true),
            (&[2, 5, 33], 13, false),
            (&[33], 7, true), // a single vector
            (&[3, 129], 257, true),
            (&[65, 1], 3, true),
        ];
        for (i, (xd, n, with_bias)) in cases.into_iter().enumerate() {
            let k = xd[xd.len() - 1];
            let seed = 10 * i as u64;
            let (x, w, b) = (
                randn(seed, xd),
                randn(seed + 1, &[n, k]),
                randn(seed + 2, &[n]),
            );
            let bias = with_bias.then_some(&b);
            let expected = linear_ref(
                &f64s(&x),
                &f64s(&w),
                with_bias.then(|| f64s(&b)).as_deref(),
                k,
                n,
            );
            let dims = [&xd[..xd.len() - 1], &[n]].concat();
            check(
                &format!("linear {xd:?}"),
                &x.linear(&w, bias).unwrap(),
                &dims,
                &expected,
                TOL,
            );
        }
    }

    #[test]
    fn mismatched_shapes_are_rejected() {
        let m = |ad: &[usize], bd: &[usize]| randn(1, ad).matmul(&randn(2, bd));
        assert_invalid(m(&[3, 4], &[5, 6]), "matmul");
        assert_invalid(m(&[2, 3, 4], &[3, 4, 6]), "matmul");
        assert_invalid(m(&[3, 4], &[2, 4, 6]), "matmul");
        assert_invalid(m(&[4], &[4, 6]), "matmul");
        let x = randn(1, &[2, 5, 33]);
        assert_invalid(x.linear(&randn(2, &[13, 32]), None), "linear");
        assert_invalid(x.linear(&randn(2, &[33]), None), "linear");
        assert_shape_mismatch(
            x.linear(&randn(2, &[13, 33]), Some(&randn(3, &[12]))),
            "linear",
        );
    }
}

mod conv {
    use super::*;

    /// Direct convolution: each output is a sum over input channels and kernel taps, with
    /// taps that land in the padding skipped. Spatial dims are padded in front to three.
    fn conv_ref(
        x: &[f64],
        xd: &[usize],
        w: &[f64],
        wd: &[usize],
        bias: Option<&[f64]>,
        p: &ConvParams,
    ) -> (Vec<f64>, Vec<usize>) {
        let lead = 5 - xd.len();
        let to3 = |v: &[usize], fill: usize| {
            let mut a = [fill; 3];
            a[lead..].copy_from_slice(v);
            a
        };
        let (input, kernel) = (to3(&xd[2..], 1), to3(&wd[2..], 1));
        let (stride, pad, dil) = (to3(&p.stride, 1), to3(&p.padding, 0), to3(&p.dilation, 1));
        let output: [usize; 3] = std::array::from_fn(|i| {
            (input[i] + 2 * pad[i] - dil[i] * (kernel[i] - 1) - 1) / stride[i] + 1
        });
        // Row-major position <-> index in three dims, without allocating per tap.
        let index = |i: usize, d: [usize; 3]| [i / (d[1] * d[2]), i / d[2] % d[1], i % d[2]];
        let flat = |i: [usize; 3], d: [usize; 3]| (i[0] * d[1] + i[1]) * d[2] + i[2];
        let (n, c, o) = (xd[0], xd[1], wd[0]);
        let (in_len, k_len) = (input.iter().product::<usize>(), kernel.iter().product());
        let mut out = Vec::new();
        for img in 0..n {
            for oc in 0..o {
                for pos in 0..output.iter().product() {
                    let at = index(pos, output);
                    let mut acc = bias.map_or(0.0, |b| b[oc]);
                    for ic in 0..c {
                        for tap in 0..k_len {
                            let k = index(tap, kernel);
                            // Coordinates in the padded input.
                            let src: [usize; 3] =
                                std::array::from_fn(|i| at[i] * stride[i] + k[i] * dil[i]);
                            if (0..3).any(|i| src[i] < pad[i] || src[i] >= pad[i] + input[i]) {
                                continue;
                            }
                            let src = std::array::from_fn(|i| src[i] - pad[i]);
                            acc += x[(img * c + ic) * in_len + flat(src, input)]
                                * w[(oc * c + ic) * k_len + tap];
                        }
                    }
                    out.push(acc);
                }
            }
        }
        let dims = [&[n, o][..], &output[lead..]].concat();
        (out, dims)
    }

    fn params(stride: &[usize], padding: &[usize], dilation: &[usize]) -> ConvParams {
        ConvParams {
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
        }
    }

    /// Runs `Tensor::conv` on random data against the reference and checks the output dims.
    fn check_conv_once(
        xd: &[usize],
        wd: &[usize],
        p: &ConvParams,
        out: &[usize],
        with_bias: bool,
        tol: f64,
    ) {
        let (x, w, b) = (randn(1, xd), randn(2, wd), randn(3, &[wd[0]]));
        let bf = with_bias.then(|| f64s(&b));
        let (expected, dims) = conv_ref(&f64s(&x), xd, &f64s(&w), wd, bf.as_deref(), p);
        assert_eq!(dims, out, "reference output dims");
        let what = format!("conv {xd:?} * {wd:?} {p:?} bias {with_bias}");
        let got = x.conv(&w, with_bias.then_some(&b), p).unwrap();
        check(&what, &got, out, &expected, tol);
    }

    /// With a bias the product accumulates onto it; without, it overwrites the output.
    fn check_conv(xd: &[usize], wd: &[usize], p: &ConvParams, out: &[usize]) {
        for with_bias in [true, false] {
            check_conv_once(xd, wd, p, out, with_bias, TOL);
        }
    }

    fn uniform(rank: usize, stride: usize, padding: usize) -> ConvParams {
        ConvParams::uniform(rank, stride, padding)
    }

    #[test]
    fn conv1d_whisper_stem() {
        check_conv(&[2, 13, 65], &[7, 13, 3], &uniform(1, 1, 1), &[2, 7, 65]);
        check_conv(&[2, 7, 65], &[5, 7, 3], &uniform(1, 2, 1), &[2, 5, 33]);
        check_conv(&[1, 7, 64], &[5, 7, 3], &uniform(1, 2, 1), &[1, 5, 32]);
    }

    #[test]
    fn conv2d_3x3_with_stride_and_padding() {
        let (xd, wd) = ([2, 5, 13, 11], [7, 5, 3, 3]);
        check_conv(&xd, &wd, &uniform(2, 1, 1), &[2, 7, 13, 11]);
        check_conv(&xd, &wd, &uniform(2, 2, 1), &[2, 7, 7, 6]);
        check_conv(&xd, &wd, &uniform(2, 2, 0), &[2, 7, 6, 5]);
        let p = params(&[1, 3], &[0, 2], &[1, 1]);
        check_conv(&xd, &[4, 5, 2, 5], &p, &[2, 4, 12, 4]);
    }

    #[test]
    fn conv2d_pointwise() {
        let (xd, wd) = ([2, 33, 7, 9], [13, 33, 1, 1]);
        check_conv(&xd, &wd, &uniform(2, 1, 0), &[2, 13, 7, 9]);
        // Strided or padded 1x1 kernels go through the column buffer instead.
        check_conv(&xd, &wd, &uniform(2, 2, 0), &[2, 13, 4, 5]);
        check_conv(&xd, &wd, &uniform(2, 1, 1), &[2, 13, 9, 11]);
    }

    #[test]
    fn conv3d_temporal_and_full_kernels() {
        let temporal = params(&[1; 3], &[1, 0, 0], &[1; 3]);
        check_conv(
            &[2, 4, 5, 7, 6],
            &[3, 4, 3, 1, 1],
            &temporal,
            &[2, 3, 5, 7, 6],
        );
        check_conv(
            &[2, 3, 5, 6, 7],
            &[4, 3, 3, 3, 3],
            &uniform(3, 1, 1),
            &[2, 4, 5, 6, 7],
        );
        check_conv(
            &[1, 3, 5, 6, 7],
            &[2, 3, 3, 3, 3],
            &uniform(3, 2, 1),
            &[1, 2, 3, 3, 4],
        );
    }

    #[test]
    fn dilated_convolutions() {
        let p = params(&[1, 1], &[2, 2], &[2, 2]);
        check_conv(&[2, 3, 13, 11], &[5, 3, 3, 3], &p, &[2, 5, 13, 11]);
        let p = params(&[2, 1], &[0, 2], &[1, 2]);
        check_conv(&[1, 3, 13, 11], &[5, 3, 3, 3], &p, &[1, 5, 6, 11]);
        let p = params(&[1], &[2], &[2]);
        check_conv(&[2, 4, 33], &[3, 4, 3], &p, &[2, 3, 33]);
        let p = params(&[1; 3], &[1, 2, 2], &[1, 2, 2]);
        check_conv(&[1, 2, 5, 9, 9], &[2, 2, 3, 3, 3], &p, &[1, 2, 5, 9, 9]);
    }

    /// 450 column rows leave room for 2^22 / 450 = 9320 of the 9797 output positions per
    /// tile, so the image takes two tiles, the second partial. Dot products of 450 terms.
    #[test]
    fn conv_across_column_tiles() {
        let (xd, wd) = ([1, 50, 97, 101], [2, 50, 3, 3]);
        check_conv_once(&xd, &wd, &uniform(2, 1, 1), &[1, 2, 97, 101], true, LOOSE);
    }

    #[test]
    fn shorthands_match_conv() {
        let run =
            |xd: &[usize], wd: &[usize], f: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>, p| {
                let (x, w) = (randn(1, xd), randn(2, wd));
                let via_shorthand = f(&x, &w).unwrap().to_vec().unwrap();
                assert_eq!(
                    via_shorthand,
                    x.conv(&w, None, &p).unwrap().to_vec().unwrap()
                );
            };
        run(
            &[2, 5, 33],
            &[3, 5, 3],
            &|x, w| x.conv1d(w, None, 2, 1),
            uniform(1, 2, 1),
        );
        run(
            &[2, 5, 13, 11],
            &[7, 5, 3, 3],
            &|x, w| x.conv2d(w, None, 2, 1),
            uniform(2, 2, 1),
        );
        let temporal = params(&[1; 3], &[1, 0, 0], &[1; 3]);
        run(
            &[1, 2, 5, 4, 3],
            &[3, 2, 3, 1, 1],
            &|x, w| x.conv3d(w, None, 1, [1, 0, 0]),
            temporal,
        );
    }

    #[test]
    fn bad_convolutions_are_rejected() {
        let x = randn(1, &[2, 3, 9, 9]);
        let w = randn(2, &[4, 3, 3, 3]);
        let p = ConvParams::uniform(2, 1, 1);
        assert_invalid(x.conv(&randn(2, &[4, 5, 3, 3]), None, &p), "conv");
        assert_invalid(x.conv(&randn(2, &[4, 3, 3]), None, &p), "conv");
        assert_invalid(
            randn(1, &[2, 3]).conv(&randn(2, &[4, 3]), None, &ConvParams::uniform(0, 1, 0)),
            "conv",
        );
        assert_invalid(
            x.conv(
                &randn(2, &[4, 3, 13, 3]),
                None,
                &ConvParams::uniform(2, 1, 1),
            ),
            "conv",
        );
        assert_invalid(x.conv(&w, None, &ConvParams::uniform(1, 1, 1)), "conv");
        assert_invalid(x.conv(&w, None, &ConvParams::uniform(2, 0, 1)), "conv");
        assert_invalid(x.conv(&w, None, &params(&[1, 1], &[1, 1], &[1, 0])), "conv");
        assert_invalid(x.conv(&w, None, &params(&[1, 1], &[0, 0], &[5, 1])), "conv");
        assert_shape_mismatch(x.conv(&w, Some(&randn(3, &[3])), &p), "conv");
    }
}

mod norm {
    use super::*;

    /// Two-pass statistics in f64 per (image, group), biased variance as PyTorch.
    fn group_norm_ref(
        x: &[f64],
        dims: &[usize],
        groups: usize,
        w: Option<&[f64]>,
        b: Option<&[f64]>,
        eps: f64,
        silu: bool,
    ) -> Vec<f64> {
        let c = dims[1];
        let spatial: usize = dims[2..].iter().product();
        let per_group = c / groups;
        let mut out = Vec::with_capacity(x.len());
        for group in x.chunks(per_group * spatial) {
            let n = group.len() as f64;
            let mean = group.iter().sum::<f64>() / n;
            let var = group.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let g = out.len() / (per_group * spatial) % groups;
            for (i, &v) in group.iter().enumerate() {
                let ch = g * per_group + i / spatial;
                let y = (v - mean) / (var + eps).sqrt() * w.map_or(1.0, |w| w[ch])
                    + b.map_or(0.0, |b| b[ch]);
                out.push(if silu { y * sigmoid(y) } else { y });
            }
        }
        out
    }

    fn check_group_norm(
        dims: &[usize],
        groups: usize,
        affine: bool,
        silu: bool,
        offset: f32,
        tol: f64,
    ) {
        let c = dims[1];
        let x = randn(1, dims).add_scalar(offset).unwrap();
        let (w, b) = (randn(2, &[c]), randn(3, &[c]));
        let (wf, bf) = (f64s(&w), f64s(&b));
        let expected = group_norm_ref(
            &f64s(&x),
            dims,
            groups,
            affine.then_some(&wf[..]),
            affine.then_some(&bf[..]),
            1e-5,
            silu,
        );
        let (w, b) = (affine.then_some(&w), affine.then_some(&b));
        let out = if silu {
            x.group_norm_silu(groups, w, b, 1e-5)
        } else {
            x.group_norm(groups, w, b, 1e-5)
        };
        check(
            &format!("group_norm {dims:?} groups {groups} affine {affine} silu {silu}"),
            &out.unwrap(),
            dims,
            &expected,
            tol,
        );
    }

    #[test]
    fn group_norm_with_and_without_affine() {
        for affine in [true, false] {
            check_group_norm(&[2, 6, 5, 7], 3, affine, false, 3.0, TOL);
        }
    }

    #[test]
    fn group_norm_with_one_group_and_one_channel_per_group() {
        check_group_norm(&[2, 6, 5, 7], 1, true, false, -2.0, TOL);
        check_group_norm(&[2, 6, 5, 7], 6, true, false, -2.0, TOL);
        check_group_norm(&[3, 4, 13], 4, false, false, 0.0, TOL);
        check_group_norm(&[5, 6], 2, true, false, 0.0, TOL);
    }

    #[test]
    fn group_norm_silu_matches_norm_then_silu() {
        check_group_norm(&[2, 4, 13], 2, true, true, 1.0, TOL);
        check_group_norm(&[1, 4, 3, 5, 7], 4, true, true, 0.5, TOL);
        check_group_norm(&[2, 6, 5, 7], 3, false, true, 0.0, TOL);
    }

    #[test]
    fn group_norm_over_large_groups() {
        check_group_norm(&[1, 8, 65, 129], 2, true, true, 5.0, LOOSE);
    }

    /// With zero variance `eps` keeps the scale finite and every output is the bias.
    #[test]
    fn constant_groups_normalise_to_the_bias() {
        let x = Tensor::full(2.0, [1, 4, 3, 3], Device::Cpu).unwrap();
        let b = tensor(&[0.5, -1.0, 2.0, 0.0], &[4]);
        let expected: Vec<f64> = [0.5, -1.0, 2.0, 0.0].iter().flat_map(|&v| [v; 9]).collect();
        let out = x
            .group_norm(2, Some(&randn(1, &[4])), Some(&b), 1e-5)
            .unwrap();
        check("group_norm constant", &out, &[1, 4, 3, 3], &expected, TOL);
    }

    #[test]
    fn bad_group_norms_are_rejected() {
        let x = randn(1, &[2, 6, 5]);
        assert_invalid(x.group_norm(4, None, None, 1e-5), "group_norm");
        assert_invalid(x.group_norm(0, None, None, 1e-5), "group_norm");
        assert_invalid(randn(1, &[6]).group_norm(1, None, None, 1e-5), "group_norm");
        assert_shape_mismatch(
            x.group_norm(3, Some(&randn(2, &[5])), None, 1e-5),
            "group_norm",
        );
        assert_shape_mismatch(
            x.group_norm_silu(3, None, Some(&randn(2, &[3])), 1e-5),
            "group_norm",
        );
    }

    fn layer_norm_ref(
        x: &[f64],
        width: usize,
        w: Option<&[f64]>,
        b: Option<&[f64]>,
        eps: f64,
    ) -> Vec<f64> {
        x.chunks(width)
            .flat_map(|row| {
                let mean = row.iter().sum::<f64>() / width as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / width as f64;
                row.iter().enumerate().map(move |(i, v)| {
                    (v - mean) / (var + eps).sqrt() * w.map_or(1.0, |w| w[i])
                        + b.map_or(0.0, |b| b[i])
                })
            })
            .collect()
    }

    fn check_layer_norm(dims: &[usize], weight: bool, bias: bool, tol: f64) {
        let width = dims[dims.len() - 1];
        let x = randn(1, dims).add_scalar(10.0).unwrap();
        let (w, b) = (randn(2, &[width]), randn(3, &[width]));
        let (wf, bf) = (f64s(&w), f64s(&b));
        let expected = layer_norm_ref(
            &f64s(&x),
            width,
            weight.then_some(&wf[..]),
            bias.then_some(&bf[..]),
            1e-5,
        );
        let out = x
            .layer_norm(weight.then_some(&w), bias.then_some(&b), 1e-5)
            .unwrap();
        check(
            &format!("layer_norm {dims:?} weight {weight} bias {bias}"),
            &out,
            dims,
            &expected,
            tol,
        );
    }

    #[test]
    fn layer_norm_with_and_without_affine() {
        for (weight, bias) in [(true, true), (false, false), (true, false), (false, true)] {
            check_layer_norm(&[2, 13, 33], weight, bias, TOL);
        }
        check_layer_norm(&[7, 1], true, true, TOL);
        check_layer_norm(&[3, 4099], true, true, LOOSE);
    }

    #[test]
    fn layer_norm_by_hand() {
        // mean 2.5, biased variance 1.25
        let out = tensor(&[1.0, 2.0, 3.0, 4.0], &[1, 4])
            .layer_norm(None, None, 0.0)
            .unwrap();
        let s = 1.25f64.sqrt();
        check(
            "layer_norm",
            &out,
            &[1, 4],
            &[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s],
            TOL,
        );
    }

    #[test]
    fn bad_layer_norms_are_rejected() {
        let x = randn(1, &[2, 5]);
        assert_shape_mismatch(
            x.layer_norm(Some(&randn(2, &[4])), None, 1e-5),
            "layer_norm",
        );
        assert_shape_mismatch(
            x.layer_norm(None, Some(&randn(2, &[2, 5])), 1e-5),
            "layer_norm",
        );
        assert!(Tensor::scalar(1.0, Device::Cpu)
            .unwrap()
            .layer_norm(None, None, 1e-5)
            .is_err());
    }

    /// Softmax of each row in f64, shifted by the row maximum.
    fn softmax_ref(x: &[f64], width: usize) -> Vec<f64> {
        x.chunks(width)
            .flat_map(|row| {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
                let total: f64 = e.iter().sum();
                e.into_iter().map(move |v| v / total)
            })
            .collect()
    }

    #[test]
    fn softmax_matches_f64() {
        for (i, dims) in [&[3, 7, 13][..], &[5, 65], &[4, 1], &[2, 1025]]
            .into_iter()
            .enumerate()
        {
            let x = randn(i as u64, dims).mul_scalar(3.0).unwrap();
            let expected = softmax_ref(&f64s(&x), dims[dims.len() - 1]);
            check_rel(
                &format!("softmax {dims:?}"),
                &x.softmax_last().unwrap(),
                dims,
                &expected,
                TOL,
            );
        }
    }

    /// Values whose exponentials overflow f32 unless the row maximum is subtracted first.
    #[test]
    fn softmax_of_large_values_does_not_overflow() {
        let x = tensor(
            &[
                1000.0, 1001.0, 999.5, 3e38, 3e38, 0.0, -3e38, 3e38, 1.0, -1000.0, -1001.0, -999.5,
            ],
            &[4, 3],
        );
        let expected = softmax_ref(&f64s(&x), 3);
        check_rel(
            "softmax large",
            &x.softmax_last().unwrap(),
            &[4, 3],
            &expected,
            TOL,
        );
    }

    #[test]
    fn softmax_gives_masked_entries_zero() {
        let inf = f32::INFINITY;
        let x = tensor(&[-inf, 0.0, -inf, 1.0, -inf, -inf, -inf, 5.0], &[2, 4]);
        let e = std::f64::consts::E;
        let expected = [0.0, 1.0 / (1.0 + e), 0.0, e / (1.0 + e), 0.0, 0.0, 0.0, 1.0];
        check_rel(
            "softmax masked",
            &x.softmax_last().unwrap(),
            &[2, 4],
            &expected,
            TOL,
        );
    }
}

mod attention {
    use super::*;

    #[derive(Clone, Copy, Debug)]
    struct Dims {
        b: usize,
        lq: usize,
        lk: usize,
        heads: usize,
        d: usize,
        dv: usize,
    }

    /// Per (batch, head, query): scores over keys, softmax in f64, weighted sum of values.
    fn attention_ref(q: &[f64], k: &[f64], v: &[f64], s: Dims, scale: f64) -> Vec<f64> {
        let (hd, hdv) = (s.heads * s.d, s.heads * s.dv);
        let mut out = vec![0.0; s.b * s.lq * hdv];
        for b in 0..s.b {
            for h in 0..s.heads {
                for i in 0..s.lq {
                    let q_row = &q[(b * s.lq + i) * hd + h * s.d..][..s.d];
                    let scores: Vec<f64> = (0..s.lk)
                        .map(|j| {
                            let k_row = &k[(b * s.lk + j) * hd + h * s.d..][..s.d];
                            scale * q_row.iter().zip(k_row).map(|(a, b)| a * b).sum::<f64>()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = e.iter().sum();
                    for (j, p) in e.iter().enumerate() {
                        let v_row = &v[(b * s.lk + j) * hdv + h * s.dv..][..s.dv];
                        let o = &mut out[(b * s.lq + i) * hdv + h * s.dv..][..s.dv];
                        for (o, v) in o.iter_mut().zip(v_row) {
                            *o += p / total * v;
                        }
                    }
                }
            }
        }
        out
    }

    fn inputs(s: Dims) -> (Tensor, Tensor, Tensor) {
        (
            randn(1, &[s.b, s.lq, s.heads * s.d]),
            randn(2, &[s.b, s.lk, s.heads * s.d]),
            randn(3, &[s.b, s.lk, s.heads * s.dv]),
        )
    }

    fn check_attention(s: Dims) {
        let (q, k, v) = inputs(s);
        let scale = 1.0 / (s.d as f32).sqrt();
        let expected = attention_ref(&f64s(&q), &f64s(&k), &f64s(&v), s, f64::from(scale));
        let out = Tensor::attention(&q, &k, &v, s.heads, scale).unwrap();
        check(
            &format!("attention {s:?}"),
            &out,
            &[s.b, s.lq, s.heads * s.dv],
            &expected,
            TOL,
        );
    }

    fn dims(b: usize, lq: usize, lk: usize, heads: usize, d: usize, dv: usize) -> Dims {
        Dims {
            b,
            lq,
            lk,
            heads,
            d,
            dv,
        }
    }

    #[test]
    fn attention_matches_naive() {
        check_attention(dims(2, 13, 7, 3, 5, 5));
        check_attention(dims(1, 33, 65, 1, 16, 16));
    }

    /// Queries are processed in blocks of 64.
    #[test]
    fn attention_across_query_blocks() {
        check_attention(dims(2, 130, 33, 2, 8, 8));
        check_attention(dims(1, 64, 3, 1, 4, 4));
        check_attention(dims(1, 65, 5, 2, 4, 4));
    }

    #[test]
    fn attention_with_two_keys_or_one_query() {
        check_attention(dims(2, 9, 2, 3, 4, 4));
        check_attention(dims(3, 1, 13, 4, 8, 8));
        check_attention(dims(2, 1, 2, 2, 3, 3));
    }

    #[test]
    fn attention_with_value_width_unlike_key_width() {
        check_attention(dims(2, 9, 11, 3, 4, 7));
        check_attention(dims(1, 5, 6, 2, 8, 1));
    }

    #[test]
    fn attention_with_many_heads() {
        check_attention(dims(1, 17, 19, 16, 3, 2));
        check_attention(dims(2, 3, 70, 32, 2, 2));
    }

    /// With one key the weights are exactly 1, so the output is `v` repeated over queries.
    #[test]
    fn single_key_returns_values_exactly() {
        let s = dims(2, 5, 1, 3, 4, 6);
        let (q, k, v) = inputs(s);
        let out = Tensor::attention(&q, &k, &v, s.heads, 0.5).unwrap();
        assert_eq!(out.dims(), [2, 5, 18]);
        let (out, v) = (out.to_vec().unwrap(), v.to_vec().unwrap());
        for (row, got) in out.chunks(18).enumerate() {
            assert_eq!(got, &v[row / 5 * 18..][..18], "query row {row}");
        }
    }

    /// Integer queries and keys make the scores exact, up to ±256: their exponentials
    /// overflow f32 unless shifted by the row maximum.
    #[test]
    fn large_scores_do_not_overflow() {
        let s = dims(2, 7, 9, 2, 4, 3);
        let round = |t: Tensor| {
            let data: Vec<f32> = t
                .to_vec()
                .unwrap()
                .iter()
                .map(|v| (v * 4.0).round().clamp(-8.0, 8.0))
                .collect();
            tensor(&data, t.dims())
        };
        let (q, k, v) = inputs(s);
        let (q, k) = (round(q), round(k));
        let expected = attention_ref(&f64s(&q), &f64s(&k), &f64s(&v), s, 1.0);
        let out = Tensor::attention(&q, &k, &v, s.heads, 1.0).unwrap();
        check("attention large scores", &out, &[2, 7, 6], &expected, TOL);
    }

    #[test]
    fn bad_attention_shapes_are_rejected() {
        let t = |seed, dims: &[usize]| randn(seed, dims);
        let (q, k, v) = (t(1, &[2, 5, 12]), t(2, &[2, 7, 12]), t(3, &[2, 7, 6]));
        assert!(Tensor::attention(&q, &k, &v, 3, 1.0).is_ok());
        assert_invalid(Tensor::attention(&q, &k, &v, 5, 1.0), "attention");
        assert_invalid(Tensor::attention(&q, &k, &v, 0, 1.0), "attention");
        assert_invalid(
            Tensor::attention(&q, &t(2, &[2, 7, 9]), &v, 3, 1.0),
            "attention",
        );
        assert_invalid(
            Tensor::attention(&q, &t(2, &[1, 7, 12]), &v, 3, 1.0),
            "attention",
        );
        assert_invalid(
            Tensor::attention(&q, &k, &t(3, &[2, 6, 6]), 3, 1.0),
            "attention",
        );
        assert_invalid(
            Tensor::attention(&q, &t(2, &[2, 0, 12]), &t(3, &[2, 0, 6]), 3, 1.0),
            "attention",
        );
        assert_invalid(
            Tensor::attention(&t(1, &[5, 12]), &k, &v, 3, 1.0),
            "attention",
        );
    }
}

mod layout {
    use super::*;

    fn permute_ref(x: &[f64], dims: &[usize], perm: &[usize]) -> (Vec<f64>, Vec<usize>) {
        let out: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let data = (0..x.len())
            .map(|i| {
                let index = unravel(i, &out);
                let mut src = vec![0; dims.len()];
                for (&p, &v) in perm.iter().zip(&index) {
                    src[p] = v;
                }
                x[ravel(&src, dims)]
            })
            .collect();
        (data, out)
    }

    #[test]
    fn permute_moves_every_element() {
        let cases: [(&[usize], &[usize]); 6] = [
            (&[2, 3, 5, 7], &[3, 1, 0, 2]),
            (&[2, 3, 5, 7], &[0, 2, 1, 3]),
            (&[2, 3, 5, 7], &[3, 2, 1, 0]),
            (&[33, 65, 7], &[2, 0, 1]),
            (&[1, 13, 1], &[2, 1, 0]),
            (&[7], &[0]),
        ];
        for (i, (dims, perm)) in cases.into_iter().enumerate() {
            let x = randn(i as u64, dims);
            let (expected, out) = permute_ref(&f64s(&x), dims, perm);
            check(
                &format!("permute {dims:?} {perm:?}"),
                &x.permute(perm).unwrap(),
                &out,
                &expected,
                0.0,
            );
        }
    }

    #[test]
    fn transpose_swaps_two_axes() {
        let x = randn(1, &[2, 3, 5, 7]);
        let (expected, out) = permute_ref(&f64s(&x), &[2, 3, 5, 7], &[0, 1, 3, 2]);
        check(
            "transpose",
            &x.transpose(-1, -2).unwrap(),
            &out,
            &expected,
            0.0,
        );
        let (expected, out) = permute_ref(&f64s(&x), &[2, 3, 5, 7], &[2, 1, 0, 3]);
        check(
            "transpose",
            &x.transpose(0, 2).unwrap(),
            &out,
            &expected,
            0.0,
        );
        assert_invalid(x.transpose(0, 4), "transpose");
    }

    #[test]
    fn bad_permutations_are_rejected() {
        let x = randn(1, &[2, 3, 5]);
        for perm in [&[0, 0, 1][..], &[0, 1], &[0, 1, 3], &[0, 1, 2, 3], &[]] {
            assert_invalid(x.permute(perm), "permute");
        }
    }

    #[test]
    fn cat_joins_along_any_axis() {
        let parts = [
            randn(1, &[2, 3, 5]),
            randn(2, &[2, 4, 5]),
            randn(3, &[2, 1, 5]),
        ];
        let refs: Vec<&Tensor> = parts.iter().collect();
        let data: Vec<Vec<f64>> = parts.iter().map(f64s).collect();
        // Along axis 1 each of the 2 outer rows takes its runs of 15, 20 and 5 in turn.
        let expected: Vec<f64> = (0..2)
            .flat_map(|o| {
                [15, 20, 5]
                    .into_iter()
                    .zip(&data)
                    .flat_map(move |(run, d)| d[o * run..(o + 1) * run].to_vec())
            })
            .collect();
        check(
            "cat axis 1",
            &Tensor::cat(&refs, 1).unwrap(),
            &[2, 8, 5],
            &expected,
            0.0,
        );
        check(
            "cat axis -2",
            &Tensor::cat(&refs, -2).unwrap(),
            &[2, 8, 5],
            &expected,
            0.0,
        );

        let (a, b) = (randn(4, &[2, 3]), randn(5, &[1, 3]));
        let expected = [f64s(&a), f64s(&b)].concat();
        check(
            "cat axis 0",
            &Tensor::cat(&[&a, &b], 0).unwrap(),
            &[3, 3],
            &expected,
            0.0,
        );

        let (a, b) = (randn(4, &[2, 3]), randn(5, &[2, 2]));
        let (af, bf) = (f64s(&a), f64s(&b));
        let expected: Vec<f64> = (0..2)
            .flat_map(|r| [&af[r * 3..r * 3 + 3], &bf[r * 2..r * 2 + 2]].concat())
            .collect();
        check(
            "cat axis -1",
            &Tensor::cat(&[&a, &b], -1).unwrap(),
            &[2, 5],
            &expected,
            0.0,
        );

        check(
            "cat one",
            &Tensor::cat(&[&a], 0).unwrap(),
            &[2, 3],
            &af,
            0.0,
        );
    }

    #[test]
    fn cat_of_mismatched_tensors_is_rejected() {
        let a = randn(1, &[2, 3, 5]);
        assert_invalid(Tensor::cat(&[], 0), "cat");
        assert_invalid(Tensor::cat(&[&a, &randn(2, &[2, 3, 4])], 1), "cat");
        assert_invalid(Tensor::cat(&[&a, &randn(2, &[2, 15])], 0), "cat");
        assert_invalid(Tensor::cat(&[&a, &a], 3), "cat");
        let half = a.to_dtype(DType::F16).unwrap();
        assert_invalid(Tensor::cat(&[&a, &half], 0), "cat");
    }

    #[test]
    fn narrow_chunk_and_index_select() {
        let x = randn(1, &[4, 13, 6]);
        let xf = f64s(&x);
        let select = |axis: usize, idx: &[usize]| -> (Vec<f64>, Vec<usize>) {
            let mut out = x.dims().to_vec();
            out[axis] = idx.len();
            let data = (0..out.iter().product())
                .map(|i| {
                    let mut index = unravel(i, &out);
                    index[axis] = idx[index[axis]];
                    xf[ravel(&index, x.dims())]
                })
                .collect();
            (data, out)
        };
        let (expected, out) = select(1, &[3, 4, 5, 6, 7, 8, 9]);
        check("narrow", &x.narrow(1, 3, 7).unwrap(), &out, &expected, 0.0);
        let (expected, out) = select(2, &[5]);
        check(
            "narrow last",
            &x.narrow(-1, 5, 1).unwrap(),
            &out,
            &expected,
            0.0,
        );
        check(
            "narrow all",
            &x.narrow(0, 0, 4).unwrap(),
            &[4, 13, 6],
            &xf,
            0.0,
        );
        assert_eq!(x.narrow(1, 13, 0).unwrap().dims(), [4, 0, 6]);

        let (expected, out) = select(0, &[3, 0, 0, 2]);
        check(
            "index_select",
            &x.index_select(0, &[3, 0, 0, 2]).unwrap(),
            &out,
            &expected,
            0.0,
        );
        let (expected, out) = select(2, &[5, 1]);
        check(
            "index_select last",
            &x.index_select(-1, &[5, 1]).unwrap(),
            &out,
            &expected,
            0.0,
        );
        assert_eq!(x.index_select(1, &[]).unwrap().dims(), [4, 0, 6]);

        let y = randn(2, &[2, 12, 5]);
        let parts = y.chunk(3, 1).unwrap();
        for (i, part) in parts.iter().enumerate() {
            let expected = f64s(&y.narrow(1, 4 * i, 4).unwrap());
            check("chunk", part, &[2, 4, 5], &expected, 0.0);
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        check(
            "cat of chunks",
            &Tensor::cat(&refs, 1).unwrap(),
            &[2, 12, 5],
            &f64s(&y),
            0.0,
        );
    }

    #[test]
    fn out_of_range_slices_are_rejected() {
        let x = randn(1, &[4, 13, 6]);
        assert_invalid(x.narrow(1, 10, 4), "narrow");
        assert_invalid(x.narrow(1, 14, 0), "narrow");
        assert_invalid(x.narrow(1, 1, usize::MAX), "narrow");
        assert_invalid(x.narrow(3, 0, 1), "narrow");
        assert_invalid(x.index_select(1, &[0, 13]), "index_select");
        assert_invalid(x.index_select(-4, &[0]), "index_select");
        assert_invalid(x.chunk(5, 1), "chunk");
        assert_invalid(x.chunk(0, 1), "chunk");
    }

    fn sum_ref(x: &[f64], dims: &[usize], axes: &[usize]) -> (Vec<f64>, Vec<usize>) {
        let out: Vec<usize> = dims
            .iter()
            .enumerate()
            .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
            .collect();
        let mut acc = vec![0.0; out.iter().product()];
        for (i, &v) in x.iter().enumerate() {
            let mut index = unravel(i, dims);
            for &a in axes {
                index[a] = 0;
            }
            acc[ravel(&index, &out)] += v;
        }
        (acc, out)
    }

    #[test]
    fn sum_and_mean_over_axes() {
        let dims = [2, 3, 5, 7];
        let x = randn(1, &dims);
        let xf = f64s(&x);
        let cases: [(&[isize], &[usize]); 5] = [
            (&[0], &[0]),
            (&[1, 3], &[1, 3]),
            (&[-1], &[3]),
            (&[3, -3], &[1, 3]),
            (&[0, 1, 2, 3], &[0, 1, 2, 3]),
        ];
        for (axes, resolved) in cases {
            let (expected, kept) = sum_ref(&xf, &dims, resolved);
            let dropped: Vec<usize> = (0..4)
                .filter(|i| !resolved.contains(i))
                .map(|i| dims[i])
                .collect();
            let count: usize = resolved.iter().map(|&a| dims[a]).product();
            let mean: Vec<f64> = expected.iter().map(|v| v / count as f64).collect();
            check(
                &format!("sum {axes:?} keepdim"),
                &x.sum(axes, true).unwrap(),
                &kept,
                &expected,
                TOL,
            );
            check(
                &format!("sum {axes:?}"),
                &x.sum(axes, false).unwrap(),
                &dropped,
                &expected,
                TOL,
            );
            check(
                &format!("mean {axes:?} keepdim"),
                &x.mean(axes, true).unwrap(),
                &kept,
                &mean,
                TOL,
            );
            check(
                &format!("mean {axes:?}"),
                &x.mean(axes, false).unwrap(),
                &dropped,
                &mean,
                TOL,
            );
        }
    }

    /// The backend accumulates in f64, so even 70001 terms stay within `TOL`.
    #[test]
    fn long_sums_stay_accurate() {
        let x = randn(1, &[3, 70001]).add_scalar(0.25).unwrap();
        let (expected, _) = sum_ref(&f64s(&x), &[3, 70001], &[1]);
        check(
            "sum long",
            &x.sum(&[1], false).unwrap(),
            &[3],
            &expected,
            TOL,
        );
        let mean: Vec<f64> = expected.iter().map(|v| v / 70001.0).collect();
        check(
            "mean long",
            &x.mean(&[-1], false).unwrap(),
            &[3],
            &mean,
            TOL,
        );
    }

    #[test]
    fn bad_reductions_are_rejected() {
        let x = randn(1, &[2, 3, 5]);
        assert_invalid(x.sum(&[1, -2], false), "sum");
        assert_invalid(x.sum(&[3], false), "sum");
        assert_invalid(x.mean(&[0, 0], true), "mean");
        assert_invalid(
            Tensor::zeros([3, 0], Device::Cpu)
                .unwrap()
                .mean(&[1], false),
            "mean",
        );
    }

    #[test]
    fn reshapes_keep_the_data() {
        let x = randn(1, &[2, 3, 1, 5]);
        let xf = f64s(&x);
        check("reshape", &x.reshape([6, 5]).unwrap(), &[6, 5], &xf, 0.0);
        check(
            "reshape inferred",
            &x.reshape([usize::MAX, 10]).unwrap(),
            &[3, 10],
            &xf,
            0.0,
        );
        check("squeeze", &x.squeeze(2).unwrap(), &[2, 3, 5], &xf, 0.0);
        check(
            "squeeze negative",
            &x.squeeze(-2).unwrap(),
            &[2, 3, 5],
            &xf,
            0.0,
        );
        check(
            "unsqueeze",
            &x.unsqueeze(0).unwrap(),
            &[1, 2, 3, 1, 5],
            &xf,
            0.0,
        );
        check(
            "unsqueeze last",
            &x.unsqueeze(4).unwrap(),
            &[2, 3, 1, 5, 1],
            &xf,
            0.0,
        );
        check("flatten", &x.flatten(1, 3).unwrap(), &[2, 15], &xf, 0.0);
        check(
            "flatten one",
            &x.flatten(0, 0).unwrap(),
            &[2, 3, 1, 5],
            &xf,
            0.0,
        );

        assert_invalid(x.reshape([usize::MAX, usize::MAX]), "reshape");
        assert_invalid(x.reshape([usize::MAX, 7]), "reshape");
        assert_shape_mismatch(x.reshape([4, 5]), "reshape");
        assert_invalid(x.squeeze(1), "squeeze");
        assert_invalid(x.unsqueeze(5), "unsqueeze");
        assert_invalid(x.flatten(2, 1), "flatten");
        assert_invalid(x.flatten(0, 4), "flatten");
    }
}

mod resize {
    use super::*;

    /// The 5x7 input of the PyTorch references below:
    /// `x = torch.tensor([((k * k * k + 5 * k) % 37 - 18) / 4 for k in range(35)]).reshape(1, 1, 5, 7)`
    /// (`import torch.nn.functional as F`; values rounded to six decimals).
    fn input() -> Tensor {
        let data: Vec<f32> = (0..35)
            .map(|k: i32| ((k * k * k + 5 * k) % 37 - 18) as f32 / 4.0)
            .collect();
        tensor(&data, &[1, 1, 5, 7])
    }

    // F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=False).flatten()
    const BILINEAR_CENTERS_3X4: [f32; 12] = [
        -2.645833, 0.854167, -1.552083, -1.239583, -3.34375, 2.59375, -3.96875, 4.09375, -2.864583,
        2.885417, 3.03125, 2.34375,
    ];
    // F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=False).flatten()
    const BILINEAR_CENTERS_9X11: [f32; 99] = [
        -4.5, -3.818182, -2.727273, -0.818182, -1.181818, -3.25, -2.454545, -2.545454, -3.818182,
        -1.0, 1.5, -3.833333, -2.393939, -0.484848, 0.787879, -0.060606, -2.5, -1.810606,
        -1.893939, -3.007576, -1.484849, -0.083334, -2.722222, -0.020202, 3.252526, 3.464647,
        1.808082, -1.25, -0.737374, -0.80808, -1.656566, -2.292929, -2.722223, -3.166667,
        -1.171718, 1.454545, 3.080808, 1.59596, -2.222223, -2.027778, -1.106061, 0.785354,
        0.464647, -0.027777, -4.0, -3.204545, -1.727273, 1.931818, 0.863637, -3.75, -3.909091,
        -1.750002, 3.500001, 4.113636, 4.0, -3.583333, -1.777777, 0.709597, 2.954546, 2.593436,
        0.27778, -0.411614, 0.005051, 1.896464, 2.333333, 2.472222, -3.305556, -0.982323, 2.012626,
        3.462121, 3.679293, 2.972222, 2.371212, 1.664142, 0.815657, 1.133838, 1.5, -3.583333,
        -2.712122, -1.219699, 1.90909, 2.189394, 0.333332, 2.295454, 2.939395, 1.825758, 2.257576,
        2.750001, -3.75, -3.75, -3.159091, 0.977273, 1.295455, -1.25, 2.249999, 3.704546, 2.431818,
        2.931818, 3.5,
    ];
    // F.interpolate(x, size=(1, 1), mode="bilinear", align_corners=False).flatten()
    const BILINEAR_CENTERS_1X1: [f32; 1] = [-3.75];
    // F.interpolate(x, size=(13, 6), mode="bilinear", align_corners=False).flatten()
    const BILINEAR_CENTERS_13X6: [f32; 78] = [
        -4.375, -2.25, -1.354166, -2.520833, -3.5, 1.041666, -4.189103, -1.769231, -1.102564,
        -2.370192, -3.322116, 0.722756, -3.259615, 0.634615, 0.15545, -1.616987, -2.432692,
        -0.871795, -2.330128, 3.038462, 1.413462, -0.863782, -1.543269, -2.466346, -2.395833,
        2.889423, 1.584937, -1.331731, -0.408654, -1.459935, -3.125, 1.038461, 1.032052, -2.613782,
        0.889423, 1.280449, -3.854167, -0.8125, 0.479168, -3.895833, 2.1875, 4.020833, -3.4375,
        0.629808, 1.809296, -1.44391, 1.658654, 2.93109, -3.020833, 2.072116, 3.139424, 1.008013,
        1.129808, 1.841346, -2.921474, 2.158653, 3.498397, 2.399039, 1.110577, 1.527244, -3.298077,
        0.211538, 2.400641, 2.198718, 1.85577, 2.376603, -3.67468, -1.735578, 1.302885, 1.998397,
        2.600962, 3.225962, -3.75, -2.125, 1.083334, 1.958333, 2.75, 3.395833,
    ];
    // F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=True).flatten()
    const BILINEAR_CORNERS_3X4: [f32; 12] = [
        -4.5, 0.0, -2.0, 1.5, -4.0, 3.5, -4.0, 4.0, -3.75, 2.75, 4.25, 3.5,
    ];
    // F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=True).flatten()
    const BILINEAR_CORNERS_9X11: [f32; 99] = [
        -4.5, -3.6, -2.4, -0.6, -1.3, -3.25, -2.5, -2.400001, -3.6, -1.799999, 1.5, -3.5, -1.1,
        0.8, 1.7, 0.35, -2.125, -1.525, -1.45, -2.425, -2.0, -0.875, -2.5, 1.4, 4.0, 4.0, 2.0,
        -1.0, -0.55, -0.5, -1.25, -2.2, -3.25, -3.25, -0.775, 1.45, 3.175, 1.299999, -2.375,
        -2.225, -1.424999, 0.675001, 0.975, 0.375, -4.0, -2.95, -1.1, 2.35, 0.599999, -3.75, -3.9,
        -2.349998, 2.600002, 4.15, 4.0, -3.625, -1.375, 0.875, 3.125, 2.275, -0.125, -0.725,
        -0.424999, 1.675001, 2.475, 2.625, -3.25, 0.2, 2.85, 3.9, 3.95, 3.5, 2.45, 1.5, 0.75, 0.8,
        1.25, -3.5, -1.775, 0.2, 2.675, 2.55, 1.125, 2.25, 2.675, 1.7, 1.775, 2.375, -3.75, -3.75,
        -2.45, 1.450001, 1.15, -1.25, 2.050001, 3.849999, 2.65, 2.75, 3.5,
    ];
    // F.interpolate(x, size=(1, 1), mode="bilinear", align_corners=True).flatten()
    const BILINEAR_CORNERS_1X1: [f32; 1] = [-4.5];
    // F.interpolate(x, size=(13, 6), mode="bilinear", align_corners=True).flatten()
    const BILINEAR_CORNERS_13X6: [f32; 78] = [
        -4.5, -2.4, -1.3, -2.5, -3.6, 1.5, -3.833333, -0.266666, -0.2, -1.85, -2.816667, -0.083333,
        -3.166667, 1.866667, 0.9, -1.2, -2.033334, -1.666667, -2.5, 4.0, 2.0, -0.55, -1.25, -3.25,
        -3.0, 2.3, 1.533333, -1.666667, 0.033334, -0.833333, -3.5, 0.6, 1.066666, -2.783334,
        1.316668, 1.583334, -4.0, -1.1, 0.599999, -3.9, 2.600002, 4.0, -3.75, 0.216667, 1.716667,
        -1.783332, 1.983334, 3.083333, -3.5, 1.533334, 2.833333, 0.333334, 1.366667, 2.166667,
        -3.25, 2.85, 3.95, 2.45, 0.75, 1.25, -3.416667, 1.083333, 3.016666, 2.316667, 1.383333,
        2.0, -3.583333, -0.683334, 2.083333, 2.183334, 2.016666, 2.75, -3.75, -2.45, 1.15,
        2.050001, 2.65, 3.5,
    ];
    // F.interpolate(x, size=(3, 4), mode="bicubic", align_corners=False).flatten()
    const BICUBIC_CENTERS_3X4: [f32; 12] = [
        -2.698639, 1.015773, -1.233918, -1.678643, -3.748413, 3.157715, -4.640381, 4.633911,
        -3.133788, 3.301692, 3.592573, 2.074086,
    ];
    // F.interpolate(x, size=(9, 11), mode="bicubic", align_corners=False).flatten()
    const BICUBIC_CENTERS_9X11: [f32; 99] = [
        -4.792553, -4.533716, -3.387928, -0.856597, -1.18979, -3.476851, -2.593534, -2.807839,
        -4.442231, -0.993674, 2.547701, -4.091741, -2.435331, -0.111791, 1.385805, 0.127616,
        -2.388887, -1.619022, -1.817029, -3.532957, -1.99885, -0.11204, -3.164999, 0.275676,
        4.14499, 4.45631, 1.967734, -1.025719, -0.545008, -0.509189, -1.892984, -2.924349,
        -3.39875, -3.432863, -1.158782, 2.079362, 4.408073, 2.05639, -2.568587, -3.156642,
        -1.12236, 1.41371, 0.841197, -0.515281, -4.159748, -3.700416, -1.685013, 2.916794, 1.62885,
        -3.75, -5.281745, -1.952857, 3.652141, 4.809545, 3.97718, -4.033628, -2.059216, 1.06406,
        3.706235, 3.342733, 0.589851, -1.296807, -0.613239, 2.122956, 2.964337, 2.853681,
        -3.747261, -0.946894, 2.693228, 3.970049, 4.23263, 3.540809, 2.94527, 1.709005, 0.502599,
        0.7245, 1.354391, -3.736453, -3.042783, -1.035339, 2.43284, 2.684361, 0.648146, 2.780145,
        3.501574, 1.613299, 1.929773, 2.743698, -3.74749, -4.650539, -3.871957, 1.297416, 1.470882,
        -1.72891, 2.290675, 4.60413, 2.541879, 2.967644, 3.84556,
    ];
    // F.interpolate(x, size=(1, 1), mode="bicubic", align_corners=False).flatten()
    const BICUBIC_CENTERS_1X1: [f32; 1] = [-3.75];
    // F.interpolate(x, size=(13, 6), mode="bicubic", align_corners=False).flatten()
    const BICUBIC_CENTERS_13X6: [f32; 78] = [
        -4.673271, -2.812042, -1.429832, -2.734873, -4.423355, 1.590562, -4.260064, -1.598161,
        -0.908033, -2.41607, -3.906471, 0.826615, -3.180211, 1.569868, 0.339097, -1.35809,
        -2.970351, -1.44396, -2.217908, 4.397606, 1.575489, -0.656538, -1.691173, -3.173228,
        -2.235114, 4.334151, 1.973222, -1.801109, 0.067484, -1.997772, -3.176977, 1.514636,
        1.321583, -4.388076, 1.537482, 1.40951, -3.909467, -0.507812, 1.183016, -5.326316,
        2.398438, 4.056244, -3.663811, 0.790116, 2.442257, -2.861495, 1.974084, 3.629092,
        -3.049126, 3.10944, 3.897964, 0.834531, 0.893084, 1.780122, -2.90442, 3.118778, 4.142184,
        3.106345, 0.776183, 1.24753, -3.275866, 0.798582, 2.971785, 2.880058, 1.644324, 2.14923,
        -3.720421, -1.76944, 1.587367, 1.993145, 2.626092, 3.257476, -3.881719, -2.763411,
        1.080196, 1.854919, 2.999361, 3.650916,
    ];
    // F.interpolate(x, size=(3, 4), mode="bicubic", align_corners=True).flatten()
    const BICUBIC_CORNERS_3X4: [f32; 12] = [
        -4.5, 0.0, -2.0, 1.5, -4.0, 3.5, -4.0, 4.0, -3.75, 2.75, 4.25, 3.5,
    ];
    // F.interpolate(x, size=(9, 11), mode="bicubic", align_corners=True).flatten()
    const BICUBIC_CORNERS_9X11: [f32; 99] = [
        -4.5, -3.905999, -2.250001, -0.179999, -1.027, -3.25, -2.503, -2.364002, -4.146, -2.081999,
        1.5, -3.359375, -0.742624, 1.77575, 2.360188, 0.553249, -1.867188, -1.207936, -1.152814,
        -2.986563, -2.887812, -1.554688, -2.5, 1.478001, 4.744, 4.636, 2.005998, -1.0, -0.765998,
        -0.356, -1.094, -2.314, -3.25, -3.132812, -0.871562, 2.178999, 4.295688, 1.673968,
        -2.84375, -3.611842, -1.639312, 1.354313, 1.754626, 0.1875, -4.0, -3.549999, -0.896001,
        3.226001, 1.326, -3.75, -5.315999, -2.565999, 2.816001, 5.044002, 4.0, -3.71875, -1.781499,
        1.26425, 3.7595, 2.995937, 0.0625, -1.785874, -1.104312, 1.889313, 3.365157, 3.09375,
        -3.25, 0.080001, 3.378001, 4.151999, 4.274, 3.5, 2.510002, 1.344001, 0.606, 0.656, 1.25,
        -3.429688, -1.845687, 0.834688, 3.157812, 3.165375, 1.804688, 3.010689, 3.236562, 1.402812,
        1.176124, 2.117188, -3.75, -4.451999, -2.51, 1.99, 1.504, -1.25, 2.044002, 4.395999,
        2.613999, 2.518999, 3.5,
    ];
    // F.interpolate(x, size=(1, 1), mode="bicubic", align_corners=True).flatten()
    const BICUBIC_CORNERS_1X1: [f32; 1] = [-4.5];
    // F.interpolate(x, size=(13, 6), mode="bicubic", align_corners=True).flatten()
    const BICUBIC_CORNERS_13X6: [f32; 78] = [
        -4.5, -2.250001, -1.027, -2.503, -4.146, 1.5, -3.787036, 0.265148, -0.034389, -1.703386,
        -3.402409, -0.39815, -2.962965, 3.168851, 1.126721, -0.807277, -2.489262, -2.560185, -2.5,
        4.744, 2.005998, -0.765998, -1.094, -3.25, -2.791666, 3.50811, 1.965146, -2.440184,
        0.598815, -1.342593, -3.500002, 0.79322, 1.381017, -4.656648, 2.000184, 1.75926, -4.0,
        -0.896001, 1.326, -5.315999, 2.816001, 4.0, -3.902775, 0.149965, 2.332407, -3.331924,
        2.443147, 3.814812, -3.51389, 2.373374, 3.615927, -0.154739, 1.295852, 2.268517, -3.25,
        3.378001, 4.274, 2.510002, 0.606, 1.25, -3.324071, 1.999261, 3.729517, 3.232852, 0.992591,
        1.652775, -3.550928, -0.418926, 2.539815, 2.625481, 1.859075, 2.638891, -3.75, -2.51,
        1.504, 2.044002, 2.613999, 3.5,
    ];

    fn check_resize(mode: ResizeMode, align_corners: bool, cases: [(usize, usize, &[f32]); 4]) {
        let x = input();
        for (h, w, expected) in cases {
            let expected: Vec<f64> = expected.iter().map(|&v| f64::from(v)).collect();
            let out = x.resize2d(h, w, mode, align_corners).unwrap();
            check(
                &format!("{mode:?} align_corners {align_corners} to {h}x{w}"),
                &out,
                &[1, 1, h, w],
                &expected,
                TOL,
            );
        }
    }

    #[test]
    fn bilinear_matches_pytorch() {
        check_resize(
            ResizeMode::Bilinear,
            false,
            [
                (3, 4, &BILINEAR_CENTERS_3X4),
                (9, 11, &BILINEAR_CENTERS_9X11),
                (1, 1, &BILINEAR_CENTERS_1X1),
                (13, 6, &BILINEAR_CENTERS_13X6),
            ],
        );
    }

    #[test]
    fn bilinear_align_corners_matches_pytorch() {
        check_resize(
            ResizeMode::Bilinear,
            true,
            [
                (3, 4, &BILINEAR_CORNERS_3X4),
                (9, 11, &BILINEAR_CORNERS_9X11),
                (1, 1, &BILINEAR_CORNERS_1X1),
                (13, 6, &BILINEAR_CORNERS_13X6),
            ],
        );
    }

    #[test]
    fn bicubic_matches_pytorch() {
        check_resize(
            ResizeMode::Bicubic,
            false,
            [
                (3, 4, &BICUBIC_CENTERS_3X4),
                (9, 11, &BICUBIC_CENTERS_9X11),
                (1, 1, &BICUBIC_CENTERS_1X1),
                (13, 6, &BICUBIC_CENTERS_13X6),
            ],
        );
    }

    #[test]
    fn bicubic_align_corners_matches_pytorch() {
        check_resize(
            ResizeMode::Bicubic,
            true,
            [
                (3, 4, &BICUBIC_CORNERS_3X4),
                (9, 11, &BICUBIC_CORNERS_9X11),
                (1, 1, &BICUBIC_CORNERS_1X1),
                (13, 6, &BICUBIC_CORNERS_13X6),
            ],
        );
    }

    const MODES: [(ResizeMode, bool); 4] = [
        (ResizeMode::Bilinear, false),
        (ResizeMode::Bilinear, true),
        (ResizeMode::Bicubic, false),
        (ResizeMode::Bicubic, true),
    ];

    #[test]
    fn planes_are_resized_independently() {
        let x = randn(1, &[2, 3, 5, 7]);
        for (mode, align_corners) in MODES {
            let out = x.resize2d(9, 4, mode, align_corners).unwrap();
            let expected: Vec<f64> = (0..6)
                .flat_map(|p| {
                    let plane = x.reshape([6, 5, 7]).unwrap().narrow(0, p, 1).unwrap();
                    f64s(&plane.resize2d(9, 4, mode, align_corners).unwrap())
                })
                .collect();
            check(
                &format!("{mode:?} planes"),
                &out,
                &[2, 3, 9, 4],
                &expected,
                0.0,
            );
        }
    }

    /// Every source coordinate is a whole pixel, where both kernels weigh only that pixel.
    #[test]
    fn same_size_is_identity() {
        let x = randn(1, &[2, 5, 7]);
        for (mode, align_corners) in MODES {
            let out = x.resize2d(5, 7, mode, align_corners).unwrap();
            check(
                &format!("{mode:?} identity"),
                &out,
                &[2, 5, 7],
                &f64s(&x),
                0.0,
            );
        }
    }

    #[test]
    fn upsample_nearest_repeats_pixels() {
        let x = randn(1, &[2, 3, 5, 7]);
        let xf = f64s(&x);
        let out_dims = [2, 3, 10, 21];
        let expected: Vec<f64> = (0..out_dims.iter().product())
            .map(|i| {
                let [n, c, y, x] = unravel(i, &out_dims)[..] else {
                    unreachable!()
                };
                xf[ravel(&[n, c, y / 2, x / 3], &[2, 3, 5, 7])]
            })
            .collect();
        check(
            "upsample_nearest2d",
            &x.upsample_nearest2d(2, 3).unwrap(),
            &out_dims,
            &expected,
            0.0,
        );
        check(
            "upsample_nearest2d 1x1",
            &x.upsample_nearest2d(1, 1).unwrap(),
            &[2, 3, 5, 7],
            &xf,
            0.0,
        );
    }

    #[test]
    fn max_pool_takes_window_maxima_with_padding_ignored() {
        let dims = [2, 3, 5, 7];
        let x = randn(3, &dims);
        let xf = f64s(&x);
        for (k, s, p) in [(3, 1, 1), (2, 2, 0), (5, 2, 2), (1, 1, 0)] {
            let (oh, ow) = ((5 + 2 * p - k) / s + 1, (7 + 2 * p - k) / s + 1);
            let out_dims = [2, 3, oh, ow];
            let expected: Vec<f64> = (0..out_dims.iter().product())
                .map(|i| {
                    let [n, c, oy, ox] = unravel(i, &out_dims)[..] else {
                        unreachable!()
                    };
                    let mut m = f64::NEG_INFINITY;
                    for dy in 0..k {
                        for dx in 0..k {
                            let (y, x) = (
                                (oy * s + dy) as isize - p as isize,
                                (ox * s + dx) as isize - p as isize,
                            );
                            if (0..5).contains(&y) && (0..7).contains(&x) {
                                m = m.max(xf[ravel(&[n, c, y as usize, x as usize], &dims)]);
                            }
                        }
                    }
                    m
                })
                .collect();
            check(
                &format!("max_pool2d k{k} s{s} p{p}"),
                &x.max_pool2d(k, s, p).unwrap(),
                &out_dims,
                &expected,
                0.0,
            );
        }
        assert_invalid(x.max_pool2d(0, 1, 0), "max_pool2d");
        assert_invalid(x.max_pool2d(3, 0, 1), "max_pool2d");
        assert_invalid(x.max_pool2d(3, 1, 2), "max_pool2d");
        assert_invalid(x.max_pool2d(6, 1, 0), "max_pool2d");
        assert_invalid(randn(1, &[7]).max_pool2d(1, 1, 0), "max_pool2d");
    }

    #[test]
    fn bad_resizes_are_rejected() {
        let x = randn(1, &[1, 5, 7]);
        assert_invalid(x.upsample_nearest2d(0, 2), "upsample_nearest2d");
        assert_invalid(
            randn(1, &[7]).upsample_nearest2d(2, 2),
            "upsample_nearest2d",
        );
        assert_invalid(x.resize2d(0, 3, ResizeMode::Bilinear, false), "resize2d");
        assert_invalid(x.resize2d(3, 0, ResizeMode::Bicubic, true), "resize2d");
        assert_invalid(
            randn(1, &[7]).resize2d(3, 3, ResizeMode::Bilinear, false),
            "resize2d",
        );
        assert_invalid(
            Tensor::zeros([1, 0, 7], Device::Cpu).unwrap().resize2d(
                3,
                3,
                ResizeMode::Bilinear,
                false,
            ),
            "resize2d",
        );
    }
}

mod dtype_and_device {
    use super::*;

    fn assert_unsupported<T: std::fmt::Debug>(result: Result<T>, what: &str) {
        assert!(
            matches!(
                result,
                Err(Error::UnsupportedDType {
                    dtype: DType::F16 | DType::BF16,
                    device: Device::Cpu,
                    ..
                })
            ),
            "{what}: {result:?}"
        );
    }

    /// The CPU computes in f32 only; half tensors must be converted first, not misread.
    #[test]
    fn half_tensors_are_rejected_by_cpu_ops() {
        let x = randn(1, &[2, 4, 6]);
        let h = x.to_dtype(DType::F16).unwrap();
        let w = randn(2, &[3, 6]);
        assert_unsupported(h.exp(), "exp");
        assert_unsupported(h.affine(2.0, 1.0), "affine");
        assert_unsupported(h.clamp(0.0, 1.0), "clamp");
        assert_unsupported(x.add(&h), "add");
        assert_unsupported(h.mul(&randn(2, &[6])), "mul");
        assert_unsupported(h.matmul(&w.transpose(0, 1).unwrap()), "matmul");
        assert_unsupported(x.linear(&w.to_dtype(DType::BF16).unwrap(), None), "linear");
        assert_unsupported(h.conv1d(&randn(3, &[2, 4, 3]), None, 1, 1), "conv");
        assert_unsupported(h.group_norm(2, None, None, 1e-5), "group_norm");
        assert_unsupported(h.layer_norm(None, None, 1e-5), "layer_norm");
        assert_unsupported(h.softmax_last(), "softmax");
        assert_unsupported(Tensor::attention(&h, &h, &h, 2, 1.0), "attention");
        // One key takes the broadcast shortcut rather than the attention kernel.
        let k = x.narrow(1, 0, 1).unwrap();
        let v = k.to_dtype(DType::F16).unwrap();
        assert_unsupported(
            Tensor::attention(&x, &k, &v, 2, 1.0),
            "attention with one key",
        );
        assert_unsupported(h.geglu(), "geglu");
        assert_unsupported(h.permute(&[2, 0, 1]), "permute");
        assert_unsupported(Tensor::cat(&[&h, &h], 0), "cat");
        assert_unsupported(h.index_select(1, &[0, 2]), "index_select");
        assert_unsupported(h.sum(&[1], false), "sum");
        assert_unsupported(h.upsample_nearest2d(2, 2), "upsample_nearest2d");
        assert_unsupported(h.resize2d(3, 3, ResizeMode::Bicubic, false), "resize2d");
        let back = h.to_dtype(DType::F32).unwrap().exp().unwrap();
        assert_eq!(back.dims(), [2, 4, 6]);
    }

    #[test]
    fn missing_cuda_backend_is_an_error_not_a_panic() {
        assert!(matches!(
            Device::Cuda(0).backend(),
            Err(Error::DeviceUnavailable { .. })
        ));
        assert!(matches!(
            Tensor::zeros([2], Device::Cuda(0)),
            Err(Error::DeviceUnavailable { .. })
        ));
        assert!(matches!(
            randn(1, &[2]).to_device(Device::Cuda(1)),
            Err(Error::DeviceUnavailable { .. })
        ));
    }
}

mod noise {
    use super::*;

    #[test]
    fn frames_stack_single_frames() {
        let noise = FrameNoise::new(9);
        let shape = crate::Shape::new([3, 5]);
        let stacked = noise.frames(4, 3, &shape, Device::Cpu).unwrap();
        assert_eq!(stacked.dims(), [3, 3, 5]);
        let expected: Vec<f32> = (4..7).flat_map(|i| noise.frame(i, 15)).collect();
        assert_eq!(stacked.to_vec().unwrap(), expected);
        assert_eq!(
            noise.frames(0, 0, &shape, Device::Cpu).unwrap().dims(),
            [0, 3, 5]
        );
    }
}

/// The fusion seams: on the CPU their default must be exactly the composition the models
/// used before the seams existed, and both must match a direct definition.
mod seams {
    use super::*;
    use crate::backend::{group_norm_residual_composed, temporal_attention_composed};

    /// Attention over the frames of every pixel, straight from the definition in f64.
    fn naive_temporal(q: &Tensor, k: &Tensor, v: &Tensor, frames: usize, heads: usize) -> Vec<f64> {
        let (bf, hw, c) = (q.dims()[0], q.dims()[1], q.dims()[2]);
        let cv = v.dims()[2];
        let (d, dv) = (c / heads, cv / heads);
        let scale = 1.0 / (d as f64).sqrt();
        let (qf, kf, vf) = (f64s(q), f64s(k), f64s(v));
        let mut out = vec![0.0; bf * hw * cv];
        for row in 0..bf {
            let video = row / frames;
            for p in 0..hw {
                for h in 0..heads {
                    let qi = (row * hw + p) * c + h * d;
                    let scores: Vec<f64> = (0..frames)
                        .map(|j| {
                            let ki = ((video * frames + j) * hw + p) * c + h * d;
                            (0..d).map(|e| qf[qi + e] * kf[ki + e]).sum::<f64>() * scale
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = w.iter().sum();
                    for e in 0..dv {
                        out[(row * hw + p) * cv + h * dv + e] = (0..frames)
                            .map(|j| w[j] * vf[((video * frames + j) * hw + p) * cv + h * dv + e])
                            .sum::<f64>()
                            / total;
                    }
                }
            }
        }
        out
    }

    /// What the UNet's temporal block did before the seam: permute to `[b·hw, f, c]`,
    /// attend, permute back.
    fn permuted(q: &Tensor, k: &Tensor, v: &Tensor, frames: usize, heads: usize) -> Tensor {
        let (bf, hw) = (q.dims()[0], q.dims()[1]);
        let b = bf / frames;
        let to = |t: &Tensor| {
            let c = t.dims()[2];
            t.reshape([b, frames, hw, c])
                .unwrap()
                .permute(&[0, 2, 1, 3])
                .unwrap()
                .reshape([b * hw, frames, c])
                .unwrap()
        };
        let scale = 1.0 / ((q.dims()[2] / heads) as f32).sqrt();
        let y = Tensor::attention(&to(q), &to(k), &to(v), heads, scale).unwrap();
        let cv = y.dims()[2];
        y.reshape([b, hw, frames, cv])
            .unwrap()
            .permute(&[0, 2, 1, 3])
            .unwrap()
            .reshape([bf, hw, cv])
            .unwrap()
    }

    #[test]
    fn temporal_attention_matches_the_permuted_composition_and_the_definition() {
        // (videos, frames, pixels, heads, head dim, value head dim): odd sizes, one frame.
        for (i, &(b, f, hw, heads, d, dv)) in [
            (2, 3, 5, 2, 3, 3),
            (1, 7, 9, 3, 5, 2),
            (3, 1, 4, 1, 4, 4),
            (2, 5, 1, 2, 7, 3),
        ]
        .iter()
        .enumerate()
        {
            let seed = 10 * i as u64;
            let q = randn(seed, &[b * f, hw, heads * d]);
            let k = randn(seed + 1, &[b * f, hw, heads * d]);
            let v = randn(seed + 2, &[b * f, hw, heads * dv]);
            let scale = 1.0 / (d as f32).sqrt();
            let seam = Tensor::temporal_attention(&q, &k, &v, f, heads, scale).unwrap();
            let what = format!("case {i}");
            assert_eq!(
                seam.to_vec().unwrap(),
                permuted(&q, &k, &v, f, heads).to_vec().unwrap(),
                "{what}: seam vs permuted"
            );
            assert_eq!(
                seam.to_vec().unwrap(),
                temporal_attention_composed(&q, &k, &v, f, heads, scale)
                    .unwrap()
                    .to_vec()
                    .unwrap(),
                "{what}: seam vs default"
            );
            check(
                &what,
                &seam,
                &[b * f, hw, heads * dv],
                &naive_temporal(&q, &k, &v, f, heads),
                TOL,
            );
        }
    }

    #[test]
    fn temporal_attention_rejects_bad_layouts() {
        let q = randn(1, &[6, 5, 4]);
        let ok = |q: &Tensor, k: &Tensor, v: &Tensor, f, h| {
            Tensor::temporal_attention(q, k, v, f, h, 1.0)
        };
        assert!(ok(&q, &q, &q, 3, 2).is_ok());
        assert_invalid(ok(&q, &q, &q, 4, 2), "temporal_attention");
        assert_invalid(ok(&q, &q, &q, 0, 2), "temporal_attention");
        assert_invalid(ok(&q, &q, &q, 3, 3), "temporal_attention");
        assert_invalid(ok(&q, &q, &q, 3, 0), "temporal_attention");
        let other = randn(2, &[6, 4, 4]);
        assert_invalid(ok(&q, &other, &q, 3, 2), "temporal_attention");
        assert_invalid(ok(&q, &q, &other, 3, 2), "temporal_attention");
        assert_invalid(
            ok(&q.reshape([30, 4]).unwrap(), &q, &q, 3, 2),
            "temporal_attention",
        );
        // The value width may differ from the query width, by whole heads.
        assert!(ok(&q, &q, &randn(3, &[6, 5, 6]), 3, 2).is_ok());
    }

    #[test]
    fn group_norm_residual_is_the_norm_of_the_sum() {
        // x [n, c, …] with a full residual and with per-channel ones (the time embedding).
        for (i, (dims, rdims)) in [
            (vec![2, 6, 3, 5], vec![2, 6, 3, 5]),
            (vec![2, 6, 3, 5], vec![2, 6, 1, 1]),
            (vec![1, 4, 3, 5, 7], vec![1, 4, 3, 1, 1]),
            (vec![3, 9, 7], vec![9, 1]),
        ]
        .into_iter()
        .enumerate()
        {
            let groups = 3usize.min(dims[1]);
            let groups = if dims[1].is_multiple_of(groups) {
                groups
            } else {
                1
            };
            let seed = 20 * i as u64;
            let x = randn(seed, &dims);
            let r = randn(seed + 1, &rdims);
            let w = randn(seed + 2, &[dims[1]]);
            let b = randn(seed + 3, &[dims[1]]);
            for silu in [false, true] {
                let seam = x
                    .group_norm_residual(&r, groups, Some(&w), Some(&b), 1e-5, silu)
                    .unwrap();
                let sum = x.add(&r).unwrap();
                let explicit = if silu {
                    sum.group_norm_silu(groups, Some(&w), Some(&b), 1e-5)
                } else {
                    sum.group_norm(groups, Some(&w), Some(&b), 1e-5)
                }
                .unwrap();
                let what = format!("case {i}, silu {silu}");
                assert_eq!(seam.dims(), &dims[..], "{what}");
                assert_eq!(
                    seam.to_vec().unwrap(),
                    explicit.to_vec().unwrap(),
                    "{what}: seam vs add then norm"
                );
                let default =
                    group_norm_residual_composed(&x, &r, groups, Some(&w), Some(&b), 1e-5, silu)
                        .unwrap();
                assert_eq!(seam.to_vec().unwrap(), default.to_vec().unwrap(), "{what}");
            }
        }
    }

    #[test]
    fn group_norm_residual_rejects_a_residual_that_widens_x() {
        let x = randn(1, &[2, 4, 3, 3]);
        let gn = |r: &Tensor| x.group_norm_residual(r, 2, None, None, 1e-5, true);
        assert!(gn(&randn(2, &[1, 4, 1, 1])).is_ok());
        assert!(matches!(
            gn(&randn(2, &[2, 2, 4, 3, 3])),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(gn(&randn(2, &[2, 5, 3, 3])).is_err());
        assert_invalid(
            x.group_norm_residual(&x, 3, None, None, 1e-5, false),
            "group_norm",
        );
    }
}
