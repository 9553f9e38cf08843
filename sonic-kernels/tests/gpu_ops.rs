//! Tier C: every CUDA op against the CPU reference backend on fresh random inputs, odd
//! sizes, and poisoned outputs (each allocation starts as NaN, so an element no kernel
//! wrote fails the comparison).
//!
//! Runs only where a CUDA driver reports a device; elsewhere each test prints why it was
//! skipped and passes. The seed is printed and can be fixed with `SONIC_TEST_SEED`.

#![cfg(feature = "cuda")]

mod support;

use std::sync::{Arc, OnceLock};

use sonic_core::backend::{BinaryOp, ConvParams, GridPadding, ResizeMode};
use sonic_core::{DType, Device, Tensor};
use sonic_kernels::cuda::{install, AttentionPath, CudaBackend};
use sonic_kernels::{probe_cudnn, probe_driver, ConvAlgorithm};
use support::{
    assert_same_or_nan, grid_points, positive_domain, tolerance, Rng, CONV_TRANSPOSE_CASES,
    GRID_SAMPLE_CASES, MAX_POOLS, MAX_POOL_SHAPES, PRELU_CASES, UNARY_OPS,
};

const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// The device under test, or `None` (with the reason printed) on a machine without one.
fn gpu() -> Option<Arc<CudaBackend>> {
    static GPU: OnceLock<Option<Arc<CudaBackend>>> = OnceLock::new();
    GPU.get_or_init(|| {
        let driver = probe_driver();
        if driver.devices.is_empty() {
            let why = driver.error.unwrap_or_else(|| "no CUDA device".to_owned());
            eprintln!("skipped: no GPU ({why})");
            return None;
        }
        install();
        // A driver with a device must yield a working backend; anything else is a failure.
        let backend = CudaBackend::new(0).expect("a CUDA device was reported but cannot be opened");
        backend.set_poison(true);
        Some(backend)
    })
    .clone()
}

/// The same values as a CPU f32 tensor (the reference's input) and a CUDA tensor of
/// `dtype`; the CPU copy is rounded through `dtype` so both sides see identical inputs.
fn pair(data: Vec<f32>, shape: &[usize], dtype: DType) -> (Tensor, Tensor) {
    let cpu = Tensor::from_vec(data, shape.to_vec(), Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .and_then(|t| t.to_dtype(DType::F32))
        .expect("cpu tensor");
    let gpu = cpu
        .to_dtype(dtype)
        .and_then(|t| t.to_device(Device::Cuda(0)))
        .expect("upload");
    (cpu, gpu)
}

fn random(rng: &mut Rng, shape: &[usize], dtype: DType, scale: f32) -> (Tensor, Tensor) {
    let n = shape.iter().product();
    pair(rng.vec(n, scale), shape, dtype)
}

#[track_caller]
fn assert_close(what: &str, got: &Tensor, want: &Tensor, dtype: DType, loose: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let got = got.to_vec().expect("download");
    let want = want.to_vec().expect("reference");
    let tol = tolerance(dtype, loose);
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        let ok = (g - w).abs() <= tol * (1.0 + w.abs());
        assert!(
            ok,
            "{what} ({dtype}): element {i} is {g}, expected {w} (tolerance {tol})"
        );
    }
}

#[test]
fn unary_affine_clamp() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("unary");
    for dtype in DTYPES {
        let (c, g) = random(&mut rng, &[3, 1001], dtype, 3.0);
        // Positive inputs for the ops with a restricted domain.
        let (cp, gp) = pair(
            rng.vec(777, 1.0).iter().map(|v| v.abs() + 0.1).collect(),
            &[777],
            dtype,
        );
        for op in UNARY_OPS {
            let (c, g) = if positive_domain(op) {
                (&cp, &gp)
            } else {
                (&c, &g)
            };
            let want = c.unary(op).and_then(|t| t.to_dtype(dtype)).expect("cpu");
            assert_close(
                &format!("{op:?}"),
                &g.unary(op).expect("gpu"),
                &want,
                dtype,
                1.0,
            );
        }
        let (c, g) = (cp, gp);
        let want = c.affine(1.5, -0.25).expect("cpu");
        assert_close(
            "affine",
            &g.affine(1.5, -0.25).expect("gpu"),
            &want,
            dtype,
            1.0,
        );
        let want = c.clamp(0.3, 0.7).expect("cpu");
        assert_close("clamp", &g.clamp(0.3, 0.7).expect("gpu"), &want, dtype, 1.0);
    }
}

