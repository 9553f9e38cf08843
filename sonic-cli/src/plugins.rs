//! `sonic plugins list|inspect`: what plugins are installed and what they provide.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use sonic_core::models::{AudioEncoder, AudioEncoderInfo};
use sonic_plugins::{read_manifest, LoadedPlugin, Manifest};

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
    /// Load one plugin and list the components it provides; each audio encoder is created
    /// with its defaults to show its rate, layers and width (or why the host refuses it).
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// What `inspect` learns by creating one audio encoder with its defaults.
#[derive(Serialize)]
struct EncoderCheck {
    id: String,
    info: Option<AudioEncoderInfo>,
    error: Option<String>,
}

#[derive(Serialize)]
struct Inspected<'a> {
    #[serde(flatten)]
    plugin: &'a LoadedPlugin,
    audio_encoder_checks: Vec<EncoderCheck>,
}

fn check_encoders(plugin: &LoadedPlugin) -> Vec<EncoderCheck> {
    plugin
        .audio_encoders
        .iter()
        .map(|d| match plugin.create_audio_encoder(&d.id, None) {
            Ok(encoder) => EncoderCheck {
                id: d.id.clone(),
                info: Some(encoder.info()),
                error: None,
            },
            Err(e) => EncoderCheck {
                id: d.id.clone(),
                info: None,
                error: Some(e.to_string()),
            },
        })
        .collect()
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
            let checks = check_encoders(&plugin);
            if *json {
                let inspected = Inspected {
                    plugin: &plugin,
                    audio_encoder_checks: checks,
                };
                serde_json::to_writer(&mut out, &inspected)?;
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
            for check in &checks {
                match (&check.info, &check.error) {
                    (Some(i), _) => writeln!(
                        out,
                        "  {:13}  {:16} {} Hz in, {} frames/s, {} layers × {}",
                        "", check.id, i.sample_rate, i.frames_per_second, i.layers, i.hidden_size
                    )?,
                    (None, Some(e)) => writeln!(out, "  {:13}  {:16} refused: {e}", "", check.id)?,
                    (None, None) => {}
                }
            }
        }
    }
    Ok(())
}
