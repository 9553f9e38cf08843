//! The real-size SVD-xt UNet on the CPU: loads the folder written by
//! `benches/peer/unet_svd_xt_cpu.py` (random weights, inputs, PyTorch's output), times one
//! forward and checks it against PyTorch.
//!
//!     python benches/peer/unet_svd_xt_cpu.py DIR
//!     RAYON_NUM_THREADS=2 cargo run --release -p sonic-benches --example unet_svd_xt_cpu -- DIR

use std::path::PathBuf;
use std::time::Instant;

use sonic_core::models::unet::{UNetConditioning, UNetSpatioTemporalConditionModel};
use sonic_core::verify::errors;
use sonic_core::weights::WeightStore;
use sonic_core::{DType, Device, Shape, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: unet_svd_xt_cpu DIR")?,
    );
    let runs: usize = std::env::args().nth(2).map_or(Ok(2), |s| s.parse())?;
    let clock = Instant::now();
    let unet = UNetSpatioTemporalConditionModel::load(
        &dir,
        &[dir.join("weights.safetensors")],
        Device::Cpu,
    )?;
    let load_s = clock.elapsed().as_secs_f64();
    let io = WeightStore::open(&[dir.join("io.safetensors")])?;
    let get = |k: &str| -> sonic_core::Result<Tensor> {
        let shape = Shape::new(io.raw(k).map(|r| r.shape.clone()).unwrap_or_default());
        io.load(k, &shape, DType::F32, Device::Cpu)
    };
    let sample = get("sample")?;
    let cond = UNetConditioning::svd(
        &get("encoder_hidden_states")?,
        sample.dims()[1],
        get("added_time_ids")?,
    )?;
    let timesteps = get("timesteps")?.to_vec()?;
    let mut wall = Vec::new();
    let mut out = None;
    for _ in 0..runs + 1 {
        let t = Instant::now();
        out = Some(unet.forward(&sample, &timesteps, &cond)?);
        wall.push((t.elapsed().as_secs_f64() * 100.0).round() / 100.0);
    }
    let (rel, _) = errors(&out.ok_or("no run")?, &get("out")?)?;
    println!(
        "{{\"threads\": {}, \"load_s\": {load_s:.2}, \"warmup_s\": {}, \"forward_wall_s\": {:?}, \"rel_error_vs_torch\": {rel:.3e}}}",
        rayon_threads(),
        wall[0],
        &wall[1..]
    );
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
