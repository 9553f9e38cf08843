//! `sonic ablate`: several long-video schedules on the same inputs, seed and denoiser,
//! side by side.

use std::io::Write;

use std::path::PathBuf;

use clap::Args;
use sonic_core::pipeline::{AnimateOptions, SonicPipeline};
use sonic_core::sampling::SvdSchedule;
use sonic_core::schedule::{
    ablate, scheduler, AblationRow, LongVideoScheduler, SyntheticDenoiser, WindowDenoiser,
};
use sonic_core::{DType, Device, Shape};

use crate::animate::{load_models, Bars, Settings};

const DEFAULT_SCHEDULES: [&str; 4] = ["tiles", "shift:alpha=7", "overlap:o=8", "motion-frames:o=4"];

#[derive(Debug, Args)]
pub struct AblateArgs {
    /// A schedule spec; repeat for each schedule to compare (default: tiles, shift:alpha=7,
    /// overlap:o=8, motion-frames:o=4).
    #[arg(long = "schedule")]
    schedules: Vec<String>,
    /// Frames to generate.
    #[arg(long, default_value_t = 150)]
    frames: usize,
    #[arg(long, default_value_t = 25)]
    window: usize,
    #[arg(long, default_value_t = 25)]
    steps: usize,
    #[arg(long, default_value = "euler")]
    sampler: String,
    #[arg(long, default_value_t = 72589)]
    seed: u64,
    /// Latent frame shape for the synthetic denoiser, as CxHxW.
    #[arg(long, default_value = "4x8x8")]
    latent: String,
    /// Run the Sonic pipeline's guided UNet on this portrait (with --audio) instead of the
    /// synthetic denoiser; frames and latent size then follow the inputs.
    #[arg(long, value_name = "FILE", requires = "audio")]
    image: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "image")]
    audio: Option<PathBuf>,
    /// Real weights for the pipeline (see `sonic animate --help`); without, the demo model.
    #[arg(long, value_name = "DIR", requires = "image")]
    weights: Option<PathBuf>,
    /// Short side of the pipeline's working size [default: the model's].
    #[arg(long, requires = "image")]
    size: Option<usize>,
    /// One JSON array on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_shape(s: &str) -> anyhow::Result<Shape> {
    let dims = s
        .split('x')
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--latent {s}: expected CxHxW such as 4x8x8"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if dims.is_empty() || dims.contains(&0) {
        anyhow::bail!("--latent {s}: every dimension must be positive");
    }
    Ok(Shape::new(dims))
}

pub fn run(args: &AblateArgs) -> anyhow::Result<()> {
    let specs: Vec<String> = if args.schedules.is_empty() {
        DEFAULT_SCHEDULES.iter().map(|s| s.to_string()).collect()
    } else {
        args.schedules.clone()
    };
    let schedulers = specs
        .iter()
        .map(|s| scheduler(s))
        .collect::<Result<Vec<Box<dyn LongVideoScheduler>>, _>>()?;
    let sigmas = SvdSchedule::default().sigmas(args.steps);
    let (rows, denoiser) = match (&args.image, &args.audio) {
        (Some(image), Some(audio)) => {
            let settings = Settings {
                weights: args.weights.clone(),
                ..Settings::default()
            };
            let opts = AnimateOptions {
                steps: args.steps,
                sampler: args.sampler.clone(),
                seed: args.seed,
                short_side: args.size,
                ..AnimateOptions::default()
            };
            let mut bars = Bars::new(true);
            let models = load_models(
                &settings,
                &opts.audio_encoder,
                DType::F32,
                Device::Cpu,
                &mut bars,
                false,
            )?;
            let what = if models.trained() {
                "Sonic UNet"
            } else {
                "Sonic pipeline, untrained demo model"
            };
            let pipeline = SonicPipeline::new(models);
            let prepared = pipeline.prepare(image, audio, &opts)?;
            let encoded = pipeline.encode(&prepared, &opts, &mut bars)?;
            let shape = Shape::new(encoded.reference_latent.dims()[1..].to_vec());
            let mut model = pipeline.denoiser(&encoded, &opts)?;
            let window = model.native_window();
            tracing::info!("ablating {} schedules on the {what}", schedulers.len());
            let rows = run_ablation(
                args,
                &schedulers,
                &mut model,
                &sigmas,
                prepared.frames,
                &shape,
                window,
            )?;
            let described = format!(
                "{what}, {}x{} latent, sampler {}, {} frames, window {window}, {} steps, seed {}",
                shape.dims()[1],
                shape.dims()[2],
                args.sampler,
                prepared.frames,
                args.steps,
                args.seed
            );
            (rows, described)
        }
        _ => {
            let shape = parse_shape(&args.latent)?;
            tracing::info!(
                "ablating {} schedules on the synthetic denoiser",
                schedulers.len()
            );
            let mut model = SyntheticDenoiser::default();
            let rows = run_ablation(
                args,
                &schedulers,
                &mut model,
                &sigmas,
                args.frames,
                &shape,
                args.window,
            )?;
            let described = format!(
                "synthetic (window-coupled stand-in), sampler {}, {} frames, window {}, {} steps, seed {}",
                args.sampler, args.frames, args.window, args.steps, args.seed
            );
            (rows, described)
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        writeln!(out, "denoiser: {denoiser}")?;
        print_table(&mut out, &rows)?;
    }
    Ok(())
}

fn run_ablation(
    args: &AblateArgs,
    schedulers: &[Box<dyn LongVideoScheduler>],
    model: &mut dyn WindowDenoiser,
    sigmas: &[f32],
    frames: usize,
    shape: &Shape,
    window: usize,
) -> anyhow::Result<Vec<AblationRow>> {
    Ok(ablate(
        schedulers,
        model,
        &args.sampler,
        sigmas,
        frames,
        shape,
        window,
        args.seed,
    )?)
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

fn print_table(out: &mut impl Write, rows: &[AblationRow]) -> std::io::Result<()> {
    let width = rows
        .iter()
        .map(|r| r.schedule.len())
        .max()
        .unwrap_or(8)
        .max(8);
    writeln!(
        out,
        "{:width$}  {:>6}  {:>11}  {:>8}  {:>6}  {:>10}  {:>8}  {:>8}  {:>8}",
        "schedule",
        "calls",
        "frame-evals",
        "seconds",
        "seam",
        "worst-seam",
        "flicker",
        "2nd-diff",
        "motion"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:width$}  {:>6}  {:>11}  {:>8.3}  {:>6}  {:>10}  {:>8.4}  {:>8.4}  {:>8.4}",
            r.schedule,
            r.denoiser_calls,
            r.frame_evaluations,
            r.seconds,
            opt(r.seam_ratio),
            opt(r.worst_step_seam_ratio),
            r.metrics.flicker,
            r.metrics.second_difference,
            r.metrics.motion
        )?;
    }
    Ok(())
}
