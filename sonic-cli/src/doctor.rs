//! `sonic doctor`: what this build and this machine offer. It reports and never fails on
//! a missing GPU, driver or plugin directory.

mod cpu;

use std::io::{self, Write};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sonic_kernels::{ConvAlgorithm, ConvChoice, CublasProbe, CudnnProbe, DriverProbe, NvrtcProbe};
use sonic_plugins::SearchPath;

use self::cpu::CpuReport;
use crate::plugin_args::PluginArgs;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object on stdout instead of the report.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &DoctorArgs, plugins: &PluginArgs) -> anyhow::Result<()> {
    let report = DoctorReport::gather(plugins);
    write_report(&report, args.json).context("writing the report to stdout")
}

fn write_report(report: &DoctorReport, json: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        report.write_human(&mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// The `--json` shape; field names are a stable interface.
#[derive(Debug, Serialize)]
struct DoctorReport {
    version: &'static str,
    target: TargetReport,
    /// `debug` builds run the CPU backend an order of magnitude slower.
    build_profile: &'static str,
    cpu: CpuReport,
    cuda: CudaReport,
    plugins: PluginsReport,
}

#[derive(Debug, Serialize)]
struct TargetReport {
    triple: &'static str,
    arch: &'static str,
    os: &'static str,
}

#[derive(Debug, Serialize)]
struct CudaReport {
    backend_compiled: bool,
    driver: DriverProbe,
    nvrtc: NvrtcProbe,
    cublas: CublasProbe,
    cudnn: CudnnProbe,
    convolution: ConvolutionReport,
}

/// What CUDA convolutions run, or why `SONIC_CUDA_CONV` keeps the backend from opening.
#[derive(Debug, Serialize)]
struct ConvolutionReport {
    algorithm: Option<ConvAlgorithm>,
    reason: Option<String>,
    error: Option<String>,
}

impl From<Result<ConvChoice, String>> for ConvolutionReport {
    fn from(choice: Result<ConvChoice, String>) -> Self {
        match choice {
            Ok(choice) => ConvolutionReport {
                algorithm: Some(choice.algorithm),
                reason: Some(choice.reason),
                error: None,
            },
            Err(error) => ConvolutionReport {
                algorithm: None,
                reason: None,
                error: Some(error),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct PluginsReport {
    #[serde(flatten)]
    search_path: SearchPath,
    candidate_files: Vec<String>,
}

impl DoctorReport {
    fn gather(plugins: &PluginArgs) -> Self {
        let search_path = plugins.search_path();
        let candidate_files = sonic_plugins::candidate_files(&search_path)
            .iter()
            .map(|path| path.to_string_lossy().into_owned())
            .collect();
        DoctorReport {
            version: env!("CARGO_PKG_VERSION"),
            target: TargetReport {
                triple: env!("SONIC_TARGET_TRIPLE"),
                arch: std::env::consts::ARCH,
                os: std::env::consts::OS,
            },
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            cpu: CpuReport::detect(),
            cuda: CudaReport {
                backend_compiled: sonic_kernels::CUDA_BACKEND_COMPILED,
                driver: sonic_kernels::probe_driver(),
                nvrtc: sonic_kernels::probe_nvrtc(),
                cublas: sonic_kernels::probe_cublas(),
                cudnn: sonic_kernels::probe_cudnn(),
                convolution: sonic_kernels::conv_algorithm::conv_algorithm_from_env().into(),
            },
            plugins: PluginsReport {
                search_path,
                candidate_files,
            },
        }
    }

    fn write_human(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "sonic {} ({} build)", self.version, self.build_profile)?;
        let target = &self.target;
        row(
            out,
            "target",
            format!("{} ({}, {})", target.triple, target.arch, target.os),
        )?;
        self.write_cpu(out)?;
        self.write_cuda(out)?;
        self.write_plugins(out)
    }

    fn write_cpu(&self, out: &mut impl Write) -> io::Result<()> {
        let cpu = &self.cpu;
        if let Some(model) = &cpu.model {
            row(out, "cpu", model)?;
        }
        let names = |detected: bool| -> Vec<&str> {
            cpu.features
                .iter()
                .filter(|f| f.detected == detected)
                .map(|f| f.name)
                .collect()
        };
        let (present, missing) = (names(true), names(false));
        let mut features = if present.is_empty() {
            "none".to_owned()
        } else {
            present.join(" ")
        };
        if !missing.is_empty() {
            features.push_str(&format!(" (not: {})", missing.join(" ")));
        }
        row(out, "cpu features", features)?;
        let cores = cpu
            .logical_cores
            .map_or("unknown".to_owned(), |n| n.to_string());
        row(
            out,
            "threads",
            format!("{cores} logical cores, {} rayon threads", cpu.rayon_threads),
        )
    }

    fn write_cuda(&self, out: &mut impl Write) -> io::Result<()> {
        let cuda = &self.cuda;
        let backend = if cuda.backend_compiled {
            "yes"
        } else {
            "no: built without the `cuda` feature"
        };
        row(out, "cuda backend", backend)?;
        let driver = &cuda.driver;
        let details = driver.version.map(|(major, minor)| {
            format!(
                "supports CUDA {major}.{minor}, {}",
                count(driver.devices.len(), "device")
            )
        });
        let summary = probe_summary(driver.library.as_deref(), details, driver.error.as_deref());
        row(out, "cuda driver", summary)?;
        for gpu in &driver.devices {
            let (major, minor) = gpu.compute_capability;
            let gib = gpu.total_memory_bytes as f64 / f64::from(1u32 << 30);
            let label = format!("  gpu {}", gpu.ordinal);
            row(
                out,
                &label,
                format!("{}, sm_{major}{minor}, {gib:.1} GiB", gpu.name),
            )?;
        }
        let nvrtc = &cuda.nvrtc;
        let details = nvrtc
            .version
            .map(|(major, minor)| format!("version {major}.{minor}"));
        let summary = probe_summary(nvrtc.library.as_deref(), details, nvrtc.error.as_deref());
        row(out, "nvrtc", summary)?;
        let (cublas, cudnn) = (&cuda.cublas, &cuda.cudnn);
        let libraries = [
            ("cublas", &cublas.library, cublas.version, &cublas.error),
            ("cudnn", &cudnn.library, cudnn.version, &cudnn.error),
        ];
        for (label, library, version, error) in libraries {
            let details =
                version.map(|(major, minor, patch)| format!("version {major}.{minor}.{patch}"));
            let summary = probe_summary(library.as_deref(), details, error.as_deref());
            row(out, label, summary)?;
        }
        let conv = &cuda.convolution;
        let summary = match (&conv.algorithm, &conv.reason, &conv.error) {
            (Some(algorithm), Some(reason), _) => format!("{algorithm} ({reason})"),
            (_, _, error) => format!("error: {}", error.as_deref().unwrap_or("unknown")),
        };
        row(out, "convolution", summary)
    }

    fn write_plugins(&self, out: &mut impl Write) -> io::Result<()> {
        let plugins = &self.plugins;
        if plugins.search_path.disabled {
            return row(out, "plugins", "disabled (--no-plugins)");
        }
        let summary = format!(
            "{}, {}",
            count(plugins.search_path.entries.len(), "search path entry"),
            count(plugins.candidate_files.len(), "candidate file")
        );
        row(out, "plugins", summary)?;
        for entry in &plugins.search_path.entries {
            let state = if entry.exists { "exists" } else { "missing" };
            let label = format!("  {}", entry.source.as_str());
            row(out, &label, format!("{} ({state})", entry.path.display()))?;
        }
        for file in &plugins.candidate_files {
            row(out, "  file", file)?;
        }
        Ok(())
    }
}

const LABEL_WIDTH: usize = 14;

fn row(out: &mut impl Write, label: &str, value: impl AsRef<str>) -> io::Result<()> {
    writeln!(out, "{label:<LABEL_WIDTH$}{}", value.as_ref())
}

/// One line per probe: what loaded and what it said, then the first failure if any.
fn probe_summary(library: Option<&str>, details: Option<String>, error: Option<&str>) -> String {
    let Some(library) = library else {
        return match error {
            Some(error) => format!("not found: {error}"),
            None => "not found".to_owned(),
        };
    };
    let mut summary = library.to_owned();
    if let Some(details) = details {
        summary.push_str(", ");
        summary.push_str(&details);
    }
    if let Some(error) = error {
        summary.push_str("; error: ");
        summary.push_str(error);
    }
    summary
}

fn count(n: usize, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sonic_kernels::GpuInfo;
    use sonic_plugins::{SearchEntry, SearchSource};

    use super::cpu::CpuFeature;
    use super::*;

    fn report_with(
        driver: DriverProbe,
        nvrtc: NvrtcProbe,
        cublas: CublasProbe,
        cudnn: CudnnProbe,
        convolution: Result<ConvChoice, String>,
        search_path: SearchPath,
    ) -> DoctorReport {
        DoctorReport {
            version: "9.9.9",
            target: TargetReport {
                triple: "x86_64-unknown-linux-gnu",
                arch: "x86_64",
                os: "linux",
            },
            build_profile: "release",
            cpu: CpuReport {
                model: Some("Test CPU".to_owned()),
                logical_cores: Some(8),
                rayon_threads: 4,
                features: vec![
                    CpuFeature {
                        name: "avx2",
                        detected: true,
                    },
                    CpuFeature {
                        name: "avx512f",
                        detected: false,
                    },
                ],
            },
            cuda: CudaReport {
                backend_compiled: false,
                driver,
                nvrtc,
                cublas,
                cudnn,
                convolution: convolution.into(),
            },
            plugins: PluginsReport {
                search_path,
                candidate_files: Vec::new(),
            },
        }
    }

    fn human(report: &DoctorReport) -> String {
        let mut out = Vec::new();
        report.write_human(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renders_gpus_and_versions() {
        let driver = DriverProbe {
            library: Some("libcuda.so.1".to_owned()),
            version: Some((12, 4)),
            devices: vec![GpuInfo {
                ordinal: 0,
                name: "NVIDIA H100 80GB HBM3".to_owned(),
                compute_capability: (9, 0),
                total_memory_bytes: 80 << 30,
            }],
            error: None,
        };
        let nvrtc = NvrtcProbe {
            library: Some("libnvrtc.so.12".to_owned()),
            version: Some((12, 9)),
            error: None,
        };
        let cublas = CublasProbe {
            library: Some("libcublas.so.12".to_owned()),
            version: Some((12, 9, 1)),
            error: None,
        };
        let cudnn = CudnnProbe {
            library: Some("libcudnn.so.9".to_owned()),
            version: Some((9, 1, 0)),
            error: None,
        };
        let convolution = Ok(ConvChoice {
            algorithm: ConvAlgorithm::Cudnn,
            forced: false,
            reason: "libcudnn.so.9 loads".to_owned(),
        });
        let search_path = SearchPath {
            disabled: false,
            entries: vec![SearchEntry {
                path: PathBuf::from("/plugins"),
                source: SearchSource::Env,
                exists: false,
            }],
        };
        let text = human(&report_with(
            driver,
            nvrtc,
            cublas,
            cudnn,
            convolution,
            search_path,
        ));
        let expected = "\
sonic 9.9.9 (release build)
target        x86_64-unknown-linux-gnu (x86_64, linux)
cpu           Test CPU
cpu features  avx2 (not: avx512f)
threads       8 logical cores, 4 rayon threads
cuda backend  no: built without the `cuda` feature
cuda driver   libcuda.so.1, supports CUDA 12.4, 1 device
  gpu 0       NVIDIA H100 80GB HBM3, sm_90, 80.0 GiB
nvrtc         libnvrtc.so.12, version 12.9
cublas        libcublas.so.12, version 12.9.1
cudnn         libcudnn.so.9, version 9.1.0
convolution   cudnn (libcudnn.so.9 loads)
plugins       1 search path entry, 0 candidate files
  env         /plugins (missing)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn renders_failures_and_disabled_plugins() {
        let driver = DriverProbe {
            library: Some("libcuda.so.1".to_owned()),
            version: Some((12, 4)),
            devices: Vec::new(),
            error: Some("cuInit(0) failed with CUDA_ERROR_NO_DEVICE (100)".to_owned()),
        };
        let nvrtc = NvrtcProbe {
            error: Some("could not load the NVRTC library".to_owned()),
            ..Default::default()
        };
        let cublas = CublasProbe {
            error: Some("could not load the cuBLAS library".to_owned()),
            ..Default::default()
        };
        let cudnn = CudnnProbe {
            error: Some("could not load the cuDNN library".to_owned()),
            ..Default::default()
        };
        let convolution = Err("SONIC_CUDA_CONV: unknown convolution algorithm `fft`".to_owned());
        let search_path = SearchPath {
            disabled: true,
            entries: Vec::new(),
        };
        let text = human(&report_with(
            driver,
            nvrtc,
            cublas,
            cudnn,
            convolution,
            search_path,
        ));
        assert!(text.contains(
            "cuda driver   libcuda.so.1, supports CUDA 12.4, 0 devices; error: cuInit(0) failed"
        ));
        assert!(text.contains("nvrtc         not found: could not load the NVRTC library\n"));
        assert!(text.contains("cublas        not found: could not load the cuBLAS library\n"));
        assert!(text.contains("cudnn         not found: could not load the cuDNN library\n"));
        assert!(text.contains(
            "convolution   error: SONIC_CUDA_CONV: unknown convolution algorithm `fft`\n"
        ));
        assert!(text.ends_with("plugins       disabled (--no-plugins)\n"));
    }
}
