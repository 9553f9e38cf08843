//! The audio encoders at real size on the CPU: whisper-tiny's encoder on 30 s of features and
//! audio2token over 750 frames, with the random weights and inputs written by
//! `benches/peer/encoders_cpu.py`; prints median times and the error against PyTorch.
//!
//!     python benches/peer/encoders_cpu.py DIR
//!     RAYON_NUM_THREADS=2 cargo run --release -p sonic-benches --example encoders_cpu -- DIR

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sonic_core::models::audio_proj::{AudioProjConfig, AudioProjModel};
use sonic_core::models::whisper::WhisperEncoder;
use sonic_core::verify::errors;
use sonic_core::weights::{VarBuilder, WeightStore};
use sonic_core::{DType, Device, Shape, Tensor};

fn median_time<T>(
    runs: usize,
    mut f: impl FnMut() -> sonic_core::Result<T>,
) -> sonic_core::Result<(T, f64)> {
    let mut out = f()?; // warm-up
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        out = f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((out, times[times.len() / 2]))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: encoders_cpu DIR [RUNS]")?,
    );
    let runs: usize = std::env::args().nth(2).map_or(Ok(5), |s| s.parse())?;
    let io = WeightStore::open(&[dir.join("io.safetensors")])?;
    let get = |k: &str| -> sonic_core::Result<Tensor> {
        let shape = Shape::new(io.raw(k).map(|r| r.shape.clone()).unwrap_or_default());
        io.load(k, &shape, DType::F32, Device::Cpu)
    };
    let (whisper, _) = WhisperEncoder::load(&dir.join("whisper-tiny"), Device::Cpu)?;
    let mel = get("mel")?;
    let (hidden, whisper_s) = median_time(runs, || whisper.forward(&mel))?;
    let (whisper_rel, _) = errors(
        hidden.last().ok_or("no hidden states")?,
        &get("last_hidden")?,
    )?;

    let store = Arc::new(WeightStore::open(&[dir.join("audio2token.safetensors")])?);
    let proj = AudioProjModel::new(
        AudioProjConfig::default(),
        &VarBuilder::new(store, DType::F32, Device::Cpu),
    )?;
    let windows = get("windows")?;
    let (tokens, proj_s) = median_time(runs, || proj.forward(&windows))?;
    let (proj_rel, _) = errors(&tokens, &get("tokens")?)?;
    println!(
        "{{\"whisper_tiny_30s_s\": {whisper_s:.4}, \"whisper_rel_error\": {whisper_rel:.3e}, \"audio2token_750_frames_s\": {proj_s:.4}, \"audio2token_rel_error\": {proj_rel:.3e}}}"
    );
    Ok(())
}
