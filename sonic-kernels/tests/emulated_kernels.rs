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
use sonic_core::backend::{BinaryOp, ConvParams, GridPadding, ResizeMode};
use sonic_core::{DType, Device, Tensor};
use sonic_kernels::registry::ATTENTION_HEAD_DIMS;
use sonic_kernels::{variants, Kernel, Variant};
use support::{
    assert_same_or_nan, grid_points, positive_domain, tolerance, Rng, CONV_TRANSPOSE_CASES,
    GRID_SAMPLE_CASES, MAX_POOLS, MAX_POOL_SHAPES, PRELU_CASES, UNARY_OPS,
};

/// Shared memory per block the launchers may opt into on an H100 (227 KiB).
const MAX_SMEM: usize = 227 * 1024;

const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

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
    for dtype in DTYPES {
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
    for dtype in DTYPES {
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
    for dtype in DTYPES {
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

/// `launch::elementwise` of sonic-kernels/src/cuda/launch.rs: a grid-stride launch of
/// 256-thread blocks over `n` elements.
fn elementwise(n: usize) -> Config {
    Config::linear(n.div_ceil(256).clamp(1, 1 << 20) as u32, 256, 0)
}

/// `launch::per_row`: one 256-thread block per row (LayerNorm, softmax).
fn per_row(rows: usize) -> Config {
    Config::linear(rows.max(1) as u32, 256, 0)
}

/// Runs `launch` under each schedule into a fresh poisoned output of `want`'s size and
/// checks it against `want`.
#[track_caller]
fn each_schedule(
    what: &str,
    dtype: DType,
    want: &Tensor,
    loose: f32,
    launch: impl Fn(Schedule, &Buffer),
) {
    for schedule in SCHEDULES {
        let y = Buffer::poisoned(want.elem_count(), dtype);
        launch(schedule, &y);
        check(&format!("{what} {schedule:?}"), &y, want, loose);
    }
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// `MAX_RANK` of elementwise.cu and layout.cu.
const MAX_RANK: usize = 8;

/// `v` as one of the `MAX_RANK` arrays of the kernels' shape structs, zero-filled.
fn rank_array(v: &[usize]) -> [i64; MAX_RANK] {
    std::array::from_fn(|i| v.get(i).map_or(0, |&d| d as i64))
}

/// `struct Broadcast` (elementwise.cu) or `struct Permutation` (layout.cu): an int rank,
/// four bytes of padding, then `MAX_RANK` i64 per array.
fn rank_struct(rank: usize, arrays: &[[i64; MAX_RANK]]) -> Vec<u8> {
    let mut bytes = (rank as i32).to_ne_bytes().to_vec();
    bytes.extend([0; 4]);
    for array in arrays {
        bytes.extend(array.iter().flat_map(|w| w.to_ne_bytes()));
    }
    bytes
}

/// ops.rs `broadcast_strides`: the strides of `operand` over `out`, 0 on broadcast axes.
fn broadcast_strides(operand: &[usize], out: &[usize]) -> [i64; MAX_RANK] {
    let lead = out.len() - operand.len();
    let own = strides(operand);
    let mut result = [0; MAX_RANK];
    for (i, (&d, &s)) in operand.iter().zip(&own).enumerate() {
        result[lead + i] = if d == 1 { 0 } else { s as i64 };
    }
    result
}

#[test]
fn norms_softmax_geglu() {
    let mut rng = Rng::new("norms_softmax_geglu");
    let eps = 1e-5;
    for dtype in DTYPES {
        let (Some(softmax), Some(layer_norm), Some(geglu)) = (
            module(Kernel::Softmax, dtype, None),
            module(Kernel::LayerNorm, dtype, None),
            module(Kernel::Geglu, dtype, None),
        ) else {
            return;
        };
        // Rows narrower than the block, and rows each thread visits twice.
        for shape in [[5usize, 3, 37], [1, 3, 301]] {
            let width = shape[2];
            let rows = shape[0] * shape[1];
            let x = values(&mut rng, rows * width, 4.0, dtype);
            let want = cpu(&x, &shape).softmax_last().expect("cpu softmax");
            // attention.rs `softmax_rows`: one block per row.
            each_schedule(
                &format!("softmax {shape:?}"),
                dtype,
                &want,
                2.0,
                |schedule, y| {
                    let xb = Buffer::from_f32(&x, dtype);
                    let args = Args::new().buf(&xb).buf(y).i32(width as i32);
                    run(&softmax, "softmax_rows", per_row(rows), schedule, args);
                },
            );
            let weight = values(&mut rng, width, 1.0, dtype);
            let bias = values(&mut rng, width, 1.0, dtype);
            for (w, b) in [
                (Some(&weight), Some(&bias)),
                (None, None),
                (Some(&weight), None),
                (None, Some(&bias)),
            ] {
                let vector = |v: Option<&Vec<f32>>| v.map(|v| cpu(v, &[width]));
                let want = cpu(&x, &shape)
                    .layer_norm(vector(w).as_ref(), vector(b).as_ref(), eps)
                    .expect("cpu layer norm");
                let what = format!(
                    "layer_norm {shape:?} weight={} bias={}",
                    w.is_some(),
                    b.is_some()
                );
                // ops.rs `layer_norm`: one block per row, null weight or bias when absent.
                each_schedule(&what, dtype, &want, 4.0, |schedule, y| {
                    let xb = Buffer::from_f32(&x, dtype);
                    let wb = w.map(|w| Buffer::from_f32(w, dtype));
                    let bb = b.map(|b| Buffer::from_f32(b, dtype));
                    let args = Args::new()
                        .buf(&xb)
                        .opt(wb.as_ref())
                        .opt(bb.as_ref())
                        .buf(y)
                        .i32(width as i32)
                        .f32(eps);
                    run(&layer_norm, "layer_norm", per_row(rows), schedule, args);
                });
            }
        }
        for shape in [&[7usize, 2 * 45][..], &[2, 3, 2 * 19]] {
            let x = values(&mut rng, shape.iter().product(), 2.0, dtype);
            let want = cpu(&x, shape).geglu().expect("cpu geglu");
            let half = shape[shape.len() - 1] / 2;
            let total = want.elem_count();
            // ops.rs `geglu`: one thread per output element.
            each_schedule(
                &format!("geglu {shape:?}"),
                dtype,
                &want,
                2.0,
                |schedule, y| {
                    let xb = Buffer::from_f32(&x, dtype);
                    let args = Args::new()
                        .buf(&xb)
                        .buf(y)
                        .i64(half as i64)
                        .i64(total as i64);
                    run(&geglu, "geglu", elementwise(total), schedule, args);
                },
            );
        }
    }
}

#[test]
fn single_key_attention() {
    let mut rng = Rng::new("single_key_attention");
    // A value head narrower than the query's, as the reference allows.
    let (b, lq, heads, d, dv) = (2, 33, 3, 32, 24);
    for dtype in DTYPES {
        let Some(m) = module(Kernel::SingleKeyAttention, dtype, None) else {
            return;
        };
        let q = values(&mut rng, b * lq * heads * d, 1.0, dtype);
        let k = values(&mut rng, b * heads * d, 1.0, dtype);
        let v = values(&mut rng, b * heads * dv, 1.0, dtype);
        let want = Tensor::attention(
            &cpu(&q, &[b, lq, heads * d]),
            &cpu(&k, &[b, 1, heads * d]),
            &cpu(&v, &[b, 1, heads * dv]),
            heads,
            0.1,
        )
        .expect("cpu attention");
        let (width, total) = (heads * dv, want.elem_count());
        // attention.rs `single_key`: one thread per output element.
        each_schedule("single key attention", dtype, &want, 0.0, |schedule, y| {
            let vb = Buffer::from_f32(&v, dtype);
            let args = Args::new()
                .buf(&vb)
                .buf(y)
                .i32(lq as i32)
                .i64(width as i64)
                .i64(total as i64);
            run(
                &m,
                "single_key_attention",
                elementwise(total),
                schedule,
                args,
            );
        });
    }
}

/// sonic-core's `BinaryOp` in declaration order, likewise.
const BINARY_OPS: [BinaryOp; 6] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
];

#[test]
fn elementwise_ops() {
    let mut rng = Rng::new("elementwise");
    let n = 301;
    for dtype in DTYPES {
        let Some(m) = module(Kernel::Elementwise, dtype, None) else {
            return;
        };
        let x = values(&mut rng, n, 3.0, dtype);
        // Positive inputs for the ops with a restricted domain.
        let positive: Vec<f32> = values(&mut rng, n, 1.0, dtype)
            .into_iter()
            .map(|v| round_to(dtype, v.abs() + 0.1))
            .collect();
        for (code, op) in UNARY_OPS.into_iter().enumerate() {
            let input = if positive_domain(op) { &positive } else { &x };
            let want = cpu(input, &[n]).unary(op).expect("cpu unary");
            // ops.rs `launch_unary_like`: (x, y, n, op code).
            each_schedule(
                &format!("unary {op:?}"),
                dtype,
                &want,
                1.0,
                |schedule, y| {
                    let xb = Buffer::from_f32(input, dtype);
                    let args = Args::new().buf(&xb).buf(y).i64(n as i64).i32(code as i32);
                    run(&m, "unary", elementwise(n), schedule, args);
                },
            );
        }
        let xt = cpu(&x, &[n]);
        for (entry, a, b, want) in [
            ("affine", 1.5, -0.25, xt.affine(1.5, -0.25)),
            ("clamp", -0.4, 0.7, xt.clamp(-0.4, 0.7)),
        ] {
            let want = want.expect("cpu");
            // ops.rs `launch_unary_like`: (x, y, n, mul, add) or (x, y, n, min, max).
            each_schedule(entry, dtype, &want, 1.0, |schedule, y| {
                let xb = Buffer::from_f32(&x, dtype);
                let args = Args::new().buf(&xb).buf(y).i64(n as i64).f32(a).f32(b);
                run(&m, entry, elementwise(n), schedule, args);
            });
        }

        for (shape, slopes) in PRELU_CASES {
            let total = shape.iter().product();
            let x = values(&mut rng, total, 2.0, dtype);
            let w = values(&mut rng, slopes, 1.0, dtype);
            let want = cpu(&x, shape)
                .prelu(&cpu(&w, &[slopes]))
                .expect("cpu prelu");
            // ops.rs `prelu`: one slope for every element, or one per channel of axis 1.
            let channels = if slopes == 1 { 1 } else { shape[1] };
            let inner = shape.iter().skip(2).product::<usize>().max(1);
            let what = format!("prelu {shape:?} slopes {slopes}");
            each_schedule(&what, dtype, &want, 1.0, |schedule, y| {
                let (xb, wb) = (Buffer::from_f32(&x, dtype), Buffer::from_f32(&w, dtype));
                let args = Args::new()
                    .buf(&xb)
                    .buf(&wb)
                    .buf(y)
                    .i64(total as i64)
                    .i64(inner as i64)
                    .i32(channels as i32);
                run(&m, "prelu", elementwise(total), schedule, args);
            });
        }

        // (a, b): both broadcasting across ranks, a lower rank against a wider one, equal
        // shapes, one value against a vector.
        let cases: [(&[usize], &[usize]); 4] = [
            (&[3, 1, 5, 7], &[4, 1, 7]),
            (&[6, 1], &[2, 1, 5]),
            (&[2, 3, 5], &[2, 3, 5]),
            (&[13], &[1]),
        ];
        for (ashape, bshape) in cases {
            let a = values(&mut rng, ashape.iter().product(), 2.0, dtype);
            // Away from zero, for Div.
            let b: Vec<f32> = values(&mut rng, bshape.iter().product(), 2.0, dtype)
                .into_iter()
                .map(|v| round_to(dtype, v + 0.25f32.copysign(v)))
                .collect();
            for (code, op) in BINARY_OPS.into_iter().enumerate() {
                let want = cpu(&a, ashape)
                    .binary(&cpu(&b, bshape), op)
                    .expect("cpu binary");
                // ops.rs `binary`: the output shape and each operand's strides over it.
                let out = want.dims();
                let shape = rank_struct(
                    out.len(),
                    &[
                        rank_array(out),
                        broadcast_strides(ashape, out),
                        broadcast_strides(bshape, out),
                    ],
                );
                let total = want.elem_count();
                let what = format!("binary {op:?} {ashape:?} {bshape:?}");
                each_schedule(&what, dtype, &want, 1.0, |schedule, y| {
                    let (ab, bb) = (Buffer::from_f32(&a, dtype), Buffer::from_f32(&b, dtype));
                    let args = Args::new()
                        .buf(&ab)
                        .buf(&bb)
                        .buf(y)
                        .i64(total as i64)
                        .i32(code as i32)
                        .bytes(shape.clone());
                    run(&m, "binary_broadcast", elementwise(total), schedule, args);
                });
            }
        }

        // Conversions round exactly as the CPU does, subnormal halves included.
        let mut x = values(&mut rng, 150, 1000.0, dtype);
        x.extend(values(&mut rng, 151, 1e-4, dtype));
        for target in DTYPES {
            let entry = match target {
                DType::F32 => "convert_to_f32",
                DType::F16 => "convert_to_f16",
                DType::BF16 => "convert_to_bf16",
            };
            let want = cpu(&x, &[x.len()]).to_dtype(target).expect("cpu convert");
            // ops.rs `to_dtype`: the module of the source dtype, (x, y, n).
            each_schedule(entry, target, &want, 0.0, |schedule, y| {
                let xb = Buffer::from_f32(&x, dtype);
                let args = Args::new().buf(&xb).buf(y).i64(x.len() as i64);
                run(&m, entry, elementwise(x.len()), schedule, args);
            });
        }
    }
}

/// ops.rs `copy_rows`: `y[r·dst_pitch + dst_offset + c] = x[r·src_pitch + src_offset + c]`,
/// with `rows, width, src_pitch, src_offset, dst_pitch, dst_offset` in `ints`.
fn copy_rows(m: &Module, schedule: Schedule, x: &Buffer, y: &Buffer, ints: [usize; 6]) {
    let args = Args::new().buf(x).buf(y).i64s(ints.map(|v| v as i64));
    run(
        m,
        "copy_rows",
        elementwise(ints[0] * ints[1]),
        schedule,
        args,
    );
}

/// Output positions per im2col tile. conv.rs tiles by 2¹⁴; a smaller tile gives these
/// cases tiles at p0 > 0 and a partial last one.
const IM2COL_TILE: usize = 24;

#[test]
fn layout_ops() {
    let mut rng = Rng::new("layout");
    let shape = [3usize, 5, 7, 4];
    let total: usize = shape.iter().product();
    for dtype in DTYPES {
        let Some(m) = module(Kernel::Layout, dtype, None) else {
            return;
        };
        let x = values(&mut rng, total, 1.0, dtype);
        let xt = cpu(&x, &shape);

        let cases: [(&[usize], &[usize]); 3] = [
            (&shape, &[2, 0, 3, 1]),
            (&shape, &[0, 1, 3, 2]),
            (&[3, 5, 7, 2, 2], &[4, 2, 0, 3, 1]),
        ];
        for (dims, order) in cases {
            let want = xt
                .reshape(dims)
                .and_then(|t| t.permute(order))
                .expect("cpu permute");
            // ops.rs `permute`: per output axis, its size and the stride of the input axis.
            let own = strides(dims);
            let source: Vec<usize> = order.iter().map(|&d| own[d]).collect();
            let p = rank_struct(order.len(), &[rank_array(want.dims()), rank_array(&source)]);
            let what = format!("permute {dims:?} {order:?}");
            each_schedule(&what, dtype, &want, 0.0, |schedule, y| {
                let xb = Buffer::from_f32(&x, dtype);
                let args = Args::new()
                    .buf(&xb)
                    .buf(y)
                    .i64(total as i64)
                    .bytes(p.clone());
                run(&m, "permute", elementwise(total), schedule, args);
            });
        }

        for axis in [1, 3] {
            let mut other_shape = shape;
            other_shape[axis] = 2;
            let other = values(&mut rng, other_shape.iter().product(), 1.0, dtype);
            let want =
                Tensor::cat(&[&xt, &cpu(&other, &other_shape)], axis as isize).expect("cpu cat");
            // ops.rs `concat`: one copy_rows per input, at its offset within each row.
            let outer: usize = shape[..axis].iter().product();
            let pitch: usize = want.dims()[axis..].iter().product();
            each_schedule(
                &format!("cat axis {axis}"),
                dtype,
                &want,
                0.0,
                |schedule, y| {
                    let mut offset = 0;
                    for (data, dims) in [(&x, &shape), (&other, &other_shape)] {
                        let width = dims[axis..].iter().product();
                        let xb = Buffer::from_f32(data, dtype);
                        copy_rows(
                            &m,
                            schedule,
                            &xb,
                            y,
                            [outer, width, width, 0, pitch, offset],
                        );
                        offset += width;
                    }
                },
            );
        }
        for (axis, start, len) in [(2, 2, 4), (0, 1, 2), (3, 3, 1)] {
            let want = xt.narrow(axis as isize, start, len).expect("cpu narrow");
            // ops.rs `narrow`: one row of the kept range per outer index.
            let outer: usize = shape[..axis].iter().product();
            let inner: usize = shape[axis + 1..].iter().product();
            let width = len * inner;
            let src = (shape[axis] * inner, start * inner);
            let what = format!("narrow axis {axis} {start}+{len}");
            each_schedule(&what, dtype, &want, 0.0, |schedule, y| {
                let xb = Buffer::from_f32(&x, dtype);
                copy_rows(&m, schedule, &xb, y, [outer, width, src.0, src.1, width, 0]);
            });
        }

        for (axis, indices) in [
            (1, vec![4usize, 0, 4, 2]),
            (0, vec![2, 2]),
            (3, vec![3, 1, 0]),
        ] {
            let want = xt
                .index_select(axis as isize, &indices)
                .expect("cpu index_select");
            // ops.rs `index_select`: the indices as i64 on the device, then (outer, count,
            // size, inner).
            let index: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
            let outer: usize = shape[..axis].iter().product();
            let inner: usize = shape[axis + 1..].iter().product();
            let n = want.elem_count();
            let what = format!("index_select axis {axis} {indices:?}");
            each_schedule(&what, dtype, &want, 0.0, |schedule, y| {
                let (xb, ib) = (Buffer::from_f32(&x, dtype), Buffer::from_i64(&index));
                let args = Args::new()
                    .buf(&xb)
                    .buf(&ib)
                    .buf(y)
                    .i64s([outer, indices.len(), shape[axis], inner].map(|v| v as i64));
                run(&m, "index_select", elementwise(n), schedule, args);
                ib.assert_guards();
            });
        }

        for (dims, axes) in [(&shape[..], &[1usize, 3][..]), (&[6, 11], &[0])] {
            let data = values(&mut rng, dims.iter().product(), 1.0, dtype);
            let signed: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let want = cpu(&data, dims).sum(&signed, true).expect("cpu sum");
            // ops.rs `sum_keepdim`: one sum_axis launch per axis, each into a new tensor.
            let what = format!("sum {dims:?} axes {axes:?}");
            each_schedule(&what, dtype, &want, 4.0, |schedule, y| {
                let mut src = Buffer::from_f32(&data, dtype);
                let mut dims = dims.to_vec();
                for (i, &axis) in axes.iter().enumerate() {
                    let outer: usize = dims[..axis].iter().product();
                    let inner: usize = dims[axis + 1..].iter().product();
                    let size = dims[axis];
                    dims[axis] = 1;
                    let partial =
                        (i + 1 < axes.len()).then(|| Buffer::poisoned(outer * inner, dtype));
                    let args = Args::new()
                        .buf(&src)
                        .buf(partial.as_ref().unwrap_or(y))
                        .i64(outer as i64)
                        .i64(size as i64)
                        .i64(inner as i64);
                    run(&m, "sum_axis", elementwise(outer * inner), schedule, args);
                    if let Some(partial) = partial {
                        src = partial;
                    }
                }
            });
        }

        // ops.rs `upsample_nearest2d` and `resize2d`: planes of the last two dims.
        let (h, w) = (shape[2], shape[3]);
        let planes = shape[0] * shape[1];
        for (sh, sw) in [(2, 3), (1, 2)] {
            let want = xt.upsample_nearest2d(sh, sw).expect("cpu upsample");
            let n = want.elem_count();
            let what = format!("upsample_nearest2d {sh}x{sw}");
            each_schedule(&what, dtype, &want, 0.0, |schedule, y| {
                let xb = Buffer::from_f32(&x, dtype);
                let args = Args::new()
                    .buf(&xb)
                    .buf(y)
                    .i64(planes as i64)
                    .i32s([h, w, sh, sw].map(|v| v as i32));
                run(&m, "upsample_nearest2d", elementwise(n), schedule, args);
            });
        }
        // Up in one axis and down in the other; a single output row (align_corners maps it
        // to row 0) from a single input row.
        for (dims, (oh, ow)) in [(&[2usize, 3, 7, 11][..], (13, 5)), (&[2, 1, 6], (1, 9))] {
            let data = values(&mut rng, dims.iter().product(), 1.0, dtype);
            let r = dims.len();
            let (h, w) = (dims[r - 2], dims[r - 1]);
            let planes = data.len() / (h * w);
            for mode in [ResizeMode::Bilinear, ResizeMode::Bicubic] {
                for align in [false, true] {
                    let want = cpu(&data, dims)
                        .resize2d(oh, ow, mode, align)
                        .expect("cpu resize");
                    let n = want.elem_count();
                    let what = format!("resize2d {dims:?} to {oh}x{ow} {mode:?} align={align}");
                    each_schedule(&what, dtype, &want, 2.0, |schedule, y| {
                        let xb = Buffer::from_f32(&data, dtype);
                        let bicubic = mode == ResizeMode::Bicubic;
                        let ints = [h, w, oh, ow, bicubic as usize, align as usize];
                        let args = Args::new()
                            .buf(&xb)
                            .buf(y)
                            .i64(planes as i64)
                            .i32s(ints.map(|v| v as i32));
                        run(&m, "resize2d", elementwise(n), schedule, args);
                    });
                }
            }
        }

        // im2col against the convolution with an identity weight [taps, c, k…], whose
        // output is exactly the column matrix.
        let cases = [
            (
                vec![1, 3, 7, 9],
                vec![3, 3],
                ConvParams {
                    stride: vec![2, 1],
                    padding: vec![1, 2],
                    dilation: vec![1, 2],
                },
            ),
            (vec![1, 4, 11], vec![3], ConvParams::uniform(1, 1, 1)),
            (
                vec![1, 2, 4, 5, 6],
                vec![3, 1, 2],
                ConvParams {
                    stride: vec![1, 1, 1],
                    padding: vec![1, 0, 1],
                    dilation: vec![1, 1, 1],
                },
            ),
        ];
        for (xdims, kernel, params) in cases {
            let taps = xdims[1] * kernel.iter().product::<usize>();
            let mut wdims = vec![taps, xdims[1]];
            wdims.extend(&kernel);
            let case = ConvCase {
                x: xdims,
                w: wdims,
                params,
            };
            let data = values(&mut rng, case.x.iter().product(), 1.0, dtype);
            let identity: Vec<f32> = (0..taps * taps)
                .map(|i| if i % (taps + 1) == 0 { 1.0 } else { 0.0 })
                .collect();
            let cols = cpu(&data, &case.x)
                .conv(&cpu(&identity, &case.w), None, &case.params)
                .expect("cpu conv");
            let out_dims = &cols.dims()[2..];
            let g = conv_geometry(&case, out_dims);
            let positions: usize = out_dims.iter().product();
            let cols = cols.reshape([taps, positions]).expect("columns");
            // conv.rs `conv_im2col`: tiles of positions [p0, p0 + tile) of one image.
            let mut p0 = 0;
            while p0 < positions {
                let tile = IM2COL_TILE.min(positions - p0);
                let want = cols.narrow(1, p0, tile).expect("cpu tile");
                let what = format!("im2col {:?} p0={p0}", case.x);
                each_schedule(&what, dtype, &want, 0.0, |schedule, y| {
                    let xb = Buffer::from_f32(&data, dtype);
                    let args = Args::new()
                        .buf(&xb)
                        .buf(y)
                        .ints(g)
                        .i64(p0 as i64)
                        .i64(tile as i64);
                    run(&m, "im2col", elementwise(taps * tile), schedule, args);
                });
                p0 += tile;
            }
        }
    }
}

#[test]
fn sampling_ops() {
    let mut rng = Rng::new("sampling");
    for dtype in DTYPES {
        let Some(m) = module(Kernel::Sampling, dtype, None) else {
            return;
        };
        for (xs, ws, stride, pad) in CONV_TRANSPOSE_CASES {
            let x = values(&mut rng, xs.iter().product(), 1.0, dtype);
            let w = values(&mut rng, ws.iter().product(), 1.0, dtype);
            let bias = values(&mut rng, ws[1], 1.0, dtype);
            // ops.rs `transposed_conv`: `struct TransposedConv` of sampling.cu.
            let out = |input: usize, kernel: usize| (input - 1) * stride + kernel - 2 * pad;
            let g = [
                xs[1],
                ws[1],
                xs[2],
                xs[3],
                ws[2],
                ws[3],
                out(xs[2], ws[2]),
                out(xs[3], ws[3]),
                stride,
                pad,
            ]
            .map(|v| v as i32);
            for bias in [None, Some(&bias)] {
                let want = cpu(&x, xs)
                    .conv_transpose2d(
                        &cpu(&w, ws),
                        bias.map(|b| cpu(b, &[ws[1]])).as_ref(),
                        stride,
                        pad,
                    )
                    .expect("cpu conv_transpose2d");
                let n = want.elem_count();
                let what = format!(
                    "conv_transpose2d {xs:?} {ws:?} s{stride} p{pad} bias={}",
                    bias.is_some()
                );
                each_schedule(&what, dtype, &want, 8.0, |schedule, y| {
                    let (xb, wb) = (Buffer::from_f32(&x, dtype), Buffer::from_f32(&w, dtype));
                    let bb = bias.map(|b| Buffer::from_f32(b, dtype));
                    let args = Args::new()
                        .buf(&xb)
                        .buf(&wb)
                        .opt(bb.as_ref())
                        .buf(y)
                        .i64(n as i64)
                        .ints(g);
                    run(&m, "conv_transpose2d", elementwise(n), schedule, args);
                });
            }
        }

        for (xs, gs) in GRID_SAMPLE_CASES {
            let x = values(&mut rng, xs.iter().product(), 1.0, dtype);
            // The grid is f32 whatever x's dtype (ops.rs converts it).
            let grid = grid_points(&mut rng, gs.iter().product());
            let (c, h, w) = (xs[1], xs[2], xs[3]);
            let points = gs[0] * gs[1] * gs[2];
            for padding in [GridPadding::Zeros, GridPadding::Border] {
                for align in [false, true] {
                    let want = cpu(&x, xs)
                        .grid_sample(&cpu(&grid, gs), padding, align)
                        .expect("cpu grid_sample");
                    let what = format!("grid_sample {xs:?} {padding:?} align={align}");
                    // ops.rs `grid_sample`: one thread per sample point.
                    each_schedule(&what, dtype, &want, 2.0, |schedule, y| {
                        let xb = Buffer::from_f32(&x, dtype);
                        let gb = Buffer::from_f32(&grid, DType::F32);
                        let args = Args::new()
                            .buf(&xb)
                            .buf(&gb)
                            .buf(y)
                            .i64(points as i64)
                            .i32s([c, h, w].map(|v| v as i32))
                            .i64((gs[1] * gs[2]) as i64)
                            .i32((padding == GridPadding::Border) as i32)
                            .i32(align as i32);
                        run(&m, "grid_sample", elementwise(points), schedule, args);
                    });
                }
            }
        }

        for shape in MAX_POOL_SHAPES {
            // Mostly negative values: padding read as 0 instead of −∞ would win.
            let x: Vec<f32> = values(&mut rng, shape.iter().product(), 1.0, dtype)
                .into_iter()
                .map(|v| round_to(dtype, v - 1.5))
                .collect();
            let r = shape.len();
            let (h, w) = (shape[r - 2], shape[r - 1]);
            for (k, s, p) in MAX_POOLS {
                let want = cpu(&x, shape).max_pool2d(k, s, p).expect("cpu max_pool2d");
                let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
                let n = want.elem_count();
                let what = format!("max_pool2d {shape:?} k{k} s{s} p{p}");
                // ops.rs `max_pool2d`: one thread per output.
                each_schedule(&what, dtype, &want, 0.0, |schedule, y| {
                    let xb = Buffer::from_f32(&x, dtype);
                    let args = Args::new()
                        .buf(&xb)
                        .buf(y)
                        .i64(n as i64)
                        .i32s([h, w, oh, ow, k, s, p].map(|v| v as i32));
                    run(&m, "max_pool2d", elementwise(n), schedule, args);
                });
            }
        }
        // A NaN wins its windows, as in the reference; the cases above show that every
        // output is written.
        let shape = [2, 6, 5];
        let mut x = values(&mut rng, shape.iter().product(), 1.0, dtype);
        x[17] = f32::NAN;
        let want = cpu(&x, &shape)
            .max_pool2d(3, 1, 1)
            .and_then(|t| t.to_vec())
            .expect("cpu max_pool2d");
        for schedule in SCHEDULES {
            let (xb, y) = (
                Buffer::from_f32(&x, dtype),
                Buffer::poisoned(want.len(), dtype),
            );
            let args = Args::new()
                .buf(&xb)
                .buf(&y)
                .i64(want.len() as i64)
                .i32s([6, 5, 6, 5, 3, 1, 1]);
            run(&m, "max_pool2d", elementwise(want.len()), schedule, args);
            let what = format!("max_pool2d NaN ({dtype}) {schedule:?}");
            assert_same_or_nan(&what, &y.to_f32(), &want);
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
    let err = m
        .launch(
            "softmax_rows",
            Config::linear(1, 64, 0),
            Schedule::Forward,
            &mut Args::new().buf(&x).buf(&y).i64(width as i64),
        )
        .expect_err("a 64-bit width for an int parameter");
    assert!(err.contains("takes parameters of [8, 8, 4] bytes"), "{err}");
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
