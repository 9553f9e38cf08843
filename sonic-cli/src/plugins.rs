//! `sonic plugins list|inspect`: what plugins are installed and what they provide.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use sonic_plugins::{read_manifest, Manifest};

use crate::plugin_args::PluginArgs;

#[derive(Debug, Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    command: PluginsCommand,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// List plugin files on the search path with their manifests, without loading any code.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Load one plugin and list the components it provides.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Listed {
    path: PathBuf,
    manifest: Option<Manifest>,
    manifest_error: Option<String>,
}

pub fn run(args: &PluginsArgs, search: &PluginArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match &args.command {
        PluginsCommand::List { json } => {
            let listed: Vec<Listed> = sonic_plugins::candidate_files(&search.search_path())
                .into_iter()
                .map(|path| match read_manifest(&path) {
                    Ok(manifest) => Listed {
                        path,
                        manifest,
                        manifest_error: None,
                    },
                    Err(e) => Listed {
                        path,
                        manifest: None,
                        manifest_error: Some(e.to_string()),
                    },
                })
                .collect();
            if *json {
                serde_json::to_writer(&mut out, &listed)?;
                writeln!(out)?;
                return Ok(());
            }
            if listed.is_empty() {
                writeln!(
                    out,
                    "no plugin files found (see `sonic doctor` for the search path)"
                )?;
            }
            for l in &listed {
                match (&l.manifest, &l.manifest_error) {
                    (Some(m), _) => writeln!(
                        out,
                        "{}  {} {} (ABI {}.{}) {}  [{}]",
                        l.path.display(),
                        m.name,
                        m.version,
                        m.abi_major,
                        m.abi_minor,
                        m.components.join(", "),
                        m.kinds.join(", ")
                    )?,
                    (None, Some(e)) => writeln!(out, "{}  bad manifest: {e}", l.path.display())?,
                    (None, None) => writeln!(
                        out,
                        "{}  no manifest (`sonic plugins inspect` loads it)",
                        l.path.display()
                    )?,
                }
            }
        }
        PluginsCommand::Inspect { path, json } => {
            let plugin = sonic_plugins::load(path)?;
            if *json {
                serde_json::to_writer(&mut out, &plugin)?;
                writeln!(out)?;
                return Ok(());
            }
            writeln!(
                out,
                "{}  ABI {}.{}, needs sonic >= {}",
                plugin.path.display(),
                plugin.abi_major,
                plugin.abi_minor,
                plugin.host_min_version
            )?;
            for (kind, list) in [
                ("sampler", &plugin.samplers),
                ("audio encoder", &plugin.audio_encoders),
            ] {
                for d in list {
                    writeln!(
                        out,
                        "  {kind:13}  {:16} {} {} ({}): {}",
                        d.id, d.name, d.version, d.vendor, d.description
                    )?;
                }
            }
        }
    }
    Ok(())
}
