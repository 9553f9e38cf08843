use std::sync::{Arc, OnceLock, RwLock};

use super::{Backend, CpuBackend};
use crate::{Error, Result};

/// Builds (or returns a cached) backend for one device ordinal.
pub type BackendFactory = fn(ordinal: usize) -> Result<Arc<dyn Backend>>;

static FACTORIES: RwLock<Vec<(&'static str, BackendFactory)>> = RwLock::new(Vec::new());

/// Makes devices of `kind` (e.g. "cuda") available. Backend crates call this once at start;
/// a later registration of the same kind replaces the earlier one.
pub fn register_device_backend(kind: &'static str, factory: BackendFactory) {
    let mut factories = FACTORIES.write().unwrap_or_else(|e| e.into_inner());
    factories.retain(|(k, _)| *k != kind);
    factories.push((kind, factory));
}

pub(crate) fn device_backend(kind: &'static str, ordinal: usize) -> Result<Arc<dyn Backend>> {
    let factory = FACTORIES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, f)| *f);
    match factory {
        Some(factory) => factory(ordinal),
        None => Err(Error::DeviceUnavailable {
            device: format!("{kind}:{ordinal}"),
            reason: format!(
                "this build has no {kind} backend (build sonic with the `{kind}` feature)"
            ),
        }),
    }
}

pub(crate) fn cpu() -> Arc<dyn Backend> {
    static CPU: OnceLock<Arc<dyn Backend>> = OnceLock::new();
    CPU.get_or_init(|| Arc::new(CpuBackend)).clone()
}
