//! Whisper's log-mel spectrogram as transformers' `WhisperFeatureExtractor` computes it, with
//! the reference's chunking: 30-second pieces, each padded and normalised on its own.
//!
//! The STFT runs in f64: the reference's f32 FFT is itself off by up to ~1e-5 in the quietest
//! bins, and computing closer to the exact value keeps our share of the parity error negligible.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use realfft::{RealFftPlanner, RealToComplex};

use super::SAMPLE_RATE;
use crate::verify::Fixture;
use crate::{Device, Error, Result, Tensor};

pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
pub const N_MELS: usize = 80;
/// 30 s at 16 kHz: the feature extractor pads (or cuts) every call to this length.
pub const CHUNK_SAMPLES: usize = 480_000;
/// Mel frames per chunk: the centred STFT gives one more, which transformers drops.
pub const CHUNK_FRAMES: usize = CHUNK_SAMPLES / HOP_LENGTH;

const N_BINS: usize = N_FFT / 2 + 1;

/// The log-mel features of a 16 kHz signal, shape `[80, 3000·n_chunks]` on the CPU: the signal
/// is cut into 30 s chunks, each goes through [`log_mel_chunk`], and the results are joined
/// along time, as the reference's `get_audio_feature` does.
pub fn whisper_log_mel(samples: &[f32]) -> Result<Tensor> {
    if samples.is_empty() {
        return Err(Error::invalid("whisper_log_mel", "no samples"));
    }
    let n_chunks = samples.len().div_ceil(CHUNK_SAMPLES);
    let width = n_chunks * CHUNK_FRAMES;
    let mut out = vec![0.0f32; N_MELS * width];
    let mut chunk_mel = vec![0.0f32; N_MELS * CHUNK_FRAMES];
    for (c, chunk) in samples.chunks(CHUNK_SAMPLES).enumerate() {
        log_mel_into(chunk, &mut chunk_mel)?;
        for (m, row) in chunk_mel.chunks_exact(CHUNK_FRAMES).enumerate() {
            let at = m * width + c * CHUNK_FRAMES;
            out[at..at + CHUNK_FRAMES].copy_from_slice(row);
        }
    }
    Tensor::from_vec(out, [N_MELS, width], Device::Cpu)
}

/// What one `WhisperFeatureExtractor` call gives for at most 30 s of 16 kHz audio: shape
/// `[80, 3000]` on the CPU.
pub fn log_mel_chunk(chunk: &[f32]) -> Result<Tensor> {
    if chunk.len() > CHUNK_SAMPLES {
        return Err(Error::invalid(
            "log_mel_chunk",
            format!(
                "{} samples is more than one 30 s chunk ({CHUNK_SAMPLES})",
                chunk.len()
            ),
        ));
    }
    let mut mel = vec![0.0f32; N_MELS * CHUNK_FRAMES];
    log_mel_into(chunk, &mut mel)?;
    Tensor::from_vec(mel, [N_MELS, CHUNK_FRAMES], Device::Cpu)
}

/// Zero-pads `chunk` to 30 s, takes the centred (reflect-padded) STFT with a periodic Hann
/// window, drops the last frame, maps the power spectrum to mel bands, and normalises:
/// log10 clamped at 1e-10, floored at max − 8, then (x + 4) / 4. `out` is `[80, 3000]`.
fn log_mel_into(chunk: &[f32], out: &mut [f32]) -> Result<()> {
    let spec = MelSpec::get();
    let padded = reflect_padded(chunk);
    // Frame-major while computing, so each frame writes one contiguous row.
    let mut log_power = vec![0.0f64; CHUNK_FRAMES * N_MELS];
    log_power
        .par_chunks_mut(N_MELS)
        .enumerate()
        .try_for_each_init(
            || {
                (
                    spec.fft.make_input_vec(),
                    spec.fft.make_output_vec(),
                    spec.fft.make_scratch_vec(),
                )
            },
            |(frame, spectrum, scratch), (t, mel_row)| {
                let start = t * HOP_LENGTH;
                for ((x, &s), &w) in frame
                    .iter_mut()
                    .zip(&padded[start..start + N_FFT])
                    .zip(&spec.window)
                {
                    *x = s * w;
                }
                spec.fft
                    .process_with_scratch(frame, spectrum, scratch)
                    .map_err(|e| Error::invalid("log_mel", e.to_string()))?;
                for (band, value) in spec.bands.iter().zip(mel_row.iter_mut()) {
                    let power: f64 = spectrum[band.first_bin..]
                        .iter()
                        .zip(&band.weights)
                        .map(|(c, w)| w * c.norm_sqr())
                        .sum();
                    *value = power.max(1e-10).log10();
                }
                Ok::<_, Error>(())
            },
        )?;
    let floor = log_power.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 8.0;
    for (t, row) in log_power.chunks_exact(N_MELS).enumerate() {
        for (m, &v) in row.iter().enumerate() {
            out[m * CHUNK_FRAMES + t] = ((v.max(floor) + 4.0) / 4.0) as f32;
        }
    }
    Ok(())
}

