//! Which algorithm CUDA convolutions run: cuDNN when its library loads, else the
//! implicit-GEMM kernel of `kernels-cu/conv_implicit_gemm.cu`, unless [`CONV_ALGORITHM_ENV`]
//! names one (for diagnosis and benchmarks). Outside the `cuda` feature, so that
//! `sonic doctor` reports the choice in every build.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::probe::{probe_cudnn, CudnnProbe};

/// Environment variable forcing the convolution algorithm: `cudnn`, `implicit-gemm` or
/// `im2col`. Any other value makes opening a CUDA device fail with the reason.
pub const CONV_ALGORITHM_ENV: &str = "SONIC_CUDA_CONV";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConvAlgorithm {
    /// cuDNN's forward convolution; its heuristics pick the kernel.
    Cudnn,
    /// The implicit-GEMM kernel: tensor cores for f16/bf16, FMA for f32.
    ImplicitGemm,
    /// Tiles of im2col followed by a cuBLAS GEMM: the baseline the others are checked against.
    Im2col,
}

impl ConvAlgorithm {
    pub const ALL: [ConvAlgorithm; 3] = [
        ConvAlgorithm::Cudnn,
        ConvAlgorithm::ImplicitGemm,
        ConvAlgorithm::Im2col,
    ];

    /// The name [`CONV_ALGORITHM_ENV`] takes.
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgorithm::Cudnn => "cudnn",
            ConvAlgorithm::ImplicitGemm => "implicit-gemm",
            ConvAlgorithm::Im2col => "im2col",
        }
    }
}

impl fmt::Display for ConvAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ConvAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ConvAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ConvAlgorithm::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown convolution algorithm `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// The algorithm convolutions run and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConvChoice {
    pub algorithm: ConvAlgorithm,
    /// Set by [`CONV_ALGORITHM_ENV`]: then failing to run it is an error, not a fallback.
    pub forced: bool,
    pub reason: String,
}

/// The choice for a requested name (the variable's value, if set and not empty) given
/// what the cuDNN probe found.
pub fn choose_conv_algorithm(
    requested: Option<&str>,
    cudnn: &CudnnProbe,
) -> Result<ConvChoice, String> {
    let found = match (&cudnn.library, &cudnn.error) {
        (Some(library), None) => Ok(library.as_str()),
        (_, error) => Err(error.as_deref().unwrap_or("not found")),
    };
    match requested.filter(|r| !r.is_empty()) {
        Some(requested) => {
            let algorithm: ConvAlgorithm = requested
                .parse()
                .map_err(|e| format!("{CONV_ALGORITHM_ENV}: {e}"))?;
            if let (ConvAlgorithm::Cudnn, Err(why)) = (algorithm, found) {
                return Err(format!(
                    "{CONV_ALGORITHM_ENV}=cudnn, but cuDNN is unavailable: {why}"
                ));
            }
            Ok(ConvChoice {
                algorithm,
                forced: true,
                reason: format!("{CONV_ALGORITHM_ENV}={requested}"),
            })
        }
        None => Ok(match found {
            Ok(library) => ConvChoice {
                algorithm: ConvAlgorithm::Cudnn,
                forced: false,
                reason: format!("{library} loads"),
            },
            // The probe's error is reported beside the choice (`sonic doctor`).
            Err(_) => ConvChoice {
                algorithm: ConvAlgorithm::ImplicitGemm,
                forced: false,
                reason: "cuDNN unavailable".to_owned(),
            },
        }),
    }
}

/// [`choose_conv_algorithm`] for this process's environment and cuDNN library.
pub fn conv_algorithm_from_env() -> Result<ConvChoice, String> {
    let requested = match std::env::var_os(CONV_ALGORITHM_ENV) {
        None => None,
        Some(value) => Some(
            value
                .into_string()
                .map_err(|v| format!("{CONV_ALGORITHM_ENV}={v:?} is not UTF-8"))?,
        ),
    };
    choose_conv_algorithm(requested.as_deref(), &probe_cudnn())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present() -> CudnnProbe {
        CudnnProbe {
            library: Some("libcudnn.so.9".to_owned()),
            version: Some((9, 1, 0)),
            error: None,
        }
    }

    fn absent() -> CudnnProbe {
        CudnnProbe {
            error: Some("could not load the cuDNN library".to_owned()),
            ..CudnnProbe::default()
        }
    }

    #[test]
    fn names_round_trip() {
        for algorithm in ConvAlgorithm::ALL {
            assert_eq!(algorithm.name().parse(), Ok(algorithm));
        }
    }

    #[test]
    fn cudnn_is_the_default_where_it_loads() {
        let choice = choose_conv_algorithm(None, &present()).expect("a choice");
        assert_eq!(choice.algorithm, ConvAlgorithm::Cudnn);
        assert!(!choice.forced);
        assert_eq!(choice.reason, "libcudnn.so.9 loads");
        let choice = choose_conv_algorithm(Some(""), &absent()).expect("a choice");
        assert_eq!(choice.algorithm, ConvAlgorithm::ImplicitGemm);
        assert_eq!(choice.reason, "cuDNN unavailable");
    }

    #[test]
    fn the_variable_forces_an_algorithm() {
        let choice = choose_conv_algorithm(Some("im2col"), &present()).expect("a choice");
        assert_eq!(choice.algorithm, ConvAlgorithm::Im2col);
        assert!(choice.forced);
        assert_eq!(choice.reason, "SONIC_CUDA_CONV=im2col");
        let choice = choose_conv_algorithm(Some("implicit-gemm"), &absent()).expect("a choice");
        assert_eq!(choice.algorithm, ConvAlgorithm::ImplicitGemm);
    }

    #[test]
    fn unknown_names_and_missing_cudnn_are_errors() {
        let err = choose_conv_algorithm(Some("winograd"), &present()).expect_err("unknown");
        assert_eq!(
            err,
            "SONIC_CUDA_CONV: unknown convolution algorithm `winograd` (expected one of \
             cudnn, implicit-gemm, im2col)"
        );
        let err = choose_conv_algorithm(Some("cudnn"), &absent()).expect_err("no cuDNN");
        assert!(err.contains("could not load the cuDNN library"), "{err}");
    }
}
