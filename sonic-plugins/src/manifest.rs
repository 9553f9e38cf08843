//! The optional sidecar manifest: `libsonic_x.so` is described by `libsonic_x.toml` beside
//! it, so `sonic plugins list` can show a plugin without running any of its code, and the
//! library's hash is checked before it is loaded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::PluginError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub abi_major: u32,
    #[serde(default)]
    pub abi_minor: u32,
    /// Factory kinds provided, e.g. ["sonic.sampler/1"].
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Component ids provided, e.g. ["dpmpp-2m-sde"].
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// Lower-case hex sha256 of the library file.
    pub sha256: Option<String>,
}

/// Where the manifest of `library` would be.
pub fn manifest_path(library: &Path) -> PathBuf {
    library.with_extension("toml")
}

/// The manifest beside `library`, if there is one.
pub fn read_manifest(library: &Path) -> Result<Option<Manifest>, PluginError> {
    let path = manifest_path(library);
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |msg: String| PluginError::Manifest {
        path: library.to_path_buf(),
        manifest: path.clone(),
        msg,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

pub fn sha256_hex(path: &Path) -> Result<String, PluginError> {
    let bytes = std::fs::read(path).map_err(|e| PluginError::Load {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks the library against its manifest's hash, when it declares one.
pub fn check_hash(library: &Path, manifest: &Manifest) -> Result<(), PluginError> {
    if let Some(expected) = &manifest.sha256 {
        let found = sha256_hex(library)?;
        if !found.eq_ignore_ascii_case(expected) {
            return Err(PluginError::HashMismatch {
                path: library.to_path_buf(),
                expected: expected.clone(),
                found,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_read_and_hashes_checked() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libsonic_demo.so");
        std::fs::write(&lib, b"not really a library").unwrap();
        assert_eq!(read_manifest(&lib).unwrap(), None);
        let hash = sha256_hex(&lib).unwrap();
        let text = format!("name = \"demo\"\nversion = \"1.0.0\"\nabi_major = 1\nkinds = [\"sonic.sampler/1\"]\nsha256 = \"{hash}\"\n");
        std::fs::write(manifest_path(&lib), text).unwrap();
        let m = read_manifest(&lib).unwrap().unwrap();
        assert_eq!(
            (m.name.as_str(), m.abi_major, m.kinds.len()),
            ("demo", 1, 1)
        );
        check_hash(&lib, &m).unwrap();
        std::fs::write(&lib, b"tampered").unwrap();
        assert!(matches!(
            check_hash(&lib, &m),
            Err(PluginError::HashMismatch { .. })
        ));
        std::fs::write(manifest_path(&lib), "name = 3").unwrap();
        assert!(read_manifest(&lib)
            .unwrap_err()
            .to_string()
            .contains("libsonic_demo.toml"));
    }
}
