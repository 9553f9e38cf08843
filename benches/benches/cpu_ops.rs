//! CPU backend kernels at SVD-UNet-like shapes (scaled down to run in seconds): linear,
//! 3×3 convolution, attention and GroupNorm+SiLU. The shapes come from
//! `benches/peer/shapes.json`, which the PyTorch peer script `benches/peer/cpu_ops.py` reads
//! too; `benches/peer/run_cpu.sh` runs both and tabulates the ratios.
//!
//! Thread count: rayon's global pool, so `RAYON_NUM_THREADS=1` gives single-threaded numbers.
//! Sampling: `SONIC_BENCH_SAMPLES` (default 20), `SONIC_BENCH_WARMUP_S` (default 1) and
//! `SONIC_BENCH_MEASURE_S` (default 2).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sonic_benches::{random, shapes};
use sonic_core::{Device, Tensor};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(env_or("SONIC_BENCH_SAMPLES", 20usize).max(10))
        .warm_up_time(Duration::from_secs_f64(env_or("SONIC_BENCH_WARMUP_S", 1.0)))
        .measurement_time(Duration::from_secs_f64(env_or(
            "SONIC_BENCH_MEASURE_S",
            2.0,
        )))
        .configure_from_args()
}

fn tensor(seed: u64, stream: u64, shape: &[usize]) -> Tensor {
    let len = shape.iter().product();
    Tensor::from_vec(random(seed, stream, len), shape, Device::Cpu).expect("bench tensor")
}

fn matmul(c: &mut Criterion) {
    let s = shapes();
    let mut group = c.benchmark_group("matmul");
    for sh in &s.matmul {
        let x = tensor(s.seed, 0, &[sh.rows, sh.input]);
        let w = tensor(s.seed, 1, &[sh.out, sh.input]);
        let b = tensor(s.seed, 2, &[sh.out]);
        group.bench_function(&sh.id, |bench| {
            bench.iter(|| black_box(x.linear(&w, Some(&b)).expect("linear")))
        });
    }
    group.finish();
}

fn conv2d_3x3(c: &mut Criterion) {
    let s = shapes();
    let mut group = c.benchmark_group("conv2d_3x3");
    for sh in &s.conv2d_3x3 {
        let x = tensor(s.seed, 0, &[sh.n, sh.c, sh.h, sh.w]);
        let w = tensor(s.seed, 1, &[sh.out, sh.c, 3, 3]);
        let b = tensor(s.seed, 2, &[sh.out]);
        group.bench_function(&sh.id, |bench| {
            bench.iter(|| black_box(x.conv2d(&w, Some(&b), 1, 1).expect("conv2d")))
        });
    }
    group.finish();
}

fn attention(c: &mut Criterion) {
    let s = shapes();
    let mut group = c.benchmark_group("attention");
    for sh in &s.attention {
        let dims = [sh.batch, sh.tokens, sh.heads * sh.head_dim];
        let q = tensor(s.seed, 0, &dims);
        let k = tensor(s.seed, 1, &dims);
        let v = tensor(s.seed, 2, &dims);
        let scale = 1.0 / (sh.head_dim as f32).sqrt();
        group.bench_function(&sh.id, |bench| {
            bench.iter(|| {
                black_box(Tensor::attention(&q, &k, &v, sh.heads, scale).expect("attention"))
            })
        });
    }
    group.finish();
}

fn group_norm_silu(c: &mut Criterion) {
    let s = shapes();
    let mut group = c.benchmark_group("group_norm_silu");
    for sh in &s.group_norm_silu {
        let x = tensor(s.seed, 0, &[sh.n, sh.c, sh.h, sh.w]);
        let w = tensor(s.seed, 1, &[sh.c]);
        let b = tensor(s.seed, 2, &[sh.c]);
        group.bench_function(&sh.id, |bench| {
            bench.iter(|| {
                black_box(
                    x.group_norm_silu(sh.groups, Some(&w), Some(&b), 1e-5)
                        .expect("group_norm_silu"),
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = cpu_ops;
    config = config();
    targets = matmul, conv2d_3x3, attention, group_norm_silu
}
criterion_main!(cpu_ops);
