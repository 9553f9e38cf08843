//! Tests of the flow-warping ops (transposed convolution, grid sampling, PReLU) against
//! literal PyTorch outputs and naive f64 references written from the definitions.

use crate::backend::{prelu_composed, GridPadding};
use crate::rng::FrameNoise;
use crate::{Device, Error, Tensor};

fn tensor(data: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_slice(data, dims, Device::Cpu).unwrap()
}

fn randn(seed: u64, dims: &[usize]) -> Tensor {
    let len = dims.iter().product();
    tensor(&FrameNoise::new(seed).frame(0, len), dims)
}

fn assert_close(what: &str, actual: &Tensor, dims: &[usize], expected: &[f64], tol: f64) {
    assert_eq!(actual.dims(), dims, "{what}: shape");
    let actual = actual.to_vec().unwrap();
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let err = (f64::from(a) - e).abs();
        assert!(
            err <= tol * e.abs().max(1.0),
            "{what}[{i}]: {a} vs {e} (err {err:e})"
        );
    }
}

/// The definition: every input pixel scatters `x · w` onto a `k×k` patch at `stride·i − pad`.
fn naive_conv_transpose(
    x: &Tensor,
    w: &Tensor,
    bias: &[f32],
    stride: usize,
    pad: usize,
) -> (Vec<f64>, Vec<usize>) {
    let (xv, wv) = (x.to_vec().unwrap(), w.to_vec().unwrap());
    let [n, c, h, wi] = x.dims().try_into().unwrap();
    let [_, o, kh, kw] = w.dims().try_into().unwrap();
    let (oh, ow) = (
        (h - 1) * stride + kh - 2 * pad,
        (wi - 1) * stride + kw - 2 * pad,
    );
    let mut out = vec![0.0f64; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            out[(b * o + oc) * oh * ow..][..oh * ow].fill(f64::from(bias[oc]));
            for ic in 0..c {
                for y in 0..h {
                    for xx in 0..wi {
                        let v = f64::from(xv[((b * c + ic) * h + y) * wi + xx]);
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (ty, tx) = (
                                    (y * stride + ky) as isize - pad as isize,
                                    (xx * stride + kx) as isize - pad as isize,
                                );
                                if ty < 0 || tx < 0 || ty >= oh as isize || tx >= ow as isize {
                                    continue;
                                }
                                let wt = f64::from(wv[((ic * o + oc) * kh + ky) * kw + kx]);
                                out[((b * o + oc) * oh + ty as usize) * ow + tx as usize] += v * wt;
                            }
                        }
                    }
                }
            }
        }
    }
    (out, vec![n, o, oh, ow])
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    let x = tensor(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 1, 2, 3]);
    let w = tensor(&[1.0, -1.0, 0.5, 2.0, 0.0, 1.0, -2.0, 0.25], &[1, 2, 2, 2]);
    let b = tensor(&[0.5, -1.0], &[2]);
    // F.conv_transpose2d(x, w, b, stride=2, padding=0) in torch 2.9.1.
    let expected = [
        1.5, -0.5, 2.5, -1.5, 3.5, -2.5, 1.0, 2.5, 1.5, 4.5, 2.0, 6.5, 4.5, -3.5, 5.5, -4.5, 6.5,
        -5.5, 2.5, 8.5, 3.0, 10.5, 3.5, 12.5, -1.0, 0.0, -1.0, 1.0, -1.0, 2.0, -3.0, -0.75, -5.0,
        -0.5, -7.0, -0.25, -1.0, 3.0, -1.0, 4.0, -1.0, 5.0, -9.0, 0.0, -11.0, 0.25, -13.0, 0.5,
    ];
    let y = x.conv_transpose2d(&w, Some(&b), 2, 0).unwrap();
    assert_close("convT", &y, &[1, 2, 4, 6], &expected, 1e-6);
}

#[test]
fn conv_transpose2d_matches_the_definition() {
    // RIFE's heads (k 4, stride 2, pad 1), plus odd sizes, stride 1 and 3, non-square kernels.
    let cases: &[([usize; 4], [usize; 4], usize, usize)] = &[
        ([2, 5, 3, 4], [5, 3, 4, 4], 2, 1),
        ([1, 3, 5, 2], [3, 2, 3, 3], 1, 1),
        ([1, 2, 4, 3], [2, 4, 2, 3], 3, 0),
        ([1, 4, 1, 1], [4, 2, 4, 4], 2, 1),
    ];
    for (seed, &(xd, wd, stride, pad)) in cases.iter().enumerate() {
        let x = randn(10 + seed as u64, &xd);
        let w = randn(20 + seed as u64, &wd);
        let bias = FrameNoise::new(30 + seed as u64).frame(0, wd[1]);
        let b = tensor(&bias, &[wd[1]]);
        let y = x.conv_transpose2d(&w, Some(&b), stride, pad).unwrap();
        let (expected, dims) = naive_conv_transpose(&x, &w, &bias, stride, pad);
        assert_close(&format!("convT case {seed}"), &y, &dims, &expected, 1e-5);
    }
}