#[test]
fn binary_broadcasts_and_converts() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("binary");
    for dtype in DTYPES {
        let (ca, ga) = random(&mut rng, &[3, 1, 5, 7], dtype, 2.0);
        let (cb, gb) = random(&mut rng, &[4, 1, 7], dtype, 2.0);
        for op in [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Maximum,
            BinaryOp::Minimum,
        ] {
            let want = ca.binary(&cb, op).expect("cpu");
            assert_close(
                &format!("{op:?}"),
                &ga.binary(&gb, op).expect("gpu"),
                &want,
                dtype,
                1.0,
            );
        }
        for target in DTYPES {
            let converted = ga.to_dtype(target).expect("convert");
            assert_eq!(converted.dtype(), target);
            assert_close("to_dtype", &converted, &ca, dtype.max_error(target), 1.0);
        }
    }
}

/// The coarser of two dtypes, for comparisons after a conversion.
trait Coarser {
    fn max_error(self, other: DType) -> DType;
}

impl Coarser for DType {
    fn max_error(self, other: DType) -> DType {
        let rank = |d: DType| match d {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
        };
        if rank(self) >= rank(other) {
            self
        } else {
            other
        }
    }
}

#[test]
fn matmul_linear_conv() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("gemm");
    for dtype in DTYPES {
        let (ca, ga) = random(&mut rng, &[2, 3, 37, 29], dtype, 1.0);
        let (cb, gb) = random(&mut rng, &[2, 3, 29, 45], dtype, 1.0);
        assert_close(
            "matmul",
            &ga.matmul(&gb).expect("gpu"),
            &ca.matmul(&cb).expect("cpu"),
            dtype,
            8.0,
        );
        let (cs, gs) = random(&mut rng, &[29, 13], dtype, 1.0);
        assert_close(
            "matmul shared",
            &ga.matmul(&gs).expect("gpu"),
            &ca.matmul(&cs).expect("cpu"),
            dtype,
            8.0,
        );
        let (cw, gw) = random(&mut rng, &[31, 29], dtype, 1.0);
        let (cbias, gbias) = random(&mut rng, &[31], dtype, 1.0);
        let want = ca.linear(&cw, Some(&cbias)).expect("cpu");
        assert_close(
            "linear",
            &ga.linear(&gw, Some(&gbias)).expect("gpu"),
            &want,
            dtype,
            8.0,
        );

        let cases: [(&[usize], &[usize], ConvParams); 3] = [
            (&[2, 5, 23], &[7, 5, 3], ConvParams::uniform(1, 2, 1)),
            (
                &[2, 3, 17, 19],
                &[6, 3, 3, 3],
                ConvParams {
                    stride: vec![1, 2],
                    padding: vec![1, 0],
                    dilation: vec![2, 1],
                },
            ),
            (
                &[1, 4, 5, 9, 11],
                &[3, 4, 3, 1, 1],
                ConvParams::uniform(3, 1, 0),
            ),
        ];
        for (xs, ws, p) in cases {
            let (cx, gx) = random(&mut rng, xs, dtype, 1.0);
            let (cw, gw) = random(&mut rng, ws, dtype, 1.0);
            let (cbias, gbias) = random(&mut rng, &[ws[0]], dtype, 1.0);
            let want = cx.conv(&cw, Some(&cbias), &p).expect("cpu");
            assert_close(
                &format!("conv {xs:?}"),
                &gx.conv(&gw, Some(&gbias), &p).expect("gpu"),
                &want,
                dtype,
                8.0,
            );
        }
    }
}

