//! One forward of the SVD-xt UNet in f16 on CUDA, against diffusers on PyTorch.
//!
//! `benches/peer/svd_unet.py DIR` runs first: it builds diffusers' UNet with the SVD-xt
//! config and random weights, times its f16 forward and saves the model, the inputs and its
//! f32 output under DIR. This bench loads the same folder (`SONIC_SVD_UNET_DIR=DIR`), times
//! the same forward in f16 with CUDA events (median of 5 after a warm-up) and prints one JSON
//! line with the time and the relative error of its output against that f32 reference.
//! Without the `cuda` feature, a GPU or the folder it prints why and exits successfully.
//!
//! `SONIC_SVD_UNET_DIR=/tmp/svd-unet cargo bench -p sonic-benches --features cuda --bench cuda_unet`

#[cfg(feature = "cuda")]
mod gpu {
    use std::path::Path;
    use std::sync::Arc;

    use sonic_core::models::unet::{UNetConditioning, UNetSpatioTemporalConditionModel};
    use sonic_core::verify::{errors, Fixture};
    use sonic_core::weights::{read_config, VarBuilder, WeightStore};
    use sonic_core::{DType, Device, Result};
    use sonic_kernels::cuda::CudaBackend;
    use sonic_kernels::probe_driver;

    const RUNS: usize = 5;

    pub fn run(gpu: &CudaBackend, dir: &Path) -> Result<()> {
        let device = Device::Cuda(0);
        let store = Arc::new(WeightStore::open(&[dir.join("weights.safetensors")])?);
        let unet = UNetSpatioTemporalConditionModel::new(
            read_config(dir)?,
            &VarBuilder::new(store, DType::F16, device),
        )?;
        // The folder is the peer's `model.svd-unet` fixture with one run.
        let fx = Fixture::open(dir)?;
        let run: Vec<String> = fx.param("runs")?;
        let input = |name: &str, device| fx.tensor(&format!("{}.{name}", run[0]), device);
        let sample = input("sample", device)?.to_dtype(DType::F16)?;
        let f = sample.dims()[1];
        let cond = UNetConditioning::svd(
            &input("encoder_hidden_states", device)?,
            f,
            input("added_time_ids", device)?,
        )?;
        let timesteps = input("timesteps", Device::Cpu)?.to_vec()?;

        let mut out = unet.forward(&sample, &timesteps, &cond)?;
        gpu.synchronize()?;
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            times.push(gpu.time_ms(|| {
                out = unet.forward(&sample, &timesteps, &cond)?;
                Ok(())
            })?);
        }
        times.sort_by(f32::total_cmp);
        let reference = input("out", Device::Cpu)?;
        let (rel, max_abs) = errors(&out.to_device(Device::Cpu)?, &reference)?;
        let gpu_name = probe_driver()
            .devices
            .first()
            .map_or("?".to_owned(), |g| g.name.clone());
        println!(
            "{{\"impl\":\"sonic\",\"gpu\":\"{gpu_name}\",\"case\":\"svd_unet_forward/f{f}_{}x{}_f16\",\"ms\":{:.2},\"rel_error_vs_f32\":{rel:.3e},\"max_abs_error\":{max_abs:.3e}}}",
            sample.dims()[3],
            sample.dims()[4],
            times[RUNS / 2]
        );
        Ok(())
    }
}

fn main() {
    #[cfg(feature = "cuda")]
    {
        let Some(dir) = std::env::var_os("SONIC_SVD_UNET_DIR") else {
            eprintln!("cuda_unet skipped: SONIC_SVD_UNET_DIR is not set (benches/peer/svd_unet.py writes it)");
            return;
        };
        match sonic_benches::cuda_backend() {
            Ok(backend) => {
                if let Err(err) = gpu::run(&backend, std::path::Path::new(&dir)) {
                    eprintln!("cuda_unet: {err}");
                    std::process::exit(1);
                }
            }
            Err(why) => eprintln!("cuda_unet skipped: no usable GPU ({why})"),
        }
    }
    #[cfg(not(feature = "cuda"))]
    eprintln!("cuda_unet skipped: built without the `cuda` feature");
}
