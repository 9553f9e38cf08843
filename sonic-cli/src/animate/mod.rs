//! `sonic animate`: one portrait and one audio track in, one talking-portrait video out.

mod bars;
mod config;

pub use bars::Bars;
pub use config::Settings;

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use serde::Serialize;
use sonic_core::pipeline::{AnimateReport, ModelSet, ModelSource, SonicPipeline, WeightPaths};
use sonic_core::video::{check_output, open_sink, Fps, OutputFormat, VideoSpec};
use sonic_core::{registry, DType, Device};

#[derive(Debug, Args)]
pub struct AnimateArgs {
    /// Settings from a TOML file (keys as the flags: `steps = 25`, `image-cfg = 2.0`);
    /// flags given here win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// One JSON object on stdout when done: output, seed, frames, timings, device, components.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Serialize)]
struct Components<'a> {
    model: &'a ModelSource,
    sampler: &'a str,
    schedule: &'a str,
    audio_encoder: &'a str,
}

#[derive(Serialize)]
struct Summary<'a> {
    output: &'a Path,
    format: String,
    bytes: u64,
    duration_s: f64,
    has_audio: bool,
    device: String,
    dtype: String,
    seed: u64,
    seed_given: bool,
    frames: usize,
    output_frames: usize,
    fps: f32,
    interpolated: bool,
    face_box: sonic_core::image::FaceBox,
    face_source: sonic_core::pipeline::FaceSource,
    width: usize,
    height: usize,
    audio_seconds: f64,
    denoiser_calls: usize,
    trained: bool,
    components: Components<'a>,
    load_s: f64,
    timings: &'a sonic_core::pipeline::StageTimings,
    total_s: f64,
}

/// A seed from the OS's randomness, small enough to type back.
fn fresh_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::process::id()) % 1_000_000_000
}

pub fn run(args: &AnimateArgs, quiet: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = match &args.config {
        Some(file) => args.settings.clone().over(Settings::from_file(file)?),
        None => args.settings.clone(),
    };
    let (Some(image), Some(audio), Some(output)) =
        (&settings.image, &settings.audio, &settings.output)
    else {
        bail!("--image, --audio and --output are required (on the command line or in --config)");
    };
    let format = match &settings.format {
        Some(f) => f.parse::<OutputFormat>()?,
        None => OutputFormat::from_path(output)?,
    };
    // A bad output path fails here rather than after the models load.
    check_output(format, output, settings.overwrite)?;
    let seed = fresh_seed();
    let opts = settings.options(seed)?;
    if settings.seed.is_none() && !quiet {
        eprintln!(
            "seed: {} (pass --seed {} to repeat this run)",
            opts.seed, opts.seed
        );
    }
    let device: Device = settings.device.as_deref().unwrap_or("cpu").parse()?;
    let dtype = match settings.dtype.as_deref() {
        Some(d) => d.parse::<DType>().map_err(anyhow::Error::msg)?,
        None if device == Device::Cpu => DType::F32,
        None => DType::F16,
    };
    if device == Device::Cpu && dtype != DType::F32 {
        bail!("--dtype {dtype}: the CPU backend computes in f32; f16 and bf16 need --device cuda");
    }
    // Names and input files are checked first: a typo fails before minutes of loading.
    registry::sampler(&opts.sampler)?;
    sonic_core::schedule::scheduler(&opts.schedule)?;
    registry::check_audio_encoder(&opts.audio_encoder)?;
    for input in [image, audio] {
        if !input.is_file() {
            bail!("{}: no such file", input.display());
        }
    }

    // A second Ctrl-C exits at once, as users expect when a run does not stop fast enough.
    let _ = ctrlc::set_handler(|| {
        if bars::INTERRUPTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(130);
        }
    });
    let mut bars = Bars::new(quiet);
    let load_clock = Instant::now();
    let models = load_models(
        &settings,
        &opts.audio_encoder,
        dtype,
        device,
        &mut bars,
        quiet,
    )?;
    sonic_core::pipeline::Progress::end(&mut bars);
    let load_s = load_clock.elapsed().as_secs_f64();

    let pipeline = SonicPipeline::new(models);
    let prepare_clock = Instant::now();
    let mut prepared = pipeline.prepare(image, audio, &opts)?;
    let prepare_s = prepare_clock.elapsed().as_secs_f64();
    let spec = VideoSpec {
        width: prepared.width() as u32,
        height: prepared.height() as u32,
        fps: Fps::from_f32(pipeline.output_fps(&opts)?)?,
        audio: Some(prepared.audio.take_soundtrack()),
    };
    let mut sink = open_sink(format, output, spec, settings.overwrite)?;
    let mut report: AnimateReport = pipeline.generate(&prepared, &opts, &mut bars, &mut |rgb| {
        sink.write_frame(rgb)
    })?;
    report.timings.prepare_s = prepare_s;
    let written = sink.finish()?;
    let trained_note = if report.trained {
        ""
    } else {
        " (untrained demo model)"
    };
    if !quiet {
        eprintln!(
            "wrote {}: {} frames {}×{} at {} fps, {:.2} s{}",
            output.display(),
            report.output_frames,
            report.width,
            report.height,
            report.fps,
            written.duration_s,
            trained_note
        );
    }
    if args.json {
        let summary = Summary {
            output,
            format: format.to_string(),
            bytes: written.bytes,
            duration_s: written.duration_s,
            has_audio: written.has_audio,
            device: device.to_string(),
            dtype: dtype.to_string(),
            seed: report.seed,
            seed_given: settings.seed.is_some(),
            frames: report.frames,
            output_frames: report.output_frames,
            fps: report.fps,
            interpolated: report.interpolated,
            face_box: report.face_box,
            face_source: report.face_source,
            width: report.width,
            height: report.height,
            audio_seconds: report.audio_seconds,
            denoiser_calls: report.denoiser_calls,
            trained: report.trained,
            components: Components {
                model: &pipeline.models.source,
                sampler: &report.sampler,
                schedule: &report.schedule,
                audio_encoder: &report.audio_encoder,
            },
            load_s,
            timings: &report.timings,
            total_s: started.elapsed().as_secs_f64(),
        };
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}

/// The demo model, or the real weights when any weights folder is given; with the audio
/// encoder `audio_encoder` resolved through the registry unless it is the built-in.
pub fn load_models(
    settings: &Settings,
    audio_encoder: &str,
    dtype: DType,
    device: Device,
    bars: &mut Bars,
    quiet: bool,
) -> anyhow::Result<ModelSet> {
    let models = if settings.wants_weights() {
        let paths =
            WeightPaths::resolve(settings.weights.as_deref(), &settings.weight_overrides())?;
        bars.start("load", 5);
        ModelSet::load(&paths, dtype, device, &mut |name| {
            bars.message(name);
            sonic_core::pipeline::Progress::advance(bars, 1);
        })?
    } else {
        if !quiet {
            eprintln!(
                "no --weights: running the embedded demo model (untrained: the video shows noise shaped by the portrait, not a talking face)"
            );
        }
        ModelSet::demo(device)?
    };
    if audio_encoder == registry::BUILTIN_AUDIO_ENCODER {
        return Ok(models);
    }
    let encoder = registry::audio_encoder(audio_encoder)?;
    Ok(models.with_audio_encoder(audio_encoder, encoder))
}