#[test]
fn conv_algorithms() {
    let Some(gpu) = gpu() else { return };
    let mut rng = Rng::new("conv");
    let choice = gpu.conv_choice();
    eprintln!("convolutions run {} ({})", choice.algorithm, choice.reason);
    let mut algorithms = vec![ConvAlgorithm::ImplicitGemm, ConvAlgorithm::Im2col];
    match probe_cudnn().error {
        None => algorithms.push(ConvAlgorithm::Cudnn),
        Some(why) => eprintln!("cuDNN cases skipped: {why}"),
    }
    // Stride, padding and dilation per spatial dim.
    let p = |s: &[usize], pad: &[usize], d: &[usize]| ConvParams {
        stride: s.to_vec(),
        padding: pad.to_vec(),
        dilation: d.to_vec(),
    };
    let u = ConvParams::uniform;
    // (input, weight, params, bias): odd sizes throughout; K % 8 != 0 (the element-wise
    // weight path) and K % 8 == 0; several tiles in M (130 > 128 outputs), N and K; images
    // sharing a column tile; a kernel as large as the input.
    let cases: Vec<(&[usize], &[usize], ConvParams, bool)> = vec![
        (&[2, 5, 13, 11], &[7, 5, 3, 3], u(2, 1, 1), true),
        (&[3, 16, 9, 17], &[130, 16, 3, 3], u(2, 1, 1), false),
        (&[2, 24, 15, 16], &[33, 24, 3, 3], u(2, 2, 1), true),
        (
            &[1, 6, 17, 19],
            &[9, 6, 3, 3],
            p(&[1, 2], &[2, 0], &[2, 1]),
            true,
        ),
        (&[2, 40, 7, 9], &[20, 40, 1, 1], u(2, 1, 0), true),
        (&[2, 3, 5, 5], &[4, 3, 5, 5], u(2, 1, 0), false),
        (&[3, 5, 29], &[7, 5, 3], u(1, 2, 1), true),
        (&[2, 8, 31], &[12, 8, 5], p(&[1], &[4], &[2]), false),
        (&[1, 4, 5, 9, 11], &[3, 4, 3, 3, 3], u(3, 1, 1), true),
        (
            &[2, 3, 4, 7, 6],
            &[5, 3, 3, 1, 1],
            p(&[1; 3], &[1, 0, 0], &[1; 3]),
            false,
        ),
        (
            &[1, 8, 6, 9, 7],
            &[6, 8, 3, 3, 3],
            p(&[2, 1, 2], &[1, 1, 0], &[1, 2, 1]),
            true,
        ),
    ];
    for dtype in DTYPES {
        for (xs, ws, params, with_bias) in &cases {
            let (cx, gx) = random(&mut rng, xs, dtype, 1.0);
            let (cw, gw) = random(&mut rng, ws, dtype, 1.0);
            let (cb, gb) = random(&mut rng, &[ws[0]], dtype, 1.0);
            let (cb, gb) = if *with_bias {
                (Some(&cb), Some(&gb))
            } else {
                (None, None)
            };
            let want = cx.conv(&cw, cb, params).expect("cpu");
            for &algorithm in &algorithms {
                let got = gpu.conv_with(&gx, &gw, gb, params, algorithm).expect("gpu");
                // cuDNN may pick Winograd or FFT for f32, which round differently from a
                // direct sum.
                let loose = if algorithm == ConvAlgorithm::Cudnn && dtype == DType::F32 {
                    64.0
                } else {
                    8.0
                };
                assert_close(
                    &format!("{algorithm} x{xs:?} w{ws:?} {params:?} bias {with_bias}"),
                    &got,
                    &want,
                    dtype,
                    loose,
                );
            }
        }
    }
}

