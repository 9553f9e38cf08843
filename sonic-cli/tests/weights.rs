//! `sonic weights` end to end, on the PyTorch checkpoints in tests/fixtures/pth.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pth")
        .join(name)
}

fn sonic(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sonic"))
        .args(args)
        .output()
        .expect("run sonic")
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn inspect_json_lists_every_tensor_of_a_checkpoint() {
    let out = sonic(&[
        os("weights"),
        os("inspect"),
        fixture("mixed.pth").as_os_str(),
        os("--json"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tensors = v["tensors"].as_array().unwrap();
    assert!(!tensors.is_empty());
    let dtypes: Vec<&str> = tensors
        .iter()
        .map(|t| t["dtype"].as_str().unwrap())
        .collect();
    for wanted in ["f32", "f16", "bf16", "i64"] {
        assert!(dtypes.contains(&wanted), "{wanted} missing from {dtypes:?}");
    }
    let sum: u64 = tensors.iter().map(|t| t["params"].as_u64().unwrap()).sum();
    assert_eq!(v["total_params"].as_u64().unwrap(), sum);
}

#[test]
fn inspect_table_ends_with_a_total() {
    let out = sonic(&[
        os("weights"),
        os("inspect"),
        fixture("nested.pth").as_os_str(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("key"), "{text}");
    assert!(
        text.lines().last().unwrap().contains("parameters"),
        "{text}"
    );
}

#[test]
fn convert_writes_safetensors_equal_to_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("mixed.safetensors");
    let out = sonic(&[
        os("weights"),
        os("convert"),
        fixture("mixed.pth").as_os_str(),
        out_path.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = sonic_core::weights::WeightStore::open(&[&out_path]).unwrap();
    let reference =
        sonic_core::weights::WeightStore::open(&[fixture("expected.safetensors")]).unwrap();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    for key in reference.keys() {
        let (a, b) = (ours.raw(key).unwrap(), reference.raw(key).unwrap());
        assert_eq!(
            (a.dtype, &a.shape, a.bytes()),
            (b.dtype, &b.shape, b.bytes()),
            "{key}"
        );
    }

    let again = sonic(&[
        os("weights"),
        os("convert"),
        fixture("mixed.pth").as_os_str(),
        out_path.as_os_str(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
}

#[test]
fn bad_checkpoints_fail_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, needle) in [
        ("truncated.pth", "truncated.pth"),
        ("not_torch.zip", "not a torch checkpoint"),
        ("code.pth", "os.system"),
        ("legacy.pth", "legacy"),
    ] {
        let out_path = dir.path().join(format!("{name}.safetensors"));
        let out = sonic(&[
            os("weights"),
            os("convert"),
            fixture(name).as_os_str(),
            out_path.as_os_str(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle) && err.contains(name),
            "{name}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(!out_path.exists(), "{name}: output left behind");
    }
}
