//! The CUDA kernels executed on the CPU by `kernels-cu/emulator`, against the CPU reference
//! backend: every thread of every block runs the kernel's own source, with CUDA's barriers,
//! warp shuffles, cp.async and the tensor-core instructions (ldmatrix, mma.sync) emulated
//! from their PTX definitions. This checks the kernels' logic on any machine with a C++
//! compiler; it does not replace tier C (gpu_ops.rs), which runs them on a GPU through the
//! backend's own launch code.
//!
//! Each case runs under both emulator schedules, on fresh random inputs and odd sizes, with
//! outputs poisoned (NaN) and guarded against writes outside them. Launch geometry here
//! mirrors sonic-kernels/src/cuda. The seed is printed and can be fixed with
//! `SONIC_TEST_SEED`.

mod emulator;
mod support;

use emulator::{Args, Buffer, Config, Module, Schedule, SCHEDULES};
use half::{bf16, f16};
use sonic_core::backend::ConvParams;
use sonic_core::{DType, Device, Tensor};
use sonic_kernels::registry::ATTENTION_HEAD_DIMS;
use sonic_kernels::{variants, Kernel, Variant};
use support::{tolerance, Rng};

/// Shared memory per block the launchers may opt into on an H100 (227 KiB).
const MAX_SMEM: usize = 227 * 1024;

/// `n` values already representable in `dtype`, so kernel and reference see the same input.
fn values(rng: &mut Rng, n: usize, scale: f32, dtype: DType) -> Vec<f32> {
    rng.vec(n, scale)
        .into_iter()
        .map(|x| round_to(dtype, x))
        .collect()
}

fn round_to(dtype: DType, x: f32) -> f32 {
    match dtype {
        DType::F32 => x,
        DType::F16 => f16::from_f32(x).to_f32(),
        DType::BF16 => bf16::from_f32(x).to_f32(),
    }
}

fn cpu(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape.to_vec(), Device::Cpu).expect("cpu tensor")
}

fn module(kernel: Kernel, dtype: DType, head_dim: Option<usize>) -> Option<std::sync::Arc<Module>> {
    Module::get(Variant {
        kernel,
        dtype,
        head_dim,
    })
}

#[track_caller]
fn check(what: &str, got: &Buffer, want: &Tensor, loose: f32) {
    let dtype = got.dtype;
    let got = got.to_f32();
    let want = want.to_vec().expect("reference");
    assert_eq!(got.len(), want.len(), "{what}: length");
    let tol = tolerance(dtype, loose);
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what} ({dtype}): element {i} is {g}, expected {w} (tolerance {tol})"
        );
    }
}

#[track_caller]
fn run(module: &Module, entry: &str, cfg: Config, schedule: Schedule, args: Args) {
    let mut args = args;
    if let Err(why) = module.launch(entry, cfg, schedule, &mut args) {
        panic!("{why}");
    }
}