#[test]
fn norms_softmax_geglu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = Rng::new("norms");
    for dtype in DTYPES {
        // Fused path (small groups) and split path (a group above the shared-memory limit).
        for shape in [[3usize, 12, 7, 9], [1, 4, 131, 137]] {
            let c = shape[1];
            let (cx, gx) = random(&mut rng, &shape, dtype, 2.0);
            let (cw, gw) = random(&mut rng, &[c], dtype, 1.0);
            let (cb, gb) = random(&mut rng, &[c], dtype, 1.0);
            let groups = c / 4;
            let want = cx
                .group_norm_silu(groups, Some(&cw), Some(&cb), 1e-5)
                .expect("cpu");
            let got = gx
                .group_norm_silu(groups, Some(&gw), Some(&gb), 1e-5)
                .expect("gpu");
            assert_close(
                &format!("group_norm_silu {shape:?}"),
                &got,
                &want,
                dtype,
                4.0,
            );
            let want = cx.group_norm(groups, None, None, 1e-6).expect("cpu");
            let got = gx.group_norm(groups, None, None, 1e-6).expect("gpu");
            assert_close(&format!("group_norm {shape:?}"), &got, &want, dtype, 4.0);
            let (cr, gr) = random(&mut rng, &shape, dtype, 2.0);
            let want = cx
                .add(&cr)
                .and_then(|s| s.group_norm_silu(groups, Some(&cw), Some(&cb), 1e-5))
                .expect("cpu");
            let got = gpu
                .group_norm_residual(&gx, Some(&gr), groups, Some(&gw), Some(&gb), 1e-5, true)
                .expect("gpu");
            assert_close(
                &format!("group_norm residual {shape:?}"),
                &got,
                &want,
                dtype,
                4.0,
            );
            let (cr, gr) = random(&mut rng, &[shape[0], c, 1, 1], dtype, 2.0);
            let want = cx
                .add(&cr)
                .and_then(|s| s.group_norm(groups, Some(&cw), Some(&cb), 1e-5))
                .expect("cpu");
            let got = gpu
                .group_norm_residual(&gx, Some(&gr), groups, Some(&gw), Some(&gb), 1e-5, false)
                .expect("gpu");
            assert_close(
                &format!("group_norm per-channel residual {shape:?}"),
                &got,
                &want,
                dtype,
                4.0,
            );
        }
        let (cx, gx) = random(&mut rng, &[5, 3, 321], dtype, 2.0);
        let (cw, gw) = random(&mut rng, &[321], dtype, 1.0);
        let (cb, gb) = random(&mut rng, &[321], dtype, 1.0);
        let want = cx.layer_norm(Some(&cw), Some(&cb), 1e-5).expect("cpu");
        assert_close(
            "layer_norm",
            &gx.layer_norm(Some(&gw), Some(&gb), 1e-5).expect("gpu"),
            &want,
            dtype,
            4.0,
        );
        assert_close(
            "softmax",
            &gx.softmax_last().expect("gpu"),
            &cx.softmax_last().expect("cpu"),
            dtype,
            2.0,
        );
        let (cg, gg) = random(&mut rng, &[7, 2 * 163], dtype, 2.0);
        assert_close(
            "geglu",
            &gg.geglu().expect("gpu"),
            &cg.geglu().expect("cpu"),
            dtype,
            2.0,
        );
    }
}

#[test]
fn attention_kernels() {
    let Some(gpu) = gpu() else { return };
    let mut rng = Rng::new("attention");
    let heads = 3;
    for dtype in DTYPES {
        for d in [40, 64, 80, 128] {
            let scale = 1.0 / (d as f32).sqrt();
            let mut paths = vec![
                (AttentionPath::Generic, 67, 131),
                (AttentionPath::Temporal, 25, 25),
                (AttentionPath::Temporal, 7, 13),
            ];
            if dtype != DType::F32 {
                paths.extend([
                    (AttentionPath::Flash, 67, 131),
                    (AttentionPath::Flash, 130, 64),
                    (AttentionPath::Flash, 5, 1000),
                ]);
            }
            for (path, lq, lk) in paths {
                let (cq, gq) = random(&mut rng, &[2, lq, heads * d], dtype, 1.0);
                let (ck, gk) = random(&mut rng, &[2, lk, heads * d], dtype, 1.0);
                let (cv, gv) = random(&mut rng, &[2, lk, heads * d], dtype, 1.0);
                let want = Tensor::attention(&cq, &ck, &cv, heads, scale).expect("cpu");
                let got = gpu
                    .attention_with(&gq, &gk, &gv, heads, scale, path)
                    .expect("gpu");
                assert_close(
                    &format!("{path:?} d={d} lq={lq} lk={lk}"),
                    &got,
                    &want,
                    dtype,
                    4.0,
                );
            }
        }
        // One key: V broadcast.
        let (cq, gq) = random(&mut rng, &[2, 33, 96], dtype, 1.0);
        let (ck, gk) = random(&mut rng, &[2, 1, 96], dtype, 1.0);
        let (cv, gv) = random(&mut rng, &[2, 1, 72], dtype, 1.0);
        let want = Tensor::attention(&cq, &ck, &cv, 3, 0.1).expect("cpu");
        let got = gpu
            .attention_with(&gq, &gk, &gv, 3, 0.1, AttentionPath::SingleKey)
            .expect("gpu");
        assert_close("single key", &got, &want, dtype, 1.0);
        // A head dim without a specialised kernel (the VAE's single 512-wide head).
        let (cq, gq) = random(&mut rng, &[1, 45, 512], dtype, 1.0);
        let want = Tensor::attention(&cq, &cq, &cq, 1, 0.05).expect("cpu");
        let got = Tensor::attention(&gq, &gq, &gq, 1, 0.05).expect("gpu");
        assert_close("generic d=512", &got, &want, dtype, 4.0);
    }
}

