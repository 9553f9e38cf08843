//! `sonic verify` end to end.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

#[test]
fn verify_reports_each_output_and_passes() {
    let out = Command::new(env!("CARGO_BIN_EXE_sonic"))
        .arg("verify")
        .arg(fixtures().join("euler_svd"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["dtype"], "f32");
    let outputs = v[0]["outputs"].as_array().unwrap();
    assert!(outputs.iter().any(|o| o["name"] == "loop_out"));
    assert!(outputs
        .iter()
        .all(|o| o["passed"] == true && o["rel_error"].as_f64().unwrap() < 1e-5));
}

#[test]
fn a_tampered_reference_fails_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("euler_svd");
    for f in ["meta.json", "config.json", "io.safetensors"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let meta = std::fs::read_to_string(dir.path().join("meta.json")).unwrap();
    let tight = meta.replace("\"rel\": 1e-05", "\"rel\": 1e-30");
    assert_ne!(meta, tight, "tolerance field not found");
    std::fs::write(dir.path().join("meta.json"), tight).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sonic"))
        .arg("verify")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL"), "{text}");
}

#[test]
fn unknown_kinds_and_missing_folders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("meta.json"),
        r#"{"kind": "nope", "outputs": ["y"], "tolerance": {"rel": 1e-4}}"#,
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("euler_svd/io.safetensors"),
        dir.path().join("io.safetensors"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sonic"))
        .arg("verify")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no runner for fixture kind `nope`"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_sonic"))
        .args(["verify", "/no/such/fixture"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/fixture"));
}

#[test]
fn dtypes_are_checked_before_any_fixture_runs() {
    for (dtype, said) in [
        ("f64", "f64"),
        ("f16", "f16: the CPU backend computes in f32"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sonic"))
            .arg("verify")
            .arg(fixtures().join("euler_svd"))
            .args(["--dtype", dtype])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{dtype}: {err}");
    }
}
