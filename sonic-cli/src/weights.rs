//! `sonic weights`: look inside weight files and convert PyTorch checkpoints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;
use sonic_core::weights::{find_weight_files, write_safetensors, WeightStore};

#[derive(Debug, Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    command: WeightsCommand,
}

#[derive(Debug, Subcommand)]
enum WeightsCommand {
    /// List keys, dtypes, shapes and parameter counts of weight files or a model folder.
    Inspect {
        /// safetensors files, PyTorch checkpoints (.pth/.pt/.bin) or a diffusers/transformers folder.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// One JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Write every tensor of a PyTorch checkpoint (or any weight file) to one safetensors file.
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// Replace OUTPUT if it exists.
        #[arg(long)]
        overwrite: bool,
    },
}

pub fn run(args: &WeightsArgs) -> anyhow::Result<()> {
    match &args.command {
        WeightsCommand::Inspect { paths, json } => inspect(paths, *json),
        WeightsCommand::Convert {
            input,
            output,
            overwrite,
        } => convert(input, output, *overwrite),
    }
}

fn open(paths: &[PathBuf]) -> anyhow::Result<WeightStore> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(find_weight_files(path, None)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(WeightStore::open(&files)?)
}

#[derive(Serialize)]
struct Entry {
    key: String,
    dtype: String,
    shape: Vec<usize>,
    params: usize,
}

#[derive(Serialize)]
struct Inventory {
    files: Vec<PathBuf>,
    tensors: Vec<Entry>,
    total_params: usize,
    total_bytes: usize,
    params_by_dtype: BTreeMap<String, usize>,
}

fn inventory(store: &WeightStore) -> Inventory {
    let mut tensors = Vec::new();
    let (mut total_params, mut total_bytes) = (0, 0);
    let mut params_by_dtype = BTreeMap::new();
    for key in store.keys() {
        let Some(raw) = store.raw(key) else { continue };
        let params = raw.shape.iter().product::<usize>();
        let dtype = format!("{:?}", raw.dtype).to_lowercase();
        total_params += params;
        total_bytes += raw.bytes().len();
        *params_by_dtype.entry(dtype.clone()).or_insert(0) += params;
        tensors.push(Entry {
            key: key.to_string(),
            dtype,
            shape: raw.shape.clone(),
            params,
        });
    }
    Inventory {
        files: store.files().to_vec(),
        tensors,
        total_params,
        total_bytes,
        params_by_dtype,
    }
}

fn inspect(paths: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let inv = inventory(&open(paths)?);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &inv)?;
        writeln!(out)?;
        return Ok(());
    }
    let key_width = inv
        .tensors
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(3)
        .max(3);
    writeln!(
        out,
        "{:key_width$}  {:5}  {:>12}  shape",
        "key", "dtype", "params"
    )?;
    for e in &inv.tensors {
        writeln!(
            out,
            "{:key_width$}  {:5}  {:>12}  {:?}",
            e.key, e.dtype, e.params, e.shape
        )?;
    }
    let by_dtype: Vec<String> = inv
        .params_by_dtype
        .iter()
        .map(|(d, n)| format!("{d} {n}"))
        .collect();
    writeln!(
        out,
        "{} tensors, {} parameters ({}), {:.1} MiB",
        inv.tensors.len(),
        inv.total_params,
        by_dtype.join(", "),
        inv.total_bytes as f64 / (1 << 20) as f64
    )?;
    Ok(())
}

fn convert(input: &Path, output: &Path, overwrite: bool) -> anyhow::Result<()> {
    if output.extension().is_none_or(|e| e != "safetensors") {
        bail!(
            "{}: the output must be a .safetensors file",
            output.display()
        );
    }
    if output.exists() && !overwrite {
        bail!(
            "{}: already exists (pass --overwrite to replace it)",
            output.display()
        );
    }
    let store = WeightStore::open(&[input])?;
    if store.is_empty() {
        bail!("{}: holds no tensors", input.display());
    }
    write_safetensors(&store, output).with_context(|| format!("converting {}", input.display()))?;
    eprintln!("wrote {} tensors to {}", store.len(), output.display());
    Ok(())
}
