//! `sonic verify`: run reference fixtures and report how far our outputs are from theirs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use sonic_core::verify::{verify, FixtureReport};
use sonic_core::{DType, Device};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Fixture folders (each with meta.json and io.safetensors).
    #[arg(required = true)]
    fixtures: Vec<PathBuf>,
    /// Device to run on: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", env = "SONIC_DEVICE")]
    device: String,
    /// Weight and activation storage: f32, f16 or bf16 (f16/bf16 on CUDA only). Half
    /// precision passes within its own bound (rel 2e-2 for f16, 6e-2 for bf16) or the
    /// fixture's f32 tolerance.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// One JSON array of reports on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    let device: Device = args.device.parse()?;
    let dtype: DType = args.dtype.parse().map_err(anyhow::Error::msg)?;
    let reports = args
        .fixtures
        .iter()
        .map(|dir| verify(dir, device, dtype))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &reports)?;
        writeln!(out)?;
    } else {
        for report in &reports {
            print_report(&mut out, report)?;
        }
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.fixture.display().to_string())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} fixtures failed: {}",
            failed.len(),
            reports.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn print_report(out: &mut impl Write, r: &FixtureReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{} ({}, {}, {})",
        r.fixture.display(),
        r.kind,
        r.device,
        r.dtype
    )?;
    for o in &r.outputs {
        writeln!(
            out,
            "  {:4}  {:24}  rel {:.3e}  max abs {:.3e}",
            if o.passed { "ok" } else { "FAIL" },
            o.name,
            o.rel_error,
            o.max_abs_error
        )?;
    }
    Ok(())
}
