//! CUDA kernel benches at the SVD-xt UNet's shapes (25 frames × 3 guidance branches = 75
//! images, f16):
//! - spatial self-attention, 4096 and 1024 tokens, head dim 64 (TFLOP/s, 4·b·h·L²·d);
//! - temporal attention over 25 frames, read in place from the spatial layout (GB/s of
//!   Q, K, V read and O written, against a measured device-to-device copy);
//! - GroupNorm + SiLU at the UNet's four resolutions (GB/s of one read and one write);
//! - 3×3 convolutions (padding 1, as many output as input channels) at the UNet's four
//!   resolutions through each algorithm: cuDNN where it loads, the implicit-GEMM kernel and
//!   im2col + cuBLAS (TFLOP/s, 2·n·O·P·C·9).
//!
//! Device time comes from CUDA events around each batch of launches; inputs rotate over
//! several sets so successive calls do not hit in L2. After criterion's runs, one JSON line
//! per case goes to stdout with the median of single-launch timings, for
//! `benches/peer/cuda_kernels.py` to compare against. Without the `cuda` feature or
//! without a GPU the bench prints why and exits successfully.
//!
//! `cargo bench -p sonic-benches --features cuda --bench cuda_kernels`

#[cfg(feature = "cuda")]
mod gpu {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use criterion::{Criterion, Throughput};
    use sonic_core::backend::ConvParams;
    use sonic_core::{DType, Device, Result, Tensor};
    use sonic_kernels::cuda::{AttentionPath, CudaBackend};
    use sonic_kernels::{probe_cudnn, probe_driver, probe_nvrtc, ConvAlgorithm};

    /// Input sets per case; each spatial-attention set alone exceeds an H100's 50 MB L2.
    const ROTATE: usize = 3;
    const IMAGES: usize = 75;
    const FRAMES: usize = 25;