#[test]
fn temporal_attention_on_the_spatial_layout() {
    let Some(gpu) = gpu() else { return };
    let mut rng = Rng::new("temporal");
    let (b, frames, hw, heads, d) = (2, 25, 37, 5, 64);
    for dtype in DTYPES {
        let shape = [b * frames, hw, heads * d];
        let (cq, gq) = random(&mut rng, &shape, dtype, 1.0);
        let (ck, gk) = random(&mut rng, &shape, dtype, 1.0);
        let (cv, gv) = random(&mut rng, &shape, dtype, 1.0);
        // Reference: diffusers' permute to [b·hw, frames, c], attention, permute back.
        let to_seq = |t: &Tensor| {
            t.reshape([b, frames, hw, heads * d])
                .and_then(|t| t.permute(&[0, 2, 1, 3]))
                .and_then(|t| t.reshape([b * hw, frames, heads * d]))
                .expect("permute")
        };
        let want = Tensor::attention(&to_seq(&cq), &to_seq(&ck), &to_seq(&cv), heads, 0.125)
            .and_then(|t| t.reshape([b, hw, frames, heads * d]))
            .and_then(|t| t.permute(&[0, 2, 1, 3]))
            .and_then(|t| t.reshape(shape.to_vec()))
            .expect("cpu");
        let got = gpu
            .spatial_temporal_attention(&gq, &gk, &gv, frames, heads, 0.125)
            .expect("gpu");
        assert_close("spatial temporal attention", &got, &want, dtype, 4.0);
    }
}

/// The `Backend` seams through the `Tensor` API, as the models call them: each shape either
/// takes a fused kernel or falls back to the composition, and both must match the CPU.
#[test]
fn fusion_seams_match_the_cpu() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("seams");
    for dtype in DTYPES {
        // (videos, frames, pixels, heads, head dim, value head dim): kernel-sized, an odd
        // head dim, more frames than the kernel holds, and a narrower value.
        for (b, frames, hw, heads, d, dv) in [
            (2, 14, 37, 5, 64, 64),
            (1, 3, 19, 3, 40, 40),
            (2, 5, 11, 2, 24, 24),
            (1, 33, 7, 2, 64, 64),
            (2, 4, 9, 2, 64, 32),
        ] {
            let scale = 1.0 / (d as f32).sqrt();
            let (cq, gq) = random(&mut rng, &[b * frames, hw, heads * d], dtype, 1.0);
            let (ck, gk) = random(&mut rng, &[b * frames, hw, heads * d], dtype, 1.0);
            let (cv, gv) = random(&mut rng, &[b * frames, hw, heads * dv], dtype, 1.0);
            let want =
                Tensor::temporal_attention(&cq, &ck, &cv, frames, heads, scale).expect("cpu");
            let got = Tensor::temporal_attention(&gq, &gk, &gv, frames, heads, scale).expect("gpu");
            assert_close(
                &format!("temporal_attention f={frames} hw={hw} d={d} dv={dv}"),
                &got,
                &want,
                dtype,
                4.0,
            );
        }
        // Full residuals and per-channel ones (the time embedding) on the fused and the
        // split kernel paths, and broadcasts that take the composition.
        let cases: [(&[usize], &[usize]); 7] = [
            (&[3, 12, 7, 9], &[3, 12, 7, 9]),
            (&[1, 4, 131, 137], &[1, 4, 131, 137]),
            (&[3, 12, 7, 9], &[3, 12, 1, 1]),
            (&[1, 4, 131, 137], &[1, 4, 1, 1]),
            (&[2, 8, 3, 5, 7], &[2, 8, 1, 1, 1]),
            (&[3, 12, 7, 9], &[1, 12, 1, 1]),
            (&[3, 12, 7, 9], &[7, 9]),
        ];
        for (shape, rshape) in cases {
            let c = shape[1];
            let (cx, gx) = random(&mut rng, shape, dtype, 2.0);
            let (cr, gr) = random(&mut rng, rshape, dtype, 2.0);
            let (cw, gw) = random(&mut rng, &[c], dtype, 1.0);
            let (cb, gb) = random(&mut rng, &[c], dtype, 1.0);
            for silu in [false, true] {
                let want = cx
                    .group_norm_residual(&cr, c / 4, Some(&cw), Some(&cb), 1e-5, silu)
                    .expect("cpu");
                let got = gx
                    .group_norm_residual(&gr, c / 4, Some(&gw), Some(&gb), 1e-5, silu)
                    .expect("gpu");
                assert_close(
                    &format!("group_norm_residual {shape:?} + {rshape:?} silu={silu}"),
                    &got,
                    &want,
                    dtype,
                    4.0,
                );
            }
        }
    }
}

