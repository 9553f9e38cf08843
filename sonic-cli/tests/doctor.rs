//! Runs the built `sonic` binary. Every run gets its own environment so the results do not
//! depend on the developer's shell or on other tests.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The binary with an environment of the test's choosing.
fn sonic(plugin_env: &Path, data_home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sonic"));
    command
        .env("SONIC_PLUGIN_PATH", plugin_env)
        .env("XDG_DATA_HOME", data_home)
        .env("RAYON_NUM_THREADS", "3")
        .env_remove("SONIC_NVRTC_PATH")
        .env_remove("SONIC_LOG")
        .env_remove("RUST_LOG");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the sonic binary runs")
}

fn json_stdout(output: Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {stderr}",
        output.status
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object on one line: {stdout}"
    );
    serde_json::from_str(&stdout).expect("stdout is JSON")
}

fn doctor_json(args: &[&str], plugin_env: &Path, data_home: &Path) -> Value {
    json_stdout(run(sonic(plugin_env, data_home).args(args)))
}

#[test]
fn json_report_has_the_documented_fields() {
    let plugin_dir = tempfile::tempdir().unwrap();
    let data_home = tempfile::tempdir().unwrap();
    let plugin_file = format!(
        "{}sonic_example{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    std::fs::write(plugin_dir.path().join(&plugin_file), b"never loaded").unwrap();

    let report = doctor_json(&["doctor", "--json"], plugin_dir.path(), data_home.path());

    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["target"]["arch"], std::env::consts::ARCH);
    assert_eq!(report["target"]["os"], std::env::consts::OS);
    assert!(report["target"]["triple"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(report["build_profile"].is_string());

    let cpu = &report["cpu"];
    assert_eq!(cpu["rayon_threads"], 3, "RAYON_NUM_THREADS is honoured");
    assert!(cpu["logical_cores"].as_u64().is_none_or(|n| n >= 1));
    assert!(cpu["features"].is_object());

    let cuda = &report["cuda"];
    assert_eq!(
        cuda["backend_compiled"],
        sonic_kernels::CUDA_BACKEND_COMPILED
    );
    let driver = &cuda["driver"];
    assert!(driver["devices"].is_array());
    if driver["library"].is_null() {
        // Machines without the driver: the absence is explained, not fatal.
        assert!(driver["version"].is_null());
        assert!(driver["error"]
            .as_str()
            .is_some_and(|e| e.contains("CUDA driver")));
    }
    let nvrtc = &cuda["nvrtc"];
    if nvrtc["library"].is_null() {
        assert!(nvrtc["error"].is_string());
    }

    let plugins = &report["plugins"];
    assert_eq!(plugins["disabled"], false);
    let entries = plugins["entries"].as_array().unwrap();
    assert_eq!(entries[0]["source"], "env");
    assert_eq!(entries[0]["path"], plugin_dir.path().to_str().unwrap());
    assert_eq!(entries[0]["exists"], true);
    assert_eq!(entries.last().unwrap()["source"], "user");
    if cfg!(target_os = "linux") {
        let user_dir = data_home.path().join("sonic").join("plugins");
        assert_eq!(entries.last().unwrap()["path"], user_dir.to_str().unwrap());
        assert_eq!(entries.last().unwrap()["exists"], false);
    }
    let files = plugins["candidate_files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].as_str().unwrap().ends_with(&plugin_file));
}

#[test]
fn plugin_flags_shape_the_search_path() {
    let plugin_dir = tempfile::tempdir().unwrap();
    let data_home = tempfile::tempdir().unwrap();
    let cli_dir = tempfile::tempdir().unwrap();
    let cli_path = cli_dir.path().to_str().unwrap();

    let report = doctor_json(
        &["doctor", "--json", "--plugin", cli_path],
        plugin_dir.path(),
        data_home.path(),
    );
    let entries = report["plugins"]["entries"].as_array().unwrap();
    let sources: Vec<&str> = entries
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["cli", "env", "user"]);
    assert_eq!(entries[0]["path"], cli_path);

    let report = doctor_json(
        &["--no-plugins", "doctor", "--json"],
        plugin_dir.path(),
        data_home.path(),
    );
    assert_eq!(report["plugins"]["disabled"], true);
    assert_eq!(report["plugins"]["entries"], Value::Array(Vec::new()));
}

#[test]
fn human_report_starts_with_the_version_line() {
    let plugin_dir = tempfile::tempdir().unwrap();
    let data_home = tempfile::tempdir().unwrap();
    let output = run(sonic(plugin_dir.path(), data_home.path()).arg("doctor"));
    assert!(output.status.success(), "exit {:?}", output.status);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let first_line = stdout.lines().next().unwrap_or_default();
    let expected = format!("sonic {} ", env!("CARGO_PKG_VERSION"));
    assert!(first_line.starts_with(&expected), "{stdout}");
    assert!(
        stdout.lines().any(|line| line.starts_with("cuda driver ")),
        "{stdout}"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let plugin_dir = tempfile::tempdir().unwrap();
    let mut command = sonic(plugin_dir.path(), plugin_dir.path());
    let output = run(command.args(["doctor", "--no-such-flag"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}

#[test]
fn a_wrong_nvrtc_override_is_reported_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("libnvrtc.so.12");
    let output = run(sonic(dir.path(), dir.path())
        .env("SONIC_NVRTC_PATH", &missing)
        .args(["doctor", "--json"]));
    let nvrtc = &json_stdout(output)["cuda"]["nvrtc"];
    assert!(nvrtc["library"].is_null());
    let error = nvrtc["error"].as_str().unwrap();
    assert!(error.contains("SONIC_NVRTC_PATH"), "{error}");
    assert!(error.contains(missing.to_str().unwrap()), "{error}");
}
