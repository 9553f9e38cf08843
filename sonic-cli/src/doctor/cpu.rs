//! What the CPU backend can use on this machine.

use serde::{Serialize, Serializer};

#[derive(Debug, Serialize)]
pub struct CpuReport {
    /// The marketing name, where the OS exposes it (Linux `/proc/cpuinfo`).
    pub model: Option<String>,
    pub logical_cores: Option<usize>,
    /// The size of rayon's global pool (RAYON_NUM_THREADS when set).
    pub rayon_threads: usize,
    /// Features the CPU kernels dispatch on, in a fixed order; serialised as a map.
    #[serde(serialize_with = "serialize_features")]
    pub features: Vec<CpuFeature>,
}

#[derive(Debug, Clone, Copy)]
pub struct CpuFeature {
    pub name: &'static str,
    pub detected: bool,
}

impl CpuReport {
    pub fn detect() -> Self {
        CpuReport {
            model: cpu_model(),
            logical_cores: std::thread::available_parallelism().ok().map(usize::from),
            rayon_threads: rayon::current_num_threads(),
            features: detect_features(),
        }
    }
}

/// Only Linux-like systems have `/proc/cpuinfo`; elsewhere the read fails and the model is
/// left out.
fn cpu_model() -> Option<String> {
    model_from_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

fn model_from_cpuinfo(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (key.trim() == "model name" && !value.is_empty()).then(|| value.to_owned())
    })
}

#[cfg(target_arch = "x86_64")]
fn detect_features() -> Vec<CpuFeature> {
    use std::arch::is_x86_feature_detected as detected;
    // The macro takes literals only, hence the table; the first column is the display name.
    let table = [
        ("sse4.2", detected!("sse4.2")),
        ("avx", detected!("avx")),
        ("avx2", detected!("avx2")),
        ("fma", detected!("fma")),
        ("f16c", detected!("f16c")),
        ("avx512f", detected!("avx512f")),
        ("avx512bw", detected!("avx512bw")),
        ("avx512vl", detected!("avx512vl")),
        ("avx512_bf16", detected!("avx512bf16")),
    ];
    table
        .into_iter()
        .map(|(name, detected)| CpuFeature { name, detected })
        .collect()
}

#[cfg(target_arch = "aarch64")]
fn detect_features() -> Vec<CpuFeature> {
    vec![CpuFeature {
        name: "neon",
        detected: std::arch::is_aarch64_feature_detected!("neon"),
    }]
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_features() -> Vec<CpuFeature> {
    Vec::new()
}

fn serialize_features<S: Serializer>(
    features: &[CpuFeature],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        features
            .iter()
            .map(|feature| (feature.name, feature.detected)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_model_name_line() {
        let cpuinfo = "processor\t: 0\n\
                       vendor_id\t: GenuineIntel\n\
                       model\t\t: 85\n\
                       model name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\n\
                       flags\t\t: fpu\n";
        assert_eq!(
            model_from_cpuinfo(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz")
        );
        assert_eq!(
            model_from_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\n"),
            None
        );
    }

    #[test]
    fn features_serialise_as_a_map() {
        let features = vec![
            CpuFeature {
                name: "avx2",
                detected: true,
            },
            CpuFeature {
                name: "avx512f",
                detected: false,
            },
        ];
        let report = CpuReport {
            model: None,
            logical_cores: Some(2),
            rayon_threads: 2,
            features,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["features"],
            serde_json::json!({"avx2": true, "avx512f": false})
        );
    }
}