#[test]
fn layout_ops() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("layout");
    for dtype in DTYPES {
        let (cx, gx) = random(&mut rng, &[3, 5, 7, 11], dtype, 1.0);
        let (cy, gy) = random(&mut rng, &[3, 2, 7, 11], dtype, 1.0);
        assert_close(
            "permute",
            &gx.permute(&[2, 0, 3, 1]).expect("gpu"),
            &cx.permute(&[2, 0, 3, 1]).expect("cpu"),
            dtype,
            0.0,
        );
        assert_close(
            "cat",
            &Tensor::cat(&[&gx, &gy], 1).expect("gpu"),
            &Tensor::cat(&[&cx, &cy], 1).expect("cpu"),
            dtype,
            0.0,
        );
        assert_close(
            "narrow",
            &gx.narrow(2, 2, 4).expect("gpu"),
            &cx.narrow(2, 2, 4).expect("cpu"),
            dtype,
            0.0,
        );
        let idx = [4, 0, 4, 2];
        assert_close(
            "index_select",
            &gx.index_select(1, &idx).expect("gpu"),
            &cx.index_select(1, &idx).expect("cpu"),
            dtype,
            0.0,
        );
        assert_close(
            "sum",
            &gx.sum(&[1, 3], true).expect("gpu"),
            &cx.sum(&[1, 3], true).expect("cpu"),
            dtype,
            4.0,
        );
        assert_close(
            "upsample",
            &gx.upsample_nearest2d(2, 3).expect("gpu"),
            &cx.upsample_nearest2d(2, 3).expect("cpu"),
            dtype,
            0.0,
        );
        for mode in [ResizeMode::Bilinear, ResizeMode::Bicubic] {
            for align in [false, true] {
                let want = cx.resize2d(13, 5, mode, align).expect("cpu");
                let got = gx.resize2d(13, 5, mode, align).expect("gpu");
                assert_close(&format!("resize {mode:?} {align}"), &got, &want, dtype, 2.0);
            }
        }
    }
}

#[test]
fn conv_transpose2d_matches_the_cpu() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("conv_transpose2d");
    for dtype in DTYPES {
        for (xs, ws, stride, padding) in CONV_TRANSPOSE_CASES {
            let (cx, gx) = random(&mut rng, xs, dtype, 1.0);
            let (cw, gw) = random(&mut rng, ws, dtype, 1.0);
            let (cb, gb) = random(&mut rng, &[ws[1]], dtype, 1.0);
            for bias in [false, true] {
                let (cb, gb) = if bias {
                    (Some(&cb), Some(&gb))
                } else {
                    (None, None)
                };
                let want = cx.conv_transpose2d(&cw, cb, stride, padding).expect("cpu");
                let got = gx.conv_transpose2d(&gw, gb, stride, padding).expect("gpu");
                assert_close(
                    &format!("conv_transpose2d {xs:?} {ws:?} s{stride} p{padding} bias={bias}"),
                    &got,
                    &want,
                    dtype,
                    8.0,
                );
            }
        }
    }
}

