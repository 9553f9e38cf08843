use std::fmt;
use std::sync::Arc;

use crate::backend::{self, Backend};
use crate::{Error, Result};

/// Where a tensor lives. Chosen at run time; models never carry it as a type parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// The backend that executes ops for this device. CUDA is only available once a
    /// CUDA backend has been installed (see `sonic-kernels`); otherwise this is an error.
    pub fn backend(self) -> Result<Arc<dyn Backend>> {
        match self {
            Device::Cpu => Ok(backend::cpu()),
            Device::Cuda(ordinal) => backend::device_backend("cuda", ordinal),
        }
    }

    pub fn is_cpu(self) -> bool {
        matches!(self, Device::Cpu)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::DeviceUnavailable {
            device: s.to_string(),
            reason: "expected `cpu`, `cuda` or `cuda:N`".into(),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n.parse().map(Device::Cuda).map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}
