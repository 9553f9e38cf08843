//! Helpers for the integration tests: locating fixtures and comparing tensors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sonic_core::weights::WeightStore;
use sonic_core::{DType, Device, Shape, Tensor};

/// `tests/fixtures/<name>`.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Every tensor of a safetensors file, as f32 on the CPU.
pub fn load_tensors(path: &std::path::Path) -> BTreeMap<String, Tensor> {
    let store = WeightStore::open(&[path]).unwrap_or_else(|e| panic!("{e}"));
    store
        .keys()
        .map(|k| {
            let shape = Shape::new(store.raw(k).expect("listed key").shape.clone());
            (
                k.to_string(),
                store.load(k, &shape, DType::F32, Device::Cpu).unwrap(),
            )
        })
        .collect()
}

/// ‖a − b‖ / ‖b‖ and max |a − b|, after checking the shapes agree.
pub fn compare(a: &Tensor, b: &Tensor) -> (f64, f64) {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let (a, b) = (a.to_vec().unwrap(), b.to_vec().unwrap());
    let diff: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    let max = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max);
    ((diff / norm.max(f64::MIN_POSITIVE)).sqrt(), max)
}