/// The chunk zero-padded to 30 s, then reflect-padded by N_FFT/2 on both sides (torch.stft's
/// `center=True, pad_mode="reflect"`: the edge sample is not repeated).
fn reflect_padded(chunk: &[f32]) -> Vec<f64> {
    let half = N_FFT / 2;
    let x = |i: usize| chunk.get(i).map_or(0.0, |&v| f64::from(v));
    let mut padded = vec![0.0f64; CHUNK_SAMPLES + N_FFT];
    for (i, p) in padded[half..half + chunk.len()].iter_mut().enumerate() {
        *p = x(i);
    }
    for j in 1..=half {
        padded[half - j] = x(j);
        padded[half + CHUNK_SAMPLES - 1 + j] = x(CHUNK_SAMPLES - 1 - j);
    }
    padded
}

/// The fixed parts: window, mel filter bank, FFT plan.
struct MelSpec {
    window: Vec<f64>,
    bands: Vec<MelBand>,
    fft: Arc<dyn RealToComplex<f64>>,
}

/// One triangular mel filter, stored from its first non-zero FFT bin.
struct MelBand {
    first_bin: usize,
    weights: Vec<f64>,
}

impl MelSpec {
    fn get() -> &'static MelSpec {
        static SPEC: OnceLock<MelSpec> = OnceLock::new();
        SPEC.get_or_init(|| MelSpec {
            window: periodic_hann(N_FFT),
            bands: mel_filter_bank()
                .into_iter()
                .map(|weights| {
                    let first_bin = weights.iter().position(|&w| w != 0.0).unwrap_or(N_BINS);
                    let last = weights.iter().rposition(|&w| w != 0.0).map_or(0, |i| i + 1);
                    MelBand {
                        first_bin,
                        weights: weights[first_bin..last.max(first_bin)].to_vec(),
                    }
                })
                .collect(),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        })
    }
}

/// torch.hann_window(n) (periodic): 0.5 − 0.5·cos(2πk/n).
fn periodic_hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos())
        .collect()
}

/// transformers' `mel_filter_bank(201, 80, 0, 8000, 16000, norm="slaney", mel_scale="slaney")`,
/// as `[80][201]`. Computed in f64 like numpy, then rounded to f32 because the extractor
/// multiplies with an f32 copy.
pub(crate) fn mel_filter_bank() -> Vec<Vec<f64>> {
    let mel_max = hertz_to_mel(f64::from(SAMPLE_RATE) / 2.0);
    let filter_freqs: Vec<f64> = linspace(0.0, mel_max, N_MELS + 2)
        .into_iter()
        .map(mel_to_hertz)
        .collect();
    let fft_freqs = linspace(0.0, f64::from(SAMPLE_RATE / 2), N_BINS);
    (0..N_MELS)
        .map(|m| {
            let (lo, mid, hi) = (filter_freqs[m], filter_freqs[m + 1], filter_freqs[m + 2]);
            let enorm = 2.0 / (hi - lo);
            fft_freqs
                .iter()
                .map(|&f| {
                    let down = (f - lo) / (mid - lo);
                    let up = (hi - f) / (hi - mid);
                    let w = down.min(up).max(0.0) * enorm;
                    f64::from(w as f32)
                })
                .collect()
        })
        .collect()
}

/// numpy.linspace: start + i·step, with the last value set to `stop` exactly.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step + start).collect();
    v[n - 1] = stop;
    v
}

const MIN_LOG_HERTZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = 15.0;

/// Slaney's mel scale: linear below 1 kHz, logarithmic above.
fn hertz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HERTZ {
        MIN_LOG_MEL + (f / MIN_LOG_HERTZ).ln() * (27.0 / 6.4f64.ln())
    } else {
        3.0 * f / 200.0
    }
}

fn mel_to_hertz(m: f64) -> f64 {
    if m >= MIN_LOG_MEL {
        MIN_LOG_HERTZ * ((6.4f64.ln() / 27.0) * (m - MIN_LOG_MEL)).exp()
    } else {
        200.0 * m / 3.0
    }
}

/// Fixture runner for `audio.whisper-log-mel`: `samples` (16 kHz) in, `log_mel` out.
pub(crate) fn verify_log_mel(fx: &Fixture, device: Device) -> Result<BTreeMap<String, Tensor>> {
    let samples = fx.tensor("samples", Device::Cpu)?.to_vec()?;
    let log_mel = whisper_log_mel(&samples)?.to_device(device)?;
    Ok(BTreeMap::from([("log_mel".to_string(), log_mel)]))
}
