//! Model folders as diffusers and transformers write them: `config.json` beside
//! `diffusion_pytorch_model[.variant].safetensors` or `model.safetensors`, possibly sharded
//! with a `*.safetensors.index.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Parses `dir/config.json`.
pub fn read_config<T: DeserializeOwned>(dir: &Path) -> Result<T> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path,
        msg: e.to_string(),
    })
}

const STEMS: [&str; 2] = ["diffusion_pytorch_model", "model"];

/// The weight files of a model folder, preferring `variant` (e.g. "fp16") when given and
/// present. Sharded checkpoints are resolved through their index; a shard named by the
/// index but absent is an error naming it.
pub fn find_weight_files(dir: &Path, variant: Option<&str>) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::file(dir, "model folder not found"));
    }
    let mut names: Vec<String> = Vec::new();
    for stem in STEMS {
        if let Some(v) = variant {
            names.push(format!("{stem}.{v}.safetensors"));
        }
        names.push(format!("{stem}.safetensors"));
    }
    for name in &names {
        let single = dir.join(name);
        if single.is_file() {
            return Ok(vec![single]);
        }
        let index = dir.join(format!("{name}.index.json"));
        if index.is_file() {
            return shards(dir, &index);
        }
    }
    Err(Error::file(
        dir,
        format!("no weights found (looked for {})", names.join(", ")),
    ))
}

fn shards(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: index.to_path_buf(),
        msg: e.to_string(),
    })?;
    let files: BTreeSet<&String> = parsed.weight_map.values().collect();
    files
        .into_iter()
        .map(|f| {
            let path = dir.join(f);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::file(
                    &path,
                    format!("shard listed in {} is missing", index.display()),
                ))
            }
        })
        .collect()
}
