use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use half::{bf16, f16};
use safetensors::{Dtype, View};

use super::*;
use crate::backend::cpu::F32Buf;
use crate::backend::{CpuStorage, Storage};
use crate::{DType, Device, Error};

struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        (&self.data[..]).into()
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn f32_raw(shape: &[usize], start: f32) -> Raw {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .flat_map(|i| (start + i as f32).to_le_bytes())
        .collect();
    Raw {
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        data,
    }
}

fn write(path: &Path, tensors: &[(&str, Raw)]) {
    let map: HashMap<String, &Raw> = tensors.iter().map(|(k, v)| (k.to_string(), v)).collect();
    safetensors::serialize_to_file(map, None, path).unwrap();
}

fn sample_file(dir: &Path) -> PathBuf {
    let path = dir.join("w.safetensors");
    let halves: Vec<u8> = [0.5f32, -1.25, 3.0]
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    let brains: Vec<u8> = [2.0f32, -0.375]
        .iter()
        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
        .collect();
    write(
        &path,
        &[
            ("down_blocks.0.conv.weight", f32_raw(&[2, 3], 0.0)),
            ("down_blocks.0.conv.bias", f32_raw(&[2], 10.0)),
            (
                "norm.weight",
                Raw {
                    dtype: Dtype::F16,
                    shape: vec![3],
                    data: halves,
                },
            ),
            (
                "norm.bias",
                Raw {
                    dtype: Dtype::BF16,
                    shape: vec![2],
                    data: brains,
                },
            ),
            (
                "position_ids",
                Raw {
                    dtype: Dtype::I64,
                    shape: vec![2],
                    data: vec![0; 16],
                },
            ),
        ],
    );
    path
}

fn builder(paths: &[PathBuf]) -> VarBuilder {
    VarBuilder::new(
        Arc::new(WeightStore::open(paths).unwrap()),
        DType::F32,
        Device::Cpu,
    )
}

#[test]
fn prefixes_scope_keys_and_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    let conv = vb.pp("down_blocks").pp(0).pp("conv");
    assert_eq!(conv.key("weight"), "down_blocks.0.conv.weight");
    let w = conv.get([2, 3], "weight").unwrap();
    assert_eq!(w.to_vec().unwrap(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        conv.get([2], "bias").unwrap().to_vec().unwrap(),
        vec![10.0, 11.0]
    );
}

#[test]
fn half_types_convert_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    let w = vb.pp("norm").get([3], "weight").unwrap();
    assert_eq!(w.dtype(), DType::F32);
    assert_eq!(w.to_vec().unwrap(), vec![0.5, -1.25, 3.0]);
    assert_eq!(
        vb.pp("norm").get([2], "bias").unwrap().to_vec().unwrap(),
        vec![2.0, -0.375]
    );
    let store = WeightStore::open(&[sample_file(dir.path())]).unwrap();
    let kept = VarBuilder::new(Arc::new(store), DType::F16, Device::Cpu);
    assert_eq!(
        kept.pp("norm").get([3], "weight").unwrap().dtype(),
        DType::F16
    );
}

#[test]
fn aligned_f32_weights_are_read_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    let w = vb.get([2, 3], "down_blocks.0.conv.weight").unwrap();
    assert!(matches!(
        w.storage(),
        Storage::Cpu(CpuStorage::F32(F32Buf::Mapped { .. }))
    ));
}

#[test]
fn missing_key_names_it_and_suggests_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    let err = vb
        .pp("up_blocks")
        .pp(0)
        .pp("conv")
        .get([2, 3], "weight")
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MissingWeight { .. }));
    assert!(msg.contains("up_blocks.0.conv.weight"), "{msg}");
    assert!(msg.contains("down_blocks.0.conv.weight"), "{msg}");
    assert_eq!(
        vb.report().missing,
        vec!["up_blocks.0.conv.weight".to_string()]
    );
}

#[test]
fn shape_mismatch_names_key_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    let err = vb.get([3, 2], "down_blocks.0.conv.weight").unwrap_err();
    assert_eq!(
        err.to_string(),
        "weight `down_blocks.0.conv.weight` has shape [2, 3], expected [3, 2]"
    );
    let report = vb.report();
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(report.mismatched[0].expected, vec![3, 2]);
    assert!(!report.is_clean());
}

#[test]
fn integer_tensors_are_refused_as_floats() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    let err = vb.get([2], "position_ids").unwrap_err();
    assert!(matches!(err, Error::WeightDType { .. }), "{err}");
}

