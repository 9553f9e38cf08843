//! `sonic ablate`: several long-video schedules on the same inputs, seed and denoiser,
//! side by side.

use std::io::Write;

use clap::Args;
use sonic_core::sampling::SvdSchedule;
use sonic_core::schedule::{ablate, scheduler, AblationRow, LongVideoScheduler, SyntheticDenoiser};
use sonic_core::Shape;

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
    let shape = parse_shape(&args.latent)?;
    tracing::info!(
        "ablating {} schedules on the synthetic denoiser",
        schedulers.len()
    );
    let mut model = SyntheticDenoiser::default();
    let rows = ablate(
        &schedulers,
        &mut model,
        &args.sampler,
        &sigmas,
        args.frames,
        &shape,
        args.window,
        args.seed,
    )?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "denoiser: synthetic (window-coupled stand-in), sampler {}, {} frames, window {}, {} steps, seed {}",
            args.sampler, args.frames, args.window, args.steps, args.seed
        )?;
        print_table(&mut out, &rows)?;
    }
    Ok(())
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
