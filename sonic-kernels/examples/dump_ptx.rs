//! Writes the NVRTC PTX of every kernel variant for every CI architecture into a folder,
//! as `<variant>.<arch>.ptx`; `scripts/kernels/resources.sh` runs ptxas on them.
//!
//! Usage: `cargo run -p sonic-kernels --example dump_ptx -- <out-dir>`

use std::path::PathBuf;
use std::process::ExitCode;

use sonic_kernels::registry::CI_ARCHS;
use sonic_kernels::{cache, variants};

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: dump_ptx <out-dir>");
        return ExitCode::from(2);
    };
    if let Err(err) = std::fs::create_dir_all(&dir) {
        eprintln!("{}: {err}", dir.display());
        return ExitCode::FAILURE;
    }
    for arch in CI_ARCHS {
        for variant in variants() {
            let compiled = match cache::compile(&variant, arch) {
                Ok(compiled) => compiled,
                Err(err) => {
                    eprintln!("{err}");
                    return ExitCode::FAILURE;
                }
            };
            let path = dir.join(format!("{}.{arch}.ptx", variant.name()));
            if let Err(err) = std::fs::write(&path, compiled.ptx) {
                eprintln!("{}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