    fn random(shape: &[usize], seed: u64) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let data = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        Tensor::from_vec(data, shape.to_vec(), Device::Cpu)?
            .to_dtype(DType::F16)?
            .to_device(Device::Cuda(0))
    }

    /// One benchmark case: a name, what runs it, its work per call, and the call on input
    /// set `i`.
    struct Case {
        name: String,
        implementation: String,
        work: Work,
        run: Box<dyn Fn(usize) -> Result<Tensor>>,
    }

    #[derive(Clone, Copy)]
    enum Work {
        Flops(u64),
        Bytes(u64),
    }

    fn spatial(gpu: &Arc<CudaBackend>, tokens: usize, heads: usize) -> Result<Case> {
        let d = 64;
        let shape = [IMAGES, tokens, heads * d];
        let sets = (0..ROTATE)
            .map(|i| {
                Ok([
                    random(&shape, 3 * i as u64)?,
                    random(&shape, 3 * i as u64 + 1)?,
                    random(&shape, 3 * i as u64 + 2)?,
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let gpu = gpu.clone();
        let flops = 4 * (IMAGES * heads * tokens * tokens * d) as u64;
        Ok(Case {
            name: format!("spatial_attention/b{IMAGES}_h{heads}_l{tokens}_d{d}"),
            implementation: "sonic".to_owned(),
            work: Work::Flops(flops),
            run: Box::new(move |i| {
                let [q, k, v] = &sets[i % ROTATE];
                gpu.attention_with(q, k, v, heads, 0.125, AttentionPath::Flash)
            }),
        })
    }

    fn temporal(gpu: &Arc<CudaBackend>) -> Result<Case> {
        let (hw, heads, d) = (64 * 64, 5, 64);
        let shape = [IMAGES, hw, heads * d];
        let sets = (0..ROTATE)
            .map(|i| {
                Ok([
                    random(&shape, 7 * i as u64)?,
                    random(&shape, 7 * i as u64 + 1)?,
                    random(&shape, 7 * i as u64 + 2)?,
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let gpu = gpu.clone();
        let bytes = 4 * (IMAGES * hw * heads * d * 2) as u64;
        Ok(Case {
            name: format!(
                "temporal_attention/f{FRAMES}_b{}_hw{hw}_h{heads}_d{d}",
                IMAGES / FRAMES
            ),
            implementation: "sonic".to_owned(),
            work: Work::Bytes(bytes),
            run: Box::new(move |i| {
                let [q, k, v] = &sets[i % ROTATE];
                gpu.spatial_temporal_attention(q, k, v, FRAMES, heads, 0.125)
            }),
        })
    }

    fn group_norm_silu(c: usize, side: usize) -> Result<Case> {
        let shape = [IMAGES, c, side, side];
        let sets = (0..ROTATE)
            .map(|i| {
                Ok([
                    random(&shape, 11 * i as u64)?,
                    random(&[c], 11 * i as u64 + 1)?,
                    random(&[c], 11 * i as u64 + 2)?,
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = 2 * (IMAGES * c * side * side * 2) as u64;
        Ok(Case {
            name: format!("group_norm_silu/n{IMAGES}_c{c}_{side}x{side}"),
            implementation: "sonic".to_owned(),
            work: Work::Bytes(bytes),
            run: Box::new(move |i| {
                let [x, w, b] = &sets[i % ROTATE];
                x.group_norm_silu(32, Some(w), Some(b), 1e-5)
            }),
        })
    }

    fn copy(gpu: &Arc<CudaBackend>, bytes: usize) -> Result<Case> {
        let sets = (0..ROTATE)
            .map(|i| random(&[bytes / 2], 13 * i as u64))
            .collect::<Result<Vec<_>>>()?;
        let gpu = gpu.clone();
        Ok(Case {
            name: format!("d2d_copy/{}MiB", bytes >> 20),
            implementation: "sonic".to_owned(),
            work: Work::Bytes(2 * bytes as u64),
            run: Box::new(move |i| gpu.copy_d2d(&sets[i % ROTATE])),
        })
    }

    fn conv3x3(
        gpu: &Arc<CudaBackend>,
        c: usize,
        side: usize,
        algorithm: ConvAlgorithm,
    ) -> Result<Case> {
        let sets = (0..ROTATE)
            .map(|i| {
                Ok([
                    random(&[IMAGES, c, side, side], 17 * i as u64)?,
                    random(&[c, c, 3, 3], 17 * i as u64 + 1)?,
                    random(&[c], 17 * i as u64 + 2)?,
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        let gpu = gpu.clone();
        let flops = 2 * (IMAGES * c * side * side * c * 9) as u64;
        let params = ConvParams::uniform(2, 1, 1);
        Ok(Case {
            name: format!("conv3x3/n{IMAGES}_c{c}_{side}x{side}"),
            implementation: format!("sonic-{algorithm}"),
            work: Work::Flops(flops),
            run: Box::new(move |i| {
                let [x, w, b] = &sets[i % ROTATE];
                gpu.conv_with(x, w, Some(b), &params, algorithm)
            }),
        })
    }

    /// Median device time of one call, after a warm-up that lets the clocks settle.
    fn median_ms(gpu: &CudaBackend, case: &Case) -> Result<f64> {
        let warm = Instant::now();
        let mut i = 0;
        while warm.elapsed() < Duration::from_millis(500) || i < 5 {
            (case.run)(i)?;
            i += 1;
        }
        gpu.synchronize()?;
        let mut times = (0..30)
            .map(|j| gpu.time_ms(|| (case.run)(j).map(drop)).map(f64::from))
            .collect::<Result<Vec<_>>>()?;
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }

    pub fn run(gpu: &Arc<CudaBackend>, c: &mut Criterion) -> Result<()> {
        let device = probe_driver();
        let gpu_name = device
            .devices
            .first()
            .map_or("?".to_owned(), |g| g.name.clone());
        let conv = gpu.conv_choice();
        eprintln!(
            "device {gpu_name} ({}), driver CUDA {:?}, NVRTC {:?}, cuDNN {:?}; convolutions \
             default to {} ({})",
            gpu.arch(),
            device.version,
            probe_nvrtc().version,
            probe_cudnn().version,
            conv.algorithm,
            conv.reason
        );
        let copy_case = copy(gpu, 512 << 20)?;
        let copy_gbps = match copy_case.work {
            Work::Bytes(b) => b as f64 / median_ms(gpu, &copy_case)? / 1e6,
            Work::Flops(_) => 0.0,
        };
        let mut cases = vec![
            copy_case,
            spatial(gpu, 4096, 5)?,
            spatial(gpu, 1024, 10)?,
            temporal(gpu)?,
        ];
        for (ch, side) in [(320, 64), (640, 32), (1280, 16), (1280, 8)] {
            cases.push(group_norm_silu(ch, side)?);
        }
        let mut algorithms = vec![ConvAlgorithm::ImplicitGemm, ConvAlgorithm::Im2col];
        match probe_cudnn().error {
            None => algorithms.insert(0, ConvAlgorithm::Cudnn),
            Some(why) => eprintln!("conv3x3 through cuDNN skipped: {why}"),
        }
        for (ch, side) in [(320, 64), (640, 32), (1280, 16), (1280, 8)] {
            for &algorithm in &algorithms {
                cases.push(conv3x3(gpu, ch, side, algorithm)?);
            }
        }
        let mut group = c.benchmark_group("cuda");
        group.sample_size(20).warm_up_time(Duration::from_secs(1));
        for case in &cases {
            group.throughput(match case.work {
                Work::Flops(f) => Throughput::Elements(f),
                Work::Bytes(b) => Throughput::Bytes(b),
            });
            group.bench_function(format!("{}/{}", case.name, case.implementation), |b| {
                b.iter_custom(|iters| {
                    let ms = gpu
                        .time_ms(|| (0..iters as usize).try_for_each(|i| (case.run)(i).map(drop)))
                        .expect("CUDA launch failed");
                    Duration::from_secs_f64(f64::from(ms) / 1e3)
                })
            });
        }
        group.finish();
        for case in &cases {
            let ms = median_ms(gpu, case)?;
            let line = match case.work {
                Work::Flops(f) => format!("\"tflops\":{:.1}", f as f64 / ms / 1e9),
                Work::Bytes(b) => {
                    let gbps = b as f64 / ms / 1e6;
                    format!(
                        "\"gbps\":{gbps:.0},\"pct_of_d2d\":{:.1}",
                        100.0 * gbps / copy_gbps
                    )
                }
            };
            println!(
                "{{\"impl\":\"{}\",\"gpu\":\"{gpu_name}\",\"case\":\"{}\",\"ms\":{ms:.4},{line}}}",
                case.implementation, case.name
            );
        }
        Ok(())
    }
}

fn main() {
    #[cfg(feature = "cuda")]
    match sonic_benches::cuda_backend() {
        Ok(gpu) => {
            let mut criterion = criterion::Criterion::default().configure_from_args();
            if let Err(err) = gpu::run(&gpu, &mut criterion) {
                eprintln!("cuda_kernels: {err}");
                std::process::exit(1);
            }
            criterion.final_summary();
        }
        Err(why) => eprintln!("cuda_kernels skipped: no usable GPU ({why})"),
    }
    #[cfg(not(feature = "cuda"))]
    eprintln!("cuda_kernels skipped: built without the `cuda` feature");
}