#[test]
fn grid_sample_matches_the_cpu() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("grid_sample");
    for dtype in DTYPES {
        for (xs, gs) in GRID_SAMPLE_CASES {
            let (cx, gx) = random(&mut rng, xs, dtype, 1.0);
            let points = grid_points(&mut rng, gs.iter().product());
            // The grid in x's dtype, and in f32 (as RIFE builds it) for a half-precision x.
            let (cg, gg) = pair(points.clone(), gs, dtype);
            let (cg32, gg32) = pair(points, gs, DType::F32);
            for padding in [GridPadding::Zeros, GridPadding::Border] {
                for align in [false, true] {
                    let what = format!("grid_sample {xs:?} {padding:?} align={align}");
                    let want = cx.grid_sample(&cg, padding, align).expect("cpu");
                    let got = gx.grid_sample(&gg, padding, align).expect("gpu");
                    assert_close(&what, &got, &want, dtype, 2.0);
                    if dtype != DType::F32 {
                        let want = cx.grid_sample(&cg32, padding, align).expect("cpu");
                        let got = gx.grid_sample(&gg32, padding, align).expect("gpu");
                        assert_close(&format!("{what} f32 grid"), &got, &want, dtype, 2.0);
                    }
                }
            }
        }
    }
}

#[test]
fn max_pool2d_matches_the_cpu() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("max_pool2d");
    for dtype in DTYPES {
        for shape in MAX_POOL_SHAPES {
            // Mostly negative values: a padding read as 0 instead of −∞ would win.
            let data = rng.vec(shape.iter().product(), 1.0);
            let (cx, gx) = pair(data.iter().map(|v| v - 1.5).collect(), shape, dtype);
            for (k, s, p) in MAX_POOLS {
                assert_close(
                    &format!("max_pool2d {shape:?} k{k} s{s} p{p}"),
                    &gx.max_pool2d(k, s, p).expect("gpu"),
                    &cx.max_pool2d(k, s, p).expect("cpu"),
                    dtype,
                    0.0,
                );
            }
        }
        // A NaN wins its windows, as in the reference.
        let mut data = rng.vec(2 * 6 * 5, 1.0);
        data[17] = f32::NAN;
        let (cx, gx) = pair(data, &[2, 6, 5], dtype);
        let want = cx
            .max_pool2d(3, 1, 1)
            .and_then(|t| t.to_vec())
            .expect("cpu");
        let got = gx
            .max_pool2d(3, 1, 1)
            .and_then(|t| t.to_vec())
            .expect("gpu");
        assert_same_or_nan(&format!("max_pool2d NaN ({dtype})"), &got, &want);
    }
}

#[test]
fn prelu_matches_the_cpu() {
    let Some(_gpu) = gpu() else { return };
    let mut rng = Rng::new("prelu");
    for dtype in DTYPES {
        for (shape, slopes) in PRELU_CASES {
            let (cx, gx) = random(&mut rng, shape, dtype, 2.0);
            let (cw, gw) = random(&mut rng, &[slopes], dtype, 1.0);
            let want = cx.prelu(&cw).expect("cpu");
            let what = format!("prelu {shape:?} slopes {slopes}");
            assert_close(&what, &gx.prelu(&gw).expect("gpu"), &want, dtype, 1.0);
            // Slopes of another dtype take the composition.
            let (_, gw32) = pair(cw.to_vec().expect("slopes"), &[slopes], DType::F32);
            let got = gx.prelu(&gw32).expect("gpu");
            assert_close(&format!("{what} f32 slopes"), &got, &want, dtype, 1.0);
        }
    }
}

#[test]
fn missing_device_ordinal_is_a_clean_error() {
    let Some(_gpu) = gpu() else { return };
    let err = Tensor::zeros([2], Device::Cuda(4096)).expect_err("ordinal 4096 does not exist");
    assert!(err.to_string().contains("cuda:4096"), "{err}");
}
