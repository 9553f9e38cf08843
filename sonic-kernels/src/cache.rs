//! Compiled kernels on disk, keyed by what determines the binary: the source and headers,
//! the NVRTC options, the architecture and the NVRTC version. A changed kernel or a new
//! NVRTC therefore never reuses a stale binary, and an unchanged one skips NVRTC (seconds
//! for the attention variants) on every later start.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::KernelError;
use crate::nvrtc::{self, Unit};
use crate::registry::{Variant, HEADERS};

/// Environment variable naming the cache directory; empty disables the cache.
pub const CACHE_DIR_ENV: &str = "SONIC_KERNEL_CACHE";

/// The cache directory: `$SONIC_KERNEL_CACHE`, else the platform cache dir
/// (`~/.cache/sonic/kernels` on Linux). `None` means compile every time.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => directories::ProjectDirs::from("", "", "sonic")
            .map(|dirs| dirs.cache_dir().join("kernels")),
    }
}

/// Hex SHA-256 of everything that determines the compiled binary.
pub fn cache_key(variant: &Variant, arch: &str, nvrtc_version: (i32, i32)) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed, so field boundaries cannot shift between different inputs.
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(variant.kernel.source().as_bytes());
    for (name, text) in HEADERS {
        field(name.as_bytes());
        field(text.as_bytes());
    }
    for option in variant.options() {
        field(option.as_bytes());
    }
    field(arch.as_bytes());
    field(format!("{}.{}", nvrtc_version.0, nvrtc_version.1).as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles one variant with NVRTC (no cache).
pub fn compile(variant: &Variant, arch: &str) -> Result<nvrtc::Compiled, KernelError> {
    let name = variant.name();
    let options = variant.options();
    let unit = Unit {
        name: &name,
        source: variant.kernel.source(),
        headers: HEADERS,
        options: &options,
    };
    nvrtc::compile(&unit, arch)
}

/// The CUBIN of `variant` for `arch` (e.g. `sm_90`), from the cache when present.
pub fn cubin(variant: &Variant, arch: &str) -> Result<Vec<u8>, KernelError> {
    let Some(dir) = cache_dir() else {
        return Ok(compile(variant, arch)?.cubin);
    };
    let key = cache_key(variant, arch, nvrtc::version()?);
    let path = dir.join(format!("{}.{arch}.{}.cubin", variant.name(), &key[..16]));
    if let Ok(bytes) = std::fs::read(&path) {
        if !bytes.is_empty() {
            return Ok(bytes);
        }
    }
    let cubin = compile(variant, arch)?.cubin;
    store(&dir, &path, &cubin)?;
    Ok(cubin)
}

/// Writes through a temporary file and a rename, so a concurrent reader never sees half a
/// binary.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), KernelError> {
    let io = |source| KernelError::Cache {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::variants;

    #[test]
    fn key_depends_on_variant_arch_and_version() {
        let all = variants();
        let (a, b) = (&all[0], &all[1]);
        let base = cache_key(a, "sm_90", (12, 9));
        assert_eq!(base, cache_key(a, "sm_90", (12, 9)));
        assert_ne!(base, cache_key(b, "sm_90", (12, 9)));
        assert_ne!(base, cache_key(a, "sm_80", (12, 9)));
        assert_ne!(base, cache_key(a, "sm_90", (12, 8)));
        assert_eq!(base.len(), 64);
    }

    #[test]
    fn store_replaces_atomically() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("k.cubin");
        store(dir.path(), &path, b"first").expect("first write");
        store(dir.path(), &path, b"second").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read back"), b"second");
        let leftovers = std::fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(leftovers, 1);
    }
}
