//! The `sonic` command-line tool. Each subcommand lives in its own module; this file only
//! parses arguments, sets up logging and dispatches.

mod doctor;
mod logging;
mod plugin_args;
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
    /// Report the build, CPU, CUDA and plugin environment.
    Doctor(doctor::DoctorArgs),
    /// Inspect weight files and convert PyTorch checkpoints to safetensors.
    Weights(weights::WeightsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
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
        Command::Doctor(args) => doctor::run(args, &cli.plugins),
        Command::Weights(args) => weights::run(args),
    }
}
