//! Reference fixtures: a folder with `meta.json` (what the fixture exercises, its inputs,
//! outputs, parameters and tolerance), the component's upstream `config.json` and
//! `weights.safetensors` when it has them, and `io.safetensors` with the inputs and the
//! reference outputs. [`verify`] runs the component on the inputs and compares.

mod runners;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::weights::{VarBuilder, WeightStore};
use crate::{DType, Device, Error, Result, Shape, Tensor};

#[derive(Clone, Debug, Deserialize)]
pub struct Tolerance {
    /// Pass when ‖out − ref‖/‖ref‖ is at most this…
    pub rel: Option<f64>,
    /// …or when max |out − ref| is at most this.
    pub abs: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Meta {
    pub kind: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    #[serde(default)]
    pub params: serde_json::Value,
    pub tolerance: Tolerance,
    /// Per-output tolerances that override `tolerance`.
    #[serde(default)]
    pub output_tolerance: BTreeMap<String, Tolerance>,
}

/// A loaded fixture folder.
pub struct Fixture {
    pub dir: PathBuf,
    pub meta: Meta,
    io: BTreeMap<String, Tensor>,
    /// What [`Fixture::weights`] stores the weights as; activations follow the weights.
    dtype: DType,
}

impl Fixture {
    pub fn open(dir: &Path) -> Result<Fixture> {
        let meta_path = dir.join("meta.json");
        if !meta_path.is_file() {
            return Err(Error::file(dir, "not a fixture folder (no meta.json)"));
        }
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: meta_path,
            msg: e.to_string(),
        })?;
        let io_path = dir.join("io.safetensors");
        let store = WeightStore::open(&[&io_path])?;
        let io = store
            .keys()
            .map(|k| {
                let shape = Shape::new(store.raw(k).map(|r| r.shape.clone()).unwrap_or_default());
                Ok((
                    k.to_string(),
                    store.load(k, &shape, DType::F32, Device::Cpu)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Fixture {
            dir: dir.to_path_buf(),
            meta,
            io,
            dtype: DType::F32,
        })
    }

    /// An input or reference tensor from `io.safetensors`, on `device`.
    pub fn tensor(&self, name: &str, device: Device) -> Result<Tensor> {
        let t = self.io.get(name).ok_or_else(|| {
            Error::file(
                self.dir.join("io.safetensors"),
                format!("has no tensor `{name}`"),
            )
        })?;
        t.to_device(device)
    }

    /// A scalar parameter from `meta.json`'s `params`.
    pub fn param<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        let value = self.meta.params.get(name).cloned().ok_or_else(|| {
            Error::file(
                self.dir.join("meta.json"),
                format!("params has no `{name}`"),
            )
        })?;
        serde_json::from_value(value)
            .map_err(|e| Error::file(self.dir.join("meta.json"), format!("params.{name}: {e}")))
    }

    /// The fixture's weights on `device`, in the dtype the fixture is verified in.
    pub fn weights(&self, device: Device) -> Result<VarBuilder> {
        let store = WeightStore::open(&[self.dir.join("weights.safetensors")])?;
        Ok(VarBuilder::new(Arc::new(store), self.dtype, device))
    }
}

/// Runs one fixture kind, returning every output named in the meta.
pub type Runner = fn(&Fixture, Device) -> Result<BTreeMap<String, Tensor>>;

#[derive(Clone, Debug, Serialize)]
pub struct OutputCheck {
    pub name: String,
    pub rel_error: f64,
    pub max_abs_error: f64,
    pub passed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct FixtureReport {
    pub fixture: PathBuf,
    pub kind: String,
    pub device: String,
    pub dtype: DType,
    pub outputs: Vec<OutputCheck>,
}

impl FixtureReport {
    pub fn passed(&self) -> bool {
        self.outputs.iter().all(|o| o.passed)
    }
}

/// ‖a − b‖/‖b‖ and max |a − b|, computed in f64.
pub fn errors(ours: &Tensor, reference: &Tensor) -> Result<(f64, f64)> {
    if ours.dims() != reference.dims() {
        return Err(Error::ShapeMismatch {
            op: "verify",
            expected: reference.shape().clone(),
            found: ours.shape().clone(),
        });
    }
    let (a, b) = (ours.to_vec()?, reference.to_vec()?);
    let (mut diff, mut norm, mut max) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(&b) {
        let d = (x as f64 - y as f64).abs();
        diff += d * d;
        norm += (y as f64) * (y as f64);
        max = if d.is_nan() { f64::NAN } else { max.max(d) };
    }
    let rel = if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        diff.sqrt()
    };
    Ok((rel, max))
}

pub use runners::builtin_runner;

/// The error half-precision storage adds on top of a fixture's own tolerance. Every stored
/// activation is rounded to 11 (f16) or 8 (bf16) significant bits while sums stay in f32;
/// through a model's tens of layers the roundings compound to about 1e-2 (f16) and 4e-2
/// (bf16) relative, so an output passes within these bounds, or within its f32 tolerance.
pub fn half_precision_tolerance(dtype: DType) -> Option<Tolerance> {
    let rel = match dtype {
        DType::F32 => return None,
        DType::F16 => 2e-2,
        DType::BF16 => 6e-2,
    };
    Some(Tolerance {
        rel: Some(rel),
        abs: None,
    })
}

impl Tolerance {
    fn admits(&self, rel_error: f64, max_abs_error: f64) -> bool {
        self.rel.is_some_and(|t| rel_error <= t) || self.abs.is_some_and(|t| max_abs_error <= t)
    }
}

/// Runs the fixture in `dir` on `device`, its weights stored as `dtype`, with the built-in
/// runner for its kind.
pub fn verify(dir: &Path, device: Device, dtype: DType) -> Result<FixtureReport> {
    verify_with(dir, device, dtype, builtin_runner)
}

/// Runs the fixture in `dir` on `device` with the runner `runner_for` gives for its kind.
pub fn verify_with(
    dir: &Path,
    device: Device,
    dtype: DType,
    runner_for: impl Fn(&str) -> Option<Runner>,
) -> Result<FixtureReport> {
    if device == Device::Cpu && dtype != DType::F32 {
        return Err(Error::invalid(
            "verify",
            format!("{dtype}: the CPU backend computes in f32; f16 and bf16 need a CUDA device"),
        ));
    }
    let mut fixture = Fixture::open(dir)?;
    fixture.dtype = dtype;
    let runner = runner_for(&fixture.meta.kind).ok_or_else(|| {
        Error::file(
            dir.join("meta.json"),
            format!("no runner for fixture kind `{}`", fixture.meta.kind),
        )
    })?;
    let produced = runner(&fixture, device)?;
    let mut outputs = Vec::new();
    for name in &fixture.meta.outputs {
        let ours = produced.get(name).ok_or_else(|| {
            Error::invalid(
                "verify",
                format!(
                    "the `{}` runner did not produce `{name}`",
                    fixture.meta.kind
                ),
            )
        })?;
        let (rel_error, max_abs_error) = errors(ours, &fixture.tensor(name, Device::Cpu)?)?;
        let tol = fixture
            .meta
            .output_tolerance
            .get(name)
            .unwrap_or(&fixture.meta.tolerance);
        let passed = tol.admits(rel_error, max_abs_error)
            || half_precision_tolerance(dtype).is_some_and(|h| h.admits(rel_error, max_abs_error));
        outputs.push(OutputCheck {
            name: name.clone(),
            rel_error,
            max_abs_error,
            passed,
        });
    }
    Ok(FixtureReport {
        fixture: dir.to_path_buf(),
        kind: fixture.meta.kind.clone(),
        device: device.to_string(),
        dtype,
        outputs,
    })
}

/// Shared by the unit tests that exercise a component on its committed fixture.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    /// `tests/fixtures/<name>` of the repository.
    pub fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name)
    }

    /// Runs the fixture `name` on the CPU, printing each output's error, and asserts it passes.
    pub fn assert_passes(name: &str) {
        let report = super::verify(&fixture(name), crate::Device::Cpu, crate::DType::F32).unwrap();
        for o in &report.outputs {
            println!(
                "{name} {:24} rel {:.3e} max {:.3e}",
                o.name, o.rel_error, o.max_abs_error
            );
        }
        assert!(report.passed(), "{name} failed");
    }
}
