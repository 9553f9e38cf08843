//! What a model load took from its weight files, burn-style.

use std::fmt;

use super::WeightStore;
use crate::Shape;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mismatch {
    pub key: String,
    pub expected: Vec<usize>,
    pub found: Vec<usize>,
}

/// Keys read, missing, shape-mismatched and never read. A model build stops at its first
/// missing or mismatched key (that error names the key and both shapes); the report then
/// also shows which stored keys went unread, which exposes prefix and version mix-ups.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LoadReport {
    pub used: usize,
    pub missing: Vec<String>,
    pub mismatched: Vec<Mismatch>,
    pub unused: Vec<String>,
    /// Unread keys the model declares it does not need (moved out of `unused` by
    /// [`expect_unused`](Self::expect_unused)), e.g. a teacher block kept in a checkpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expected_unused: Vec<String>,
}

impl LoadReport {
    pub fn new(store: &WeightStore) -> Self {
        let access = store.access_record();
        let unused = store
            .keys()
            .filter(|k| !access.used.contains(*k))
            .map(str::to_string)
            .collect();
        let mismatched = access
            .mismatched
            .into_iter()
            .map(
                |(key, (expected, found)): (String, (Shape, Shape))| Mismatch {
                    key,
                    expected: expected.dims().to_vec(),
                    found: found.dims().to_vec(),
                },
            )
            .collect();
        LoadReport {
            used: access.used.len(),
            missing: access.missing.into_iter().collect(),
            mismatched,
            unused,
            expected_unused: Vec::new(),
        }
    }

    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty()
    }

    /// Unused keys outside the given prefixes (e.g. a Whisper decoder when only the encoder is built).
    pub fn unused_outside(&self, expected_unused_prefixes: &[&str]) -> Vec<&str> {
        self.unused
            .iter()
            .map(String::as_str)
            .filter(|k| !expected_unused_prefixes.iter().any(|p| k.starts_with(p)))
            .collect()
    }
}

impl LoadReport {
    /// Moves the unused keys under any of `prefixes` to `expected_unused`.
    pub fn expect_unused(mut self, prefixes: &[&str]) -> Self {
        let (expected, rest) = self
            .unused
            .into_iter()
            .partition(|k| prefixes.iter().any(|p| k.starts_with(p)));
        self.expected_unused.extend::<Vec<String>>(expected);
        self.unused = rest;
        self
    }
}

fn list(f: &mut fmt::Formatter<'_>, label: &str, items: &[String]) -> fmt::Result {
    const SHOWN: usize = 8;
    if items.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = items.iter().take(SHOWN).map(String::as_str).collect();
    write!(f, "; {} {label}: {}", items.len(), shown.join(", "))?;
    if items.len() > SHOWN {
        write!(f, ", … ({} more)", items.len() - SHOWN)?;
    }
    Ok(())
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tensors used", self.used)?;
        list(f, "missing", &self.missing)?;
        let mismatched: Vec<String> = self
            .mismatched
            .iter()
            .map(|m| format!("{} (expected {:?}, found {:?})", m.key, m.expected, m.found))
            .collect();
        list(f, "mismatched", &mismatched)?;
        list(f, "unused", &self.unused)?;
        list(f, "expected unused", &self.expected_unused)
    }
}
