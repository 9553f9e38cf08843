//! The `sonic` command-line tool. Each subcommand lives in its own module; this file only
//! parses arguments, sets up logging and dispatches.

mod ablate;
mod animate;
mod doctor;
mod logging;
mod plan;
mod plugin_args;
mod plugins;
mod verify;
mod weights;

use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

use crate::plugin_args::PluginArgs;

#[derive(Debug, Parser)]
#[command(
    name = "sonic",
    version,
    about = "Talking-portrait video generation (Sonic)"
)]
struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    /// Only log errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(flatten)]
    plugins: PluginArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Animate a portrait with an audio track into a video.
    Animate(Box<animate::AnimateArgs>),
    /// Report the build, CPU, CUDA and plugin environment.
    Doctor(doctor::DoctorArgs),
    /// Inspect weight files and convert PyTorch checkpoints to safetensors.
    Weights(weights::WeightsArgs),
    /// Show the windows a long-video schedule runs at each step, and its cost.
    Plan(plan::PlanArgs),
    /// Compare long-video schedules on the same inputs, seed and denoiser.
    Ablate(ablate::AblateArgs),
    /// Run reference fixtures and report the error of each output.
    Verify(verify::VerifyArgs),
    /// List installed plugins or inspect one.
    Plugins(plugins::PluginsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    sonic_kernels::register_backends();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Animate(args) => {
            cli.plugins.activate()?;
            animate::run(args, cli.quiet)
        }
        Command::Doctor(args) => doctor::run(args, &cli.plugins),
        Command::Weights(args) => weights::run(args),
        Command::Plan(args) => {
            cli.plugins.activate()?;
            plan::run(args)
        }
        Command::Ablate(args) => {
            cli.plugins.activate()?;
            ablate::run(args)
        }
        Command::Verify(args) => verify::run(args),
        Command::Plugins(args) => plugins::run(args, &cli.plugins),
    }
}