#[test]
fn report_lists_unused_keys() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    vb.pp("norm").get([3], "weight").unwrap();
    vb.pp("norm").get([2], "bias").unwrap();
    let report = vb.report();
    assert_eq!(report.used, 2);
    assert!(report.is_clean());
    assert_eq!(
        report.unused,
        vec![
            "down_blocks.0.conv.bias",
            "down_blocks.0.conv.weight",
            "position_ids"
        ]
    );
    assert_eq!(
        report.unused_outside(&["down_blocks."]),
        vec!["position_ids"]
    );
    assert!(report.to_string().starts_with("2 tensors used; 3 unused: "));
}

#[test]
fn get_opt_is_none_only_when_absent() {
    let dir = tempfile::tempdir().unwrap();
    let vb = builder(&[sample_file(dir.path())]);
    assert!(vb.get_opt([2], "nope").unwrap().is_none());
    assert!(vb
        .get_opt([2], "down_blocks.0.conv.bias")
        .unwrap()
        .is_some());
    assert!(vb.get_opt([5], "down_blocks.0.conv.bias").is_err());
    assert!(vb.pp("down_blocks").contains_prefix());
    assert!(!vb.pp("mid_block").contains_prefix());
}

#[test]
fn duplicate_keys_across_files_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.safetensors");
    let b = dir.path().join("b.safetensors");
    write(&a, &[("x", f32_raw(&[1], 0.0))]);
    write(&b, &[("x", f32_raw(&[1], 1.0))]);
    let err = WeightStore::open(&[a, b]).unwrap_err().to_string();
    assert!(
        err.contains("b.safetensors") && err.contains("a.safetensors") && err.contains("`x`"),
        "{err}"
    );
}

#[test]
fn corrupt_safetensors_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let err = WeightStore::open(&[&path]).unwrap_err().to_string();
    assert!(
        err.contains("bad.safetensors") && err.contains("not a valid safetensors file"),
        "{err}"
    );
    let missing = WeightStore::open(&[dir.path().join("absent.safetensors")])
        .unwrap_err()
        .to_string();
    assert!(missing.contains("absent.safetensors"), "{missing}");
}

#[test]
fn diffusers_folder_prefers_the_variant() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("diffusion_pytorch_model.safetensors"),
        &[("a", f32_raw(&[1], 0.0))],
    );
    write(
        &dir.path().join("diffusion_pytorch_model.fp16.safetensors"),
        &[("a", f32_raw(&[1], 1.0))],
    );
    let plain = find_weight_files(dir.path(), None).unwrap();
    assert!(plain[0].ends_with("diffusion_pytorch_model.safetensors"));
    let fp16 = find_weight_files(dir.path(), Some("fp16")).unwrap();
    assert!(fp16[0].ends_with("diffusion_pytorch_model.fp16.safetensors"));
    let other = find_weight_files(dir.path(), Some("bf16")).unwrap();
    assert_eq!(other, plain);
}

#[test]
fn sharded_folders_resolve_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("model-00001-of-00002.safetensors"),
        &[("a", f32_raw(&[2], 0.0))],
    );
    write(
        &dir.path().join("model-00002-of-00002.safetensors"),
        &[("b", f32_raw(&[3], 5.0))],
    );
    let index = r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let files = find_weight_files(dir.path(), None).unwrap();
    assert_eq!(files.len(), 2);
    let vb = builder(&files);
    assert_eq!(
        vb.get([3], "b").unwrap().to_vec().unwrap(),
        vec![5.0, 6.0, 7.0]
    );

    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = find_weight_files(dir.path(), None).unwrap_err().to_string();
    assert!(
        err.contains("model-00002-of-00002.safetensors") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn folder_without_weights_or_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = find_weight_files(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("no weights found"), "{err}");
    let err = read_config::<serde_json::Value>(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    std::fs::write(dir.path().join("config.json"), "{").unwrap();
    let err = read_config::<serde_json::Value>(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid config"), "{err}");
}

#[test]
fn conversion_keeps_keys_dtypes_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = WeightStore::open(&[sample_file(dir.path())]).unwrap();
    let out = dir.path().join("copy.safetensors");
    write_safetensors(&src, &out).unwrap();
    let copy = WeightStore::open(&[&out]).unwrap();
    assert_eq!(
        copy.keys().collect::<Vec<_>>(),
        src.keys().collect::<Vec<_>>()
    );
    for key in src.keys() {
        let (a, b) = (src.raw(key).unwrap(), copy.raw(key).unwrap());
        assert_eq!(
            (a.dtype, &a.shape, a.bytes()),
            (b.dtype, &b.shape, b.bytes()),
            "{key}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn conversion_into_a_missing_folder_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let src = WeightStore::open(&[sample_file(dir.path())]).unwrap();
    let out = dir.path().join("no/such/dir/out.safetensors");
    let err = write_safetensors(&src, &out).unwrap_err().to_string();
    assert!(err.contains("out.safetensors"), "{err}");
    assert!(!out.exists());
}
