//! Plugins from the command line: the C example sampler drives `sonic ablate`, `sonic plugins
//! list` reads manifests without loading code, and `inspect` loads one library.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sonic(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sonic"))
        .args(args)
        .env_remove("SONIC_PLUGIN_PATH")
        .output()
        .unwrap()
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn c_euler(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sonic-plugins");
    let out = dir.join("libsonic_euler_c.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c99", "-shared", "-fPIC", "-O1", "-I"])
        .arg(root.join("include"))
        .arg(root.join("examples/sampler-c/euler.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("the C compiler `{cc}` is needed for this test: {e}"));
    assert!(status.success());
    out
}

#[test]
fn a_plugin_sampler_runs_in_ablate_and_matches_euler() {
    let dir = tempfile::tempdir().unwrap();
    let lib = c_euler(dir.path());
    let run = |sampler: &str| {
        let out = sonic(&[
            os("ablate"),
            os("--plugin"),
            lib.as_os_str(),
            os("--sampler"),
            os(sampler),
            os("--schedule"),
            os("shift"),
            os("--frames"),
            os("40"),
            os("--steps"),
            os("5"),
            os("--json"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["metrics"]["motion"].as_f64().unwrap()
    };
    let (plugin, builtin) = (run("euler-c"), run("euler"));
    assert!(
        (plugin - builtin).abs() <= 1e-6 * builtin.abs(),
        "{plugin} vs {builtin}"
    );
}

#[test]
fn list_reads_manifests_without_loading_and_inspect_loads() {
    let dir = tempfile::tempdir().unwrap();
    let lib = c_euler(dir.path());
    // Not a library at all: `list` must not try to load it.
    std::fs::write(dir.path().join("libsonic_fake.so"), "not a library").unwrap();
    std::fs::write(
        dir.path().join("libsonic_fake.toml"),
        "name = \"fake\"\nversion = \"2.0.0\"\nabi_major = 1\ncomponents = [\"fake-sampler\"]\n",
    )
    .unwrap();
    let out = sonic(&[
        os("plugins"),
        os("list"),
        os("--plugin"),
        dir.path().as_os_str(),
        os("--json"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["manifest"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["fake"]);
    assert_eq!(v.as_array().unwrap().len(), 2);

    let out = sonic(&[os("plugins"), os("inspect"), lib.as_os_str(), os("--json")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["samplers"][0]["id"], "euler-c");

    let out = sonic(&[
        os("plugins"),
        os("inspect"),
        dir.path().join("libsonic_fake.so").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("libsonic_fake.so"));
}

#[test]
fn a_broken_explicit_plugin_stops_the_run_but_no_plugins_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("libsonic_broken.so");
    std::fs::write(&bad, "garbage").unwrap();
    let out = sonic(&[
        os("plan"),
        os("--frames"),
        os("10"),
        os("--plugin"),
        bad.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("libsonic_broken.so"));
    let out = sonic(&[
        os("plan"),
        os("--frames"),
        os("10"),
        os("--plugin"),
        bad.as_os_str(),
        os("--no-plugins"),
    ]);
    assert!(out.status.success());
}