#[test]
fn conv_transpose2d_rejects_bad_arguments() {
    let x = randn(1, &[1, 3, 4, 4]);
    let w = randn(2, &[3, 2, 4, 4]);
    let bad_weight = randn(3, &[2, 3, 4, 4]);
    assert!(matches!(
        x.conv_transpose2d(&bad_weight, None, 2, 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(x.conv_transpose2d(&w, None, 0, 1).is_err());
    assert!(x.conv_transpose2d(&w, None, 2, 4).is_err());
    assert!(x
        .conv_transpose2d(&w, Some(&tensor(&[1.0], &[1])), 2, 1)
        .is_err());
}

#[test]
fn grid_sample_matches_pytorch() {
    let img = tensor(
        &(0..12).map(|v| v as f32).collect::<Vec<_>>(),
        &[1, 1, 3, 4],
    );
    let grid = tensor(
        &[
            -1.0, -1.0, 1.0, 1.0, 0.0, 0.0, 1.5, -0.2, -3.0, 0.5, 0.2, 0.9,
        ],
        &[1, 1, 6, 2],
    );
    // F.grid_sample(img, grid, mode="bilinear", padding_mode, align_corners) in torch 2.9.1.
    let cases: [(GridPadding, bool, [f64; 6]); 4] = [
        (GridPadding::Zeros, true, [0.0, 11.0, 5.5, 1.55, 0.0, 9.4]),
        (GridPadding::Zeros, false, [0.0, 2.75, 5.5, 0.0, 0.0, 6.435]),
        (GridPadding::Border, true, [0.0, 11.0, 5.5, 6.2, 6.0, 9.4]),
        (GridPadding::Border, false, [0.0, 11.0, 5.5, 5.8, 7.0, 9.9]),
    ];
    for (padding, align, expected) in cases {
        let y = img.grid_sample(&grid, padding, align).unwrap();
        assert_close(
            &format!("grid_sample {padding:?} {align}"),
            &y,
            &[1, 1, 1, 6],
            &expected,
            1e-6,
        );
    }
}

#[test]
fn grid_sample_at_pixel_centres_is_the_identity() {
    let (h, w) = (5, 7);
    let img = randn(4, &[2, 3, h, w]);
    let mut grid = Vec::new();
    for _ in 0..2 {
        for y in 0..h {
            for x in 0..w {
                grid.push(2.0 * x as f32 / (w - 1) as f32 - 1.0);
                grid.push(2.0 * y as f32 / (h - 1) as f32 - 1.0);
            }
        }
    }
    let grid = tensor(&grid, &[2, h, w, 2]);
    let y = img.grid_sample(&grid, GridPadding::Zeros, true).unwrap();
    let expected: Vec<f64> = img.to_vec().unwrap().into_iter().map(f64::from).collect();
    assert_close("identity grid", &y, &[2, 3, h, w], &expected, 1e-6);
}

#[test]
fn grid_sample_rejects_bad_shapes_and_nan_reads_zero() {
    let img = randn(5, &[1, 2, 3, 3]);
    assert!(img
        .grid_sample(&randn(6, &[1, 2, 2, 3]), GridPadding::Border, true)
        .is_err());
    assert!(img
        .grid_sample(&randn(6, &[2, 2, 2, 2]), GridPadding::Border, true)
        .is_err());
    let nan = tensor(&[f32::NAN, 0.0], &[1, 1, 1, 2]);
    let y = img.grid_sample(&nan, GridPadding::Zeros, true).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![0.0, 0.0]);
}

#[test]
fn prelu_per_channel_shared_and_composed() {
    let x = tensor(&[-2.0, -0.5, 0.0, 1.0, 3.0, -4.0], &[1, 2, 3]);
    let slopes = tensor(&[0.25, -0.5], &[2]);
    let expected = [-0.5, -0.125, 0.0, 1.0, 3.0, 2.0];
    assert_close(
        "fused",
        &x.prelu(&slopes).unwrap(),
        &[1, 2, 3],
        &expected,
        0.0,
    );
    assert_close(
        "composed",
        &prelu_composed(&x, &slopes).unwrap(),
        &[1, 2, 3],
        &expected,
        0.0,
    );
    let shared = tensor(&[0.1], &[1]);
    let expected = [-0.2, -0.05, 0.0, 1.0, 3.0, -0.4];
    assert_close(
        "shared",
        &x.prelu(&shared).unwrap(),
        &[1, 2, 3],
        &expected,
        1e-7,
    );
    let y = randn(7, &[2, 5, 3, 4]);
    let a = randn(8, &[5]);
    let fused = y.prelu(&a).unwrap().to_vec().unwrap();
    let composed = prelu_composed(&y, &a).unwrap().to_vec().unwrap();
    assert_eq!(fused, composed);
    assert!(x.prelu(&tensor(&[1.0, 2.0, 3.0], &[3])).is_err());
}
