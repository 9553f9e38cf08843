//! Named components, built in or provided by plugins, behind one lookup path: the CLI
//! resolves `--sampler NAME` the same way whichever provides it.

use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::sampling::{builtin_sampler, Sampler, BUILTIN_SAMPLERS};
use crate::{Error, Result};

pub type SamplerFactory = Arc<dyn Fn() -> Result<Box<dyn Sampler>> + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComponentInfo {
    pub kind: &'static str,
    pub name: String,
    /// "built-in", or the plugin library that provides it.
    pub origin: String,
    pub description: String,
}

struct Entry {
    info: ComponentInfo,
    create: SamplerFactory,
}

static SAMPLERS: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

fn ensure_builtins(entries: &mut Vec<Entry>) {
    if entries.iter().any(|e| e.info.origin == "built-in") {
        return;
    }
    for name in BUILTIN_SAMPLERS {
        entries.push(Entry {
            info: ComponentInfo {
                kind: "sampler",
                name: name.to_string(),
                origin: "built-in".into(),
                description: String::new(),
            },
            create: Arc::new(move || builtin_sampler(name)),
        });
    }
}

/// Makes a sampler available by name. A name already taken (by a built-in or an earlier
/// plugin) is an error naming both providers.
pub fn register_sampler(info: ComponentInfo, create: SamplerFactory) -> Result<()> {
    let mut entries = SAMPLERS.write().unwrap_or_else(|e| e.into_inner());
    ensure_builtins(&mut entries);
    if let Some(taken) = entries.iter().find(|e| e.info.name == info.name) {
        return Err(Error::invalid(
            "registry",
            format!(
                "sampler `{}` from {} is already provided by {}",
                info.name, info.origin, taken.info.origin
            ),
        ));
    }
    entries.push(Entry { info, create });
    Ok(())
}

/// A new instance of the sampler `name`.
pub fn sampler(name: &str) -> Result<Box<dyn Sampler>> {
    let create = {
        let mut entries = SAMPLERS.write().unwrap_or_else(|e| e.into_inner());
        ensure_builtins(&mut entries);
        match entries.iter().find(|e| e.info.name == name) {
            Some(e) => e.create.clone(),
            None => {
                let known: Vec<&str> = entries.iter().map(|e| e.info.name.as_str()).collect();
                return Err(Error::invalid(
                    "sampler",
                    format!("unknown sampler `{name}` (available: {})", known.join(", ")),
                ));
            }
        }
    };
    create()
}

/// Every registered sampler, built-ins first.
pub fn samplers() -> Vec<ComponentInfo> {
    let mut entries = SAMPLERS.write().unwrap_or_else(|e| e.into_inner());
    ensure_builtins(&mut entries);
    entries.iter().map(|e| e.info.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::Euler;

    #[test]
    fn builtins_and_registered_samplers_share_one_lookup() {
        assert_eq!(sampler("heun").unwrap().name(), "heun");
        let info = ComponentInfo {
            kind: "sampler",
            name: "test-euler-copy".into(),
            origin: "test".into(),
            description: String::new(),
        };
        register_sampler(info.clone(), Arc::new(|| Ok(Box::new(Euler)))).unwrap();
        assert_eq!(sampler("test-euler-copy").unwrap().name(), "euler");
        assert!(samplers()
            .iter()
            .any(|i| i.name == "test-euler-copy" && i.origin == "test"));
        let again = register_sampler(info, Arc::new(|| Ok(Box::new(Euler))))
            .unwrap_err()
            .to_string();
        assert!(again.contains("already provided by test"), "{again}");
        let clash = ComponentInfo {
            kind: "sampler",
            name: "euler".into(),
            origin: "x.so".into(),
            description: String::new(),
        };
        assert!(register_sampler(clash, Arc::new(|| Ok(Box::new(Euler))))
            .unwrap_err()
            .to_string()
            .contains("built-in"));
        assert!(sampler("nope")
            .err()
            .unwrap()
            .to_string()
            .contains("available: euler"));
    }
}