#[test]
fn every_variant_builds_for_the_emulator() {
    let all = variants();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for part in all.chunks(all.len().div_ceil(workers)) {
            s.spawn(move || {
                for &v in part {
                    if Module::get(v).is_none() {
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn flash_attention() {
    let mut rng = Rng::new("flash_attention");
    let (b, heads) = (2, 2);
    for dtype in [DType::F16, DType::BF16] {
        for &d in ATTENTION_HEAD_DIMS {
            let Some(m) = module(Kernel::FlashAttention, dtype, Some(d)) else {
                return;
            };
            // A partial query block and a partial last key tile; one short query block
            // against a single exact tile; a last tile with one real key among 63 masked.
            for (lq, lk) in [(67, 131), (5, 64), (3, 65)] {
                let width = heads * d;
                let q = values(&mut rng, b * lq * width, 1.0, dtype);
                let k = values(&mut rng, b * lk * width, 1.0, dtype);
                let v = values(&mut rng, b * lk * width, 1.0, dtype);
                let scale = 1.0 / (d as f32).sqrt();
                let want = Tensor::attention(
                    &cpu(&q, &[b, lq, width]),
                    &cpu(&k, &[b, lk, width]),
                    &cpu(&v, &[b, lk, width]),
                    heads,
                    scale,
                )
                .expect("cpu attention");
                let cfg = Config {
                    grid: [lq.div_ceil(64) as u32, (b * heads) as u32, 1],
                    block: [128, 1, 1],
                    shared_bytes: 5 * 64 * d.div_ceil(64) * 64 * 2,
                };
                for schedule in SCHEDULES {
                    let (qb, kb, vb) = (
                        Buffer::from_f32(&q, dtype),
                        Buffer::from_f32(&k, dtype),
                        Buffer::from_f32(&v, dtype),
                    );
                    let o = Buffer::poisoned(b * lq * width, dtype);
                    let strides = [lq * width, width, lk * width, width, lq * width, width];
                    let mut args = Args::new()
                        .buf(&qb)
                        .buf(&kb)
                        .buf(&vb)
                        .buf(&o)
                        .i32(heads as i32)
                        .i32(lq as i32)
                        .i32(lk as i32);
                    for s in strides {
                        args = args.i64(s as i64);
                    }
                    let args = args.f32(scale * std::f32::consts::LOG2_E);
                    run(&m, "flash_attention_fwd", cfg, schedule, args);
                    // Tight: one unmasked padding key shifts the result by ~1/lk.
                    check(
                        &format!("flash d={d} lq={lq} lk={lk} {schedule:?}"),
                        &o,
                        &want,
                        1.5,
                    );
                    for buf in [&qb, &kb, &vb] {
                        buf.assert_guards();
                    }
                }
            }
        }
    }
}

#[test]
fn temporal_attention_on_the_spatial_layout() {
    let mut rng = Rng::new("temporal_attention");
    // Sequences are (image, pixel): frames `hw·width` apart, as in SVD's temporal layers.
    let (b, heads, hw) = (2, 2, 3);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for &d in ATTENTION_HEAD_DIMS {
            let Some(m) = module(Kernel::TemporalAttention, dtype, Some(d)) else {
                return;
            };
            for frames in [25, 7] {
                let width = heads * d;
                let shape = [b * frames, hw, width];
                let n = b * frames * hw * width;
                let (q, k, v) = (
                    values(&mut rng, n, 1.0, dtype),
                    values(&mut rng, n, 1.0, dtype),
                    values(&mut rng, n, 1.0, dtype),
                );
                let to_seq = |t: &[f32]| {
                    cpu(t, &shape)
                        .reshape([b, frames, hw, width])
                        .and_then(|t| t.permute(&[0, 2, 1, 3]))
                        .and_then(|t| t.reshape([b * hw, frames, width]))
                        .expect("permute")
                };
                let scale = 1.0 / (d as f32).sqrt();
                let want = Tensor::attention(&to_seq(&q), &to_seq(&k), &to_seq(&v), heads, scale)
                    .and_then(|t| t.reshape([b, hw, frames, width]))
                    .and_then(|t| t.permute(&[0, 2, 1, 3]))
                    .and_then(|t| t.reshape(shape.to_vec()))
                    .expect("cpu attention");
                // attention.rs: warps per block as shared memory allows, at most 4.
                let pairs = d / 2;
                let pair_bytes = 2 * dtype.size_in_bytes();
                let per_warp = (32 * (pairs + 1) + 2 * frames * pairs) * pair_bytes;
                let warps = (MAX_SMEM / per_warp).clamp(1, 4);
                let sequences = b * hw;
                let cfg = Config::linear(
                    (sequences * heads).div_ceil(warps) as u32,
                    32 * warps as u32,
                    warps * per_warp,
                );
                let strides = [
                    (frames * hw * width) as i64,
                    width as i64,
                    (hw * width) as i64,
                ];
                for schedule in SCHEDULES {
                    let (qb, kb, vb) = (
                        Buffer::from_f32(&q, dtype),
                        Buffer::from_f32(&k, dtype),
                        Buffer::from_f32(&v, dtype),
                    );
                    let o = Buffer::poisoned(n, dtype);
                    let args = Args::new()
                        .buf(&qb)
                        .buf(&kb)
                        .buf(&vb)
                        .buf(&o)
                        .i32(sequences as i32)
                        .i32(hw as i32)
                        .i32(heads as i32)
                        .i32(frames as i32)
                        .i32(frames as i32)
                        .longs(strides)
                        .longs(strides)
                        .f32(scale * std::f32::consts::LOG2_E);
                    run(&m, "temporal_attention", cfg, schedule, args);
                    check(
                        &format!("temporal d={d} frames={frames} {schedule:?}"),
                        &o,
                        &want,
                        4.0,
                    );
                }
            }
        }
    }
}

/// `struct GroupShape` of group_norm.cu: channels, groups, hw, residual_inner.
fn group_shape(channels: usize, groups: usize, hw: usize, residual_inner: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend((channels as i32).to_ne_bytes());
    bytes.extend((groups as i32).to_ne_bytes());
    bytes.extend((hw as i64).to_ne_bytes());
    bytes.extend((residual_inner as i64).to_ne_bytes());
    bytes
}

#[test]
fn group_norm_fused_and_split() {
    let mut rng = Rng::new("group_norm");
    let eps = 1e-5;
    // [n, c, h, w], groups: a group that fits shared memory (fused), and one of 9 800
    // elements, above the split path's 8 192-element chunk.
    let cases: [([usize; 4], usize, bool); 2] =
        [([2, 12, 5, 7], 4, false), ([1, 4, 70, 70], 2, true)];
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let Some(m) = module(Kernel::GroupNorm, dtype, None) else {
            return;
        };
        for (shape, groups, split) in cases {
            let [n, c, h, w] = shape;
            let hw = h * w;
            let total = n * c * hw;
            let x = values(&mut rng, total, 2.0, dtype);
            let weight = values(&mut rng, c, 1.0, dtype);
            let bias = values(&mut rng, c, 1.0, dtype);
            let full = values(&mut rng, total, 2.0, dtype);
            let per_channel = values(&mut rng, n * c, 2.0, dtype);
            // (residual, its shape, elements per residual value)
            let residuals = [
                (None, vec![], 1),
                (Some(&full), shape.to_vec(), 1),
                (Some(&per_channel), vec![n, c, 1, 1], hw),
            ];
            for (residual, rshape, inner) in residuals {
                for silu in [false, true] {
                    let mut sum = cpu(&x, &shape);
                    if let Some(r) = residual {
                        sum = sum.add(&cpu(r, &rshape)).expect("residual add");
                    }
                    let (wt, bt) = (cpu(&weight, &[c]), cpu(&bias, &[c]));
                    let want = if silu {
                        sum.group_norm_silu(groups, Some(&wt), Some(&bt), eps)
                    } else {
                        sum.group_norm(groups, Some(&wt), Some(&bt), eps)
                    }
                    .expect("cpu group norm");
                    let what = format!(
                        "group_norm {shape:?} residual={} silu={silu}",
                        residual.map_or("none".to_owned(), |_| format!("{rshape:?}"))
                    );
                    for schedule in SCHEDULES {
                        let xb = Buffer::from_f32(&x, dtype);
                        let rb = residual.map(|r| Buffer::from_f32(r, dtype));
                        let (wb, bb) = (
                            Buffer::from_f32(&weight, dtype),
                            Buffer::from_f32(&bias, dtype),
                        );
                        let y = Buffer::poisoned(total, dtype);
                        let gs = group_shape(c, groups, hw, inner);
                        let len = c / groups * hw;
                        if !split {
                            let cfg = Config::linear((n * groups) as u32, 1024, len * 4);
                            let args = Args::new()
                                .buf(&xb)
                                .opt(rb.as_ref())
                                .buf(&wb)
                                .buf(&bb)
                                .buf(&y)
                                .bytes(gs)
                                .f32(eps)
                                .i32(silu as i32);
                            run(&m, "group_norm_fused", cfg, schedule, args);
                        } else {
                            const CHUNK: usize = 8192;
                            let chunks = len.div_ceil(CHUNK);
                            let stats = Buffer::poisoned(n * groups * chunks * 2, DType::F32);
                            let cfg = Config {
                                grid: [chunks as u32, (n * groups) as u32, 1],
                                block: [512, 1, 1],
                                shared_bytes: CHUNK * 4,
                            };
                            let args = Args::new()
                                .buf(&xb)
                                .opt(rb.as_ref())
                                .buf(&stats)
                                .bytes(gs.clone())
                                .i64(CHUNK as i64);
                            run(&m, "group_norm_partial", cfg, schedule, args);
                            let cfg = Config {
                                shared_bytes: 0,
                                ..cfg
                            };
                            let args = Args::new()
                                .buf(&xb)
                                .opt(rb.as_ref())
                                .buf(&stats)
                                .buf(&wb)
                                .buf(&bb)
                                .buf(&y)
                                .bytes(gs)
                                .i64(CHUNK as i64)
                                .f32(eps)
                                .i32(silu as i32);
                            run(&m, "group_norm_apply", cfg, schedule, args);
                            stats.assert_guards();
                        }
                        check(&format!("{what} {schedule:?}"), &y, &want, 4.0);
                    }
                }
            }
        }
    }
}

/// One convolution case: input dims, weight dims, parameters.
struct ConvCase {
    x: Vec<usize>,
    w: Vec<usize>,
    params: ConvParams,
}

/// `struct ConvGeometry` of conv.cuh with 1d/2d padded to three spatial dims.
fn conv_geometry(case: &ConvCase, out: &[usize]) -> [i32; 19] {
    let spatial = case.x.len() - 2;
    let lead = 3 - spatial;
    let pick = |v: &[usize], fill: usize| -> [i32; 3] {
        std::array::from_fn(|i| if i < lead { fill } else { v[i - lead] } as i32)
    };
    let parts = [
        pick(&case.x[2..], 1),
        pick(&case.w[2..], 1),
        pick(&case.params.stride, 1),
        pick(&case.params.padding, 0),
        pick(&case.params.dilation, 1),
        pick(out, 1),
    ];
    let mut g = [0i32; 19];
    g[0] = case.x[1] as i32;
    for (i, p) in parts.iter().enumerate() {
        g[1 + 3 * i..4 + 3 * i].copy_from_slice(p);
    }
    g
}

#[test]
fn implicit_gemm_convolution() {
    let mut rng = Rng::new("conv_implicit_gemm");
    let cases = [
        // K = 45 (element-wise weight loads), padding on both sides, two images.
        ConvCase {
            x: vec![2, 5, 9, 11],
            w: vec![37, 5, 3, 3],
            params: ConvParams::uniform(2, 1, 1),
        },
        // K = 144 (cp.async weight rows), two M tiles of the half kernel, stride 2,
        // dilation 2 on one axis.
        ConvCase {
            x: vec![1, 16, 13, 7],
            w: vec![130, 16, 3, 3],
            params: ConvParams {
                stride: vec![2, 1],
                padding: vec![1, 2],
                dilation: vec![1, 2],
            },
        },
        // 3-d: the temporal convolutions (kernel 3 × 1 × 1, padding on depth only).
        ConvCase {
            x: vec![1, 8, 5, 6, 7],
            w: vec![6, 8, 3, 1, 1],
            params: ConvParams {
                stride: vec![1, 1, 1],
                padding: vec![1, 0, 0],
                dilation: vec![1, 1, 1],
            },
        },
        // 1-d.
        ConvCase {
            x: vec![3, 4, 29],
            w: vec![9, 4, 5],
            params: ConvParams::uniform(1, 2, 2),
        },
    ];
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let Some(m) = module(Kernel::ConvImplicitGemm, dtype, None) else {
            return;
        };
        for case in &cases {
            let x = values(&mut rng, case.x.iter().product(), 1.0, dtype);
            let w = values(&mut rng, case.w.iter().product(), 1.0, dtype);
            let bias = values(&mut rng, case.w[0], 1.0, dtype);
            let want = cpu(&x, &case.x)
                .conv(
                    &cpu(&w, &case.w),
                    Some(&cpu(&bias, &[case.w[0]])),
                    &case.params,
                )
                .expect("cpu conv");
            let out_dims = &want.dims()[2..];
            let g = conv_geometry(case, out_dims);
            let images = case.x[0];
            let out_channels = case.w[0];
            let positions: usize = out_dims.iter().product();
            let taps: usize = case.w[1..].iter().product();
            let k_padded = taps.div_ceil(32) * 32;
            let (bm, bn) = if dtype == DType::F32 {
                (64, 64)
            } else {
                (128, 128)
            };
            let columns = images * positions;
            let entry = if case.x.len() == 5 {
                "conv_implicit_gemm_3d"
            } else {
                "conv_implicit_gemm"
            };
            for schedule in SCHEDULES {
                let table = Buffer::poisoned(k_padded * 4, DType::F32);
                let args = Args::new()
                    .buf(&table)
                    .ints(g)
                    .i32(taps as i32)
                    .i32(k_padded as i32);
                let cfg = Config::linear(k_padded.div_ceil(256) as u32, 256, 0);
                run(&m, "conv_gather_table", cfg, schedule, args);
                let (xb, wb, bb) = (
                    Buffer::from_f32(&x, dtype),
                    Buffer::from_f32(&w, dtype),
                    Buffer::from_f32(&bias, dtype),
                );
                let y = Buffer::poisoned(want.elem_count(), dtype);
                let blocks = out_channels.div_ceil(bm) * columns.div_ceil(bn);
                let args = Args::new()
                    .buf(&xb)
                    .buf(&wb)
                    .buf(&bb)
                    .buf(&y)
                    .buf(&table)
                    .ints(g)
                    .i32(out_channels as i32)
                    .i32(columns as i32);
                run(
                    &m,
                    entry,
                    Config::linear(blocks as u32, 256, 0),
                    schedule,
                    args,
                );
                check(&format!("conv {:?} {schedule:?}", case.x), &y, &want, 8.0);
                table.assert_guards();
            }
        }
    }
}

/// The emulator's own checks: launches CUDA would refuse, and warp collectives in a warp
/// with missing lanes (undefined on the device) are reported, not run.
#[test]
fn emulator_refuses_what_the_device_would_not_run() {
    let Some(m) = module(Kernel::Softmax, DType::F32, None) else {
        return;
    };
    let width = 40;
    let x = Buffer::from_f32(&vec![0.5; width], DType::F32);
    let y = Buffer::poisoned(width, DType::F32);
    let args = || Args::new().buf(&x).buf(&y).i32(width as i32);
    let err = m
        .launch(
            "softmax_rows",
            Config::linear(1, 2048, 0),
            Schedule::Forward,
            &mut args(),
        )
        .expect_err("a 2048-thread block");
    assert!(err.contains("block of 2048 threads"), "{err}");
    let err = m
        .launch(
            "softmax_rows",
            Config::linear(1, 48, 0),
            Schedule::Forward,
            &mut args(),
        )
        .expect_err("a ragged last warp");
    assert!(err.contains("__shfl_xor_sync in a warp of 16"), "{err}");
    // The same kernel at a whole number of warps runs and writes every element.
    run(
        &m,
        "softmax_rows",
        Config::linear(1, 64, 0),
        Schedule::Reverse,
        args(),
    );
    assert!(y
        .to_f32()
        .iter()
        .all(|&v| (v - 1.0 / width as f32).abs() < 1e-6));
}
