//! CUDA driver, NVRTC and cuDNN probing through `libloading` alone.
//!
//! cudarc panics when a library or one of its symbols is missing, so anything that must
//! merely *ask* whether CUDA is usable (`sonic doctor`, device selection) goes through this
//! module instead. Every failure ends up as an `error` string in the returned report.
//!
//! Libraries are opened by bare name, so the platform loader's search applies
//! (`LD_LIBRARY_PATH`, the ld.so cache, `PATH` on Windows). Opened libraries stay loaded for
//! the life of the process: they live in statics that are never dropped, because unloading
//! CUDA libraries is neither needed nor safe once function pointers have been handed out.

use std::ffi::{c_char, c_int, CStr, OsStr, OsString};
use std::sync::OnceLock;

use libloading::Library;
use serde::Serialize;

/// Environment variable naming an NVRTC library file to use instead of the default names.
pub const NVRTC_PATH_ENV: &str = "SONIC_NVRTC_PATH";

const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: c_int = 75;
const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: c_int = 76;
const CUDA_SUCCESS: c_int = 0;
const NVRTC_SUCCESS: c_int = 0;
/// Device names are at most 256 bytes in every CUDA release (`cudaDeviceProp::name`).
const DEVICE_NAME_CAPACITY: usize = 256;

#[cfg(windows)]
const DRIVER_CANDIDATES: &[&str] = &["nvcuda.dll"];
#[cfg(not(windows))]
const DRIVER_CANDIDATES: &[&str] = &["libcuda.so.1", "libcuda.so"];

#[cfg(windows)]
const NVRTC_CANDIDATES: &[&str] = &["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"];
#[cfg(not(windows))]
const NVRTC_CANDIDATES: &[&str] = &["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

/// Names cudarc's own cuDNN loader also tries, in its order, so that whatever this probe
/// opens, cudarc opens too instead of panicking.
#[cfg(windows)]
pub(crate) const CUDNN_CANDIDATES: &[&str] = &["cudnn64_9.dll"];
#[cfg(not(windows))]
pub(crate) const CUDNN_CANDIDATES: &[&str] = &["libcudnn.so", "libcudnn.so.9"];

/// Names cudarc's cuBLAS loader tries for this build's CUDA 12 bindings, in its order.
#[cfg(windows)]
pub(crate) const CUBLAS_CANDIDATES: &[&str] = &["cublas.dll", "cublas64.dll", "cublas64_12.dll"];
#[cfg(not(windows))]
pub(crate) const CUBLAS_CANDIDATES: &[&str] =
    &["libcublas.so", "libcublas.so.12", "libcublas.so.11"];
/// A CUDA 13 cuBLAS, which the CUDA 12 bindings do not look for by this name.
#[cfg(not(windows))]
const CUBLAS_13: &str = "libcublas.so.13";

/// What the CUDA driver library reports about itself and the GPUs it sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriverProbe {
    /// The library name that loaded, `None` when no candidate could be opened.
    pub library: Option<String>,
    /// The highest CUDA version the driver supports, as (major, minor).
    pub version: Option<(i32, i32)>,
    pub devices: Vec<GpuInfo>,
    /// The first failure, naming the library, symbol or call; the fields above keep
    /// whatever was learned before it.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuInfo {
    pub ordinal: i32,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub total_memory_bytes: u64,
}

/// What the NVRTC library reports about itself. NVRTC works without a GPU or driver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NvrtcProbe {
    pub library: Option<String>,
    pub version: Option<(i32, i32)>,
    pub error: Option<String>,
}

/// What the cuDNN library reports about itself; like NVRTC it loads without a GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CudnnProbe {
    pub library: Option<String>,
    /// (major, minor, patch).
    pub version: Option<(i32, i32, i32)>,
    pub error: Option<String>,
}

/// What the cuBLAS library reports about itself; it loads without a GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CublasProbe {
    pub library: Option<String>,
    /// (major, minor, patch).
    pub version: Option<(i32, i32, i32)>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("could not load the {what} library ({})", describe_attempts(.attempts))]
    LibraryNotFound {
        what: &'static str,
        attempts: Vec<LoadAttempt>,
    },
    #[error("{library} has no symbol `{symbol}`: {reason}")]
    MissingSymbol {
        library: String,
        symbol: &'static str,
        reason: String,
    },
    #[error("{call} failed with {code}")]
    CallFailed { call: String, code: String },
}

pub(crate) struct LoadedLibrary {
    pub(crate) name: String,
    library: Library,
}

impl LoadedLibrary {
    /// Copies a function pointer out of the library. Taking `&'static self` is what makes
    /// the copy sound: the library can never be unloaded while the pointer exists.
    ///
    /// # Safety
    /// `F` must be the `extern` fn pointer type matching the symbol's C prototype.
    pub(crate) unsafe fn function<F: Copy>(
        &'static self,
        symbol: &'static str,
    ) -> Result<F, ProbeError> {
        // SAFETY: the caller guarantees `F` matches the symbol.
        let found = unsafe { self.library.get::<F>(symbol) };
        found
            .map(|function| *function)
            .map_err(|err| ProbeError::MissingSymbol {
                library: self.name.clone(),
                symbol,
                reason: loader_message(&err),
            })
    }
}

fn os_strings(names: &[&str]) -> Vec<OsString> {
    names.iter().map(OsString::from).collect()
}

/// Opens the first candidate that loads, recording every failure for the error message.
fn load_first(what: &'static str, candidates: &[OsString]) -> Result<LoadedLibrary, ProbeError> {
    let mut attempts = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        // SAFETY: loading runs the library's initialisers; the candidates are the CUDA
        // driver or NVRTC (or a file the user named for that role), whose initialisers
        // have no preconditions on the host process.
        match unsafe { Library::new(candidate) } {
            Ok(library) => {
                let name = candidate.to_string_lossy().into_owned();
                return Ok(LoadedLibrary { name, library });
            }
            Err(err) => attempts.push(LoadAttempt::new(candidate, &err)),
        }
    }
    Err(ProbeError::LibraryNotFound { what, attempts })
}

/// One candidate that failed to load, with the loader's reason.
#[derive(Debug, Clone)]
pub(crate) struct LoadAttempt {
    candidate: String,
    reason: String,
}

impl LoadAttempt {
    fn new(candidate: &OsStr, err: &libloading::Error) -> Self {
        let candidate = candidate.to_string_lossy().into_owned();
        let message = loader_message(err);
        // glibc prefixes its message with the file name, which the report already shows.
        let reason = match message.strip_prefix(&format!("{candidate}: ")) {
            Some(rest) => rest.to_owned(),
            None => message,
        };
        LoadAttempt { candidate, reason }
    }
}

/// Usually every candidate fails the same way ("No such file"); say that once.
fn describe_attempts(attempts: &[LoadAttempt]) -> String {
    let names: Vec<&str> = attempts.iter().map(|a| a.candidate.as_str()).collect();
    match attempts.first() {
        Some(first) if attempts.iter().all(|a| a.reason == first.reason) => {
            format!("tried {}: {}", names.join(", "), first.reason)
        }
        _ => {
            let each: Vec<String> = attempts
                .iter()
                .map(|a| format!("{}: {}", a.candidate, a.reason))
                .collect();
            format!("tried {}", each.join("; "))
        }
    }
}

/// The loader's own message lives in the error's source; libloading's top level only says
/// "dlopen failed".
fn loader_message(err: &libloading::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => source.to_string(),
        None => err.to_string(),
    }
}

/// Decodes the CUDA integer version encoding (`1000 * major + 10 * minor`).
pub fn decode_cuda_version(encoded: i32) -> (i32, i32) {
    (encoded / 1000, (encoded % 1000) / 10)
}

// ---------------------------------------------------------------------------------------
// CUDA driver

type CuResult = c_int;
type CuDevice = c_int;
// `extern "system"` because the driver API is declared CUDAAPI (__stdcall on 32-bit Windows).
type CuInit = unsafe extern "system" fn(flags: u32) -> CuResult;
type CuDriverGetVersion = unsafe extern "system" fn(version: *mut c_int) -> CuResult;
type CuDeviceGetCount = unsafe extern "system" fn(count: *mut c_int) -> CuResult;
type CuDeviceGet = unsafe extern "system" fn(device: *mut CuDevice, ordinal: c_int) -> CuResult;
type CuDeviceGetName =
    unsafe extern "system" fn(name: *mut c_char, len: c_int, device: CuDevice) -> CuResult;
type CuDeviceGetAttribute =
    unsafe extern "system" fn(value: *mut c_int, attribute: c_int, device: CuDevice) -> CuResult;
type CuDeviceTotalMem = unsafe extern "system" fn(bytes: *mut usize, device: CuDevice) -> CuResult;
type CuGetErrorName =
    unsafe extern "system" fn(error: CuResult, name: *mut *const c_char) -> CuResult;

/// Probes the CUDA driver. Never panics; see [`DriverProbe::error`].
pub fn probe_driver() -> DriverProbe {
    let mut report = DriverProbe::default();
    if let Err(err) = fill_driver_probe(&mut report) {
        report.error = Some(err.to_string());
    }
    report
}

/// A library opened once per process; `cell` keeps it (or why it failed) for good.
type LibraryCell = OnceLock<Result<LoadedLibrary, ProbeError>>;

fn load_once(
    cell: &'static LibraryCell,
    load: impl FnOnce() -> Result<LoadedLibrary, ProbeError>,
) -> Result<&'static LoadedLibrary, ProbeError> {
    cell.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn driver_library() -> Result<&'static LoadedLibrary, ProbeError> {
    static DRIVER: LibraryCell = OnceLock::new();
    load_once(&DRIVER, || {
        load_first("CUDA driver", &os_strings(DRIVER_CANDIDATES))
    })
}

fn fill_driver_probe(report: &mut DriverProbe) -> Result<(), ProbeError> {
    let driver = Driver(driver_library()?);
    report.library = Some(driver.0.name.clone());
    // Asked before cuInit: it needs no initialisation, and the supported version is the
    // most useful fact when cuInit then fails (e.g. CUDA_ERROR_NO_DEVICE).
    report.version = Some(decode_cuda_version(driver.version()?));
    driver.init()?;
    for ordinal in 0..driver.device_count()? {
        report.devices.push(driver.device_info(ordinal)?);
    }
    Ok(())
}

struct Driver(&'static LoadedLibrary);

impl Driver {
    fn check(&self, call: &str, result: CuResult) -> Result<(), ProbeError> {
        if result == CUDA_SUCCESS {
            return Ok(());
        }
        Err(ProbeError::CallFailed {
            call: call.to_owned(),
            code: self.error_name(result),
        })
    }

    /// `CUDA_ERROR_NO_DEVICE (100)` when the driver can name the code, else the number.
    fn error_name(&self, result: CuResult) -> String {
        // SAFETY: the type matches `CUresult cuGetErrorName(CUresult, const char**)`.
        let function: Result<CuGetErrorName, _> = unsafe { self.0.function("cuGetErrorName") };
        let Ok(get_error_name) = function else {
            return format!("CUresult {result}");
        };
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: `name` is a valid out-pointer; on success the driver points it at a static
        // NUL-terminated string.
        let status = unsafe { get_error_name(result, &mut name) };
        if status != CUDA_SUCCESS || name.is_null() {
            return format!("CUresult {result}");
        }
        // SAFETY: checked non-null above; the string is static in the driver.
        let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
        format!("{name} ({result})")
    }

    fn version(&self) -> Result<i32, ProbeError> {
        // SAFETY: the type matches `CUresult cuDriverGetVersion(int*)`.
        let get_version: CuDriverGetVersion = unsafe { self.0.function("cuDriverGetVersion")? };
        let mut version = 0;
        // SAFETY: `version` is a valid out-pointer.
        self.check("cuDriverGetVersion", unsafe { get_version(&mut version) })?;
        Ok(version)
    }

    fn init(&self) -> Result<(), ProbeError> {
        // SAFETY: the type matches `CUresult cuInit(unsigned int)`.
        let init: CuInit = unsafe { self.0.function("cuInit")? };
        // SAFETY: flags must be 0; cuInit may be called any number of times.
        self.check("cuInit(0)", unsafe { init(0) })
    }

    fn device_count(&self) -> Result<i32, ProbeError> {
        // SAFETY: the type matches `CUresult cuDeviceGetCount(int*)`.
        let get_count: CuDeviceGetCount = unsafe { self.0.function("cuDeviceGetCount")? };
        let mut count = 0;
        // SAFETY: `count` is a valid out-pointer.
        self.check("cuDeviceGetCount", unsafe { get_count(&mut count) })?;
        Ok(count)
    }

    fn device_info(&self, ordinal: i32) -> Result<GpuInfo, ProbeError> {
        let device = self.device(ordinal)?;
        Ok(GpuInfo {
            ordinal,
            name: self.device_name(ordinal, device)?,
            compute_capability: (
                self.attribute(
                    ordinal,
                    device,
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                )?,
                self.attribute(
                    ordinal,
                    device,
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                )?,
            ),
            total_memory_bytes: self.total_memory(ordinal, device)?,
        })
    }

    fn device(&self, ordinal: i32) -> Result<CuDevice, ProbeError> {
        // SAFETY: the type matches `CUresult cuDeviceGet(CUdevice*, int)`.
        let get_device: CuDeviceGet = unsafe { self.0.function("cuDeviceGet")? };
        let mut device = 0;
        // SAFETY: `device` is a valid out-pointer.
        let result = unsafe { get_device(&mut device, ordinal) };
        self.check(&format!("cuDeviceGet({ordinal})"), result)?;
        Ok(device)
    }

    fn device_name(&self, ordinal: i32, device: CuDevice) -> Result<String, ProbeError> {
        // SAFETY: the type matches `CUresult cuDeviceGetName(char*, int, CUdevice)`.
        let get_name: CuDeviceGetName = unsafe { self.0.function("cuDeviceGetName")? };
        let mut buffer = [0u8; DEVICE_NAME_CAPACITY];
        // SAFETY: the driver writes at most `len` bytes, NUL-terminated, into `buffer`.
        let result = unsafe {
            get_name(
                buffer.as_mut_ptr().cast(),
                DEVICE_NAME_CAPACITY as c_int,
                device,
            )
        };
        self.check(&format!("cuDeviceGetName({ordinal})"), result)?;
        // A driver that fills the buffer without a NUL still yields a usable name.
        let name = match CStr::from_bytes_until_nul(&buffer) {
            Ok(name) => name.to_string_lossy(),
            Err(_) => String::from_utf8_lossy(&buffer),
        };
        Ok(name.into_owned())
    }

    fn attribute(
        &self,
        ordinal: i32,
        device: CuDevice,
        attribute: c_int,
    ) -> Result<i32, ProbeError> {
        // SAFETY: the type matches
        // `CUresult cuDeviceGetAttribute(int*, CUdevice_attribute, CUdevice)`.
        let get_attribute: CuDeviceGetAttribute =
            unsafe { self.0.function("cuDeviceGetAttribute")? };
        let mut value = 0;
        // SAFETY: `value` is a valid out-pointer.
        let result = unsafe { get_attribute(&mut value, attribute, device) };
        self.check(
            &format!("cuDeviceGetAttribute({attribute}, device {ordinal})"),
            result,
        )?;
        Ok(value)
    }

    fn total_memory(&self, ordinal: i32, device: CuDevice) -> Result<u64, ProbeError> {
        // SAFETY: the type matches `CUresult cuDeviceTotalMem_v2(size_t*, CUdevice)`.
        let total_mem: CuDeviceTotalMem = unsafe { self.0.function("cuDeviceTotalMem_v2")? };
        let mut bytes = 0usize;
        // SAFETY: `bytes` is a valid out-pointer.
        let result = unsafe { total_mem(&mut bytes, device) };
        self.check(&format!("cuDeviceTotalMem_v2({ordinal})"), result)?;
        Ok(bytes as u64)
    }
}

// ---------------------------------------------------------------------------------------
// NVRTC

type NvrtcResult = c_int;
type NvrtcVersion = unsafe extern "C" fn(major: *mut c_int, minor: *mut c_int) -> NvrtcResult;

/// Probes NVRTC. Never panics; see [`NvrtcProbe::error`].
///
/// When [`NVRTC_PATH_ENV`] is set, only that file is tried, so a wrong override is reported
/// rather than silently replaced by whatever the loader finds. The variable is read once
/// per process, when NVRTC is first probed.
pub fn probe_nvrtc() -> NvrtcProbe {
    let mut report = NvrtcProbe::default();
    if let Err(err) = fill_nvrtc_probe(&mut report) {
        report.error = Some(err.to_string());
    }
    report
}

/// The libraries to try and how to name them in errors.
fn nvrtc_candidates(override_path: Option<OsString>) -> (&'static str, Vec<OsString>) {
    match override_path {
        Some(path) if !path.is_empty() => ("NVRTC (from SONIC_NVRTC_PATH)", vec![path]),
        _ => ("NVRTC", os_strings(NVRTC_CANDIDATES)),
    }
}

pub(crate) fn nvrtc_library() -> Result<&'static LoadedLibrary, ProbeError> {
    static NVRTC: LibraryCell = OnceLock::new();
    load_once(&NVRTC, || {
        let (what, candidates) = nvrtc_candidates(std::env::var_os(NVRTC_PATH_ENV));
        load_first(what, &candidates)
    })
}

fn fill_nvrtc_probe(report: &mut NvrtcProbe) -> Result<(), ProbeError> {
    let nvrtc = nvrtc_library()?;
    report.library = Some(nvrtc.name.clone());
    // SAFETY: the type matches `nvrtcResult nvrtcVersion(int*, int*)`.
    let version = unsafe { nvrtc.function::<NvrtcVersion>("nvrtcVersion")? };
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both are valid out-pointers.
    let result = unsafe { version(&mut major, &mut minor) };
    if result != NVRTC_SUCCESS {
        return Err(ProbeError::CallFailed {
            call: "nvrtcVersion".to_owned(),
            code: format!("nvrtcResult {result}"),
        });
    }
    report.version = Some((major, minor));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// cuBLAS

/// `cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)`.
type CublasGetProperty = unsafe extern "C" fn(i32, *mut i32) -> i32;

/// Probes cuBLAS under the names the backend's bindings load it by. Never panics; see
/// [`CublasProbe::error`], which says how to expose a CUDA 13 cuBLAS when only that exists.
pub fn probe_cublas() -> CublasProbe {
    let mut report = CublasProbe::default();
    if let Err(err) = fill_cublas_probe(&mut report) {
        let mut message = err.to_string();
        #[cfg(not(windows))]
        if matches!(err, ProbeError::LibraryNotFound { .. })
            // SAFETY: as in `load_first`: a CUDA library's initialisers have no
            // preconditions on the host process.
            && unsafe { Library::new(CUBLAS_13) }.is_ok()
        {
            message += &format!(
                "; {CUBLAS_13} (CUDA 13) is installed, but the CUDA 12 bindings load cuBLAS \
                 as libcublas.so or libcublas.so.12: link it as libcublas.so in a directory \
                 on LD_LIBRARY_PATH"
            );
        }
        report.error = Some(message);
    }
    report
}

fn fill_cublas_probe(report: &mut CublasProbe) -> Result<(), ProbeError> {
    static CUBLAS: LibraryCell = OnceLock::new();
    let cublas = load_once(&CUBLAS, || {
        load_first("cuBLAS", &os_strings(CUBLAS_CANDIDATES))
    })?;
    report.library = Some(cublas.name.clone());
    // SAFETY: the type matches cublasGetProperty's prototype.
    let property = unsafe { cublas.function::<CublasGetProperty>("cublasGetProperty")? };
    let mut parts = [0i32; 3];
    // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL of libraryPropertyType.
    for (kind, part) in parts.iter_mut().enumerate() {
        // SAFETY: `part` is a valid int; the call needs no handle and no GPU.
        let status = unsafe { property(kind as i32, part) };
        if status != 0 {
            return Err(ProbeError::CallFailed {
                call: "cublasGetProperty".to_owned(),
                code: format!("cublasStatus_t {status}"),
            });
        }
    }
    report.version = Some((parts[0], parts[1], parts[2]));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// cuDNN

type CudnnGetVersion = unsafe extern "C" fn() -> usize;

/// Probes cuDNN. Never panics; see [`CudnnProbe::error`].
pub fn probe_cudnn() -> CudnnProbe {
    let mut report = CudnnProbe::default();
    if let Err(err) = fill_cudnn_probe(&mut report) {
        report.error = Some(err.to_string());
    }
    report
}

/// Decodes `cudnnGetVersion()`: `major·10000 + minor·100 + patch` from cuDNN 9 on,
/// `major·1000 + minor·100 + patch` before.
pub fn decode_cudnn_version(encoded: usize) -> (i32, i32, i32) {
    let encoded = encoded as i32;
    if encoded >= 90000 {
        (encoded / 10000, encoded / 100 % 100, encoded % 100)
    } else {
        (encoded / 1000, encoded / 100 % 10, encoded % 100)
    }
}

fn cudnn_library() -> Result<&'static LoadedLibrary, ProbeError> {
    static CUDNN: LibraryCell = OnceLock::new();
    load_once(&CUDNN, || {
        load_first("cuDNN", &os_strings(CUDNN_CANDIDATES))
    })
}

fn fill_cudnn_probe(report: &mut CudnnProbe) -> Result<(), ProbeError> {
    let cudnn = cudnn_library()?;
    report.library = Some(cudnn.name.clone());
    // SAFETY: the type matches `size_t cudnnGetVersion(void)`.
    let version = unsafe { cudnn.function::<CudnnGetVersion>("cudnnGetVersion")? };
    // SAFETY: no arguments; cuDNN returns the version it was built as, GPU or not.
    report.version = Some(decode_cudnn_version(unsafe { version() }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_cuda_versions() {
        assert_eq!(decode_cuda_version(12040), (12, 4));
        assert_eq!(decode_cuda_version(13000), (13, 0));
        assert_eq!(decode_cuda_version(11080), (11, 8));
        assert_eq!(decode_cuda_version(12090), (12, 9));
    }

    #[test]
    fn missing_library_error_names_every_candidate() {
        let candidates = [
            OsString::from("libsonic_absent_a.so"),
            OsString::from("libsonic_absent_b.so"),
        ];
        let Err(err) = load_first("test", &candidates) else {
            panic!("a library that does not exist was loaded");
        };
        let message = err.to_string();
        assert!(
            message.starts_with("could not load the test library"),
            "{message}"
        );
        assert!(message.contains("libsonic_absent_a.so"), "{message}");
        assert!(message.contains("libsonic_absent_b.so"), "{message}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn missing_symbol_error_names_library_and_symbol() {
        let libc = load_first("C", &os_strings(&["libc.so.6"])).expect("glibc is loadable");
        let libc: &'static LoadedLibrary = Box::leak(Box::new(libc));
        // SAFETY: the lookup fails, so the type is never used to call anything.
        let Err(err) = (unsafe { libc.function::<CuInit>("cuInit") }) else {
            panic!("libc exports cuInit");
        };
        let message = err.to_string();
        assert!(
            message.starts_with("libc.so.6 has no symbol `cuInit`: "),
            "{message}"
        );
        assert!(message.contains("undefined symbol"), "{message}");
    }

    #[test]
    fn driver_probe_without_library_explains_why() {
        let probe = probe_driver();
        match &probe.library {
            // This machine has no driver; a GPU host takes the other arm.
            None => {
                let error = probe
                    .error
                    .expect("a missing driver must come with an error");
                assert!(error.contains("CUDA driver"), "{error}");
                assert!(error.contains(DRIVER_CANDIDATES[0]), "{error}");
                assert_eq!(probe.version, None);
                assert!(probe.devices.is_empty());
            }
            Some(_) => assert!(probe.version.is_some() || probe.error.is_some()),
        }
    }

    #[test]
    fn nvrtc_and_cudnn_probes_report_library_or_error() {
        let (nvrtc, cudnn) = (probe_nvrtc(), probe_cudnn());
        let reports = [
            (
                "NVRTC",
                &nvrtc.library,
                nvrtc.version.is_some(),
                &nvrtc.error,
            ),
            (
                "cuDNN",
                &cudnn.library,
                cudnn.version.is_some(),
                &cudnn.error,
            ),
        ];
        for (what, library, versioned, error) in reports {
            match library {
                None => assert!(
                    error.as_deref().is_some_and(|e| e.contains(what)),
                    "{what}: {error:?}"
                ),
                Some(_) => assert!(versioned || error.is_some(), "{what}: {error:?}"),
            }
        }
    }

    #[test]
    fn nvrtc_override_replaces_default_candidates() {
        let custom = OsString::from("/opt/nvrtc/libnvrtc.so.12");
        let (what, candidates) = nvrtc_candidates(Some(custom.clone()));
        assert_eq!(candidates, [custom]);
        assert!(what.contains(NVRTC_PATH_ENV));
        let defaults = ("NVRTC", os_strings(NVRTC_CANDIDATES));
        assert_eq!(nvrtc_candidates(None), defaults);
        assert_eq!(nvrtc_candidates(Some(OsString::new())), defaults);
    }

    #[test]
    fn identical_failures_are_reported_once() {
        let attempt = |candidate: &str, reason: &str| LoadAttempt {
            candidate: candidate.to_owned(),
            reason: reason.to_owned(),
        };
        let same = [attempt("a.so", "not found"), attempt("b.so", "not found")];
        assert_eq!(describe_attempts(&same), "tried a.so, b.so: not found");
        let different = [
            attempt("a.so", "not found"),
            attempt("b.so", "wrong ELF class"),
        ];
        assert_eq!(
            describe_attempts(&different),
            "tried a.so: not found; b.so: wrong ELF class"
        );
    }

    #[test]
    fn probes_are_repeatable() {
        assert_eq!(probe_driver(), probe_driver());
        assert_eq!(probe_nvrtc(), probe_nvrtc());
        assert_eq!(probe_cudnn(), probe_cudnn());
    }

    #[test]
    fn decodes_cudnn_versions() {
        assert_eq!(decode_cudnn_version(90100), (9, 1, 0));
        assert_eq!(decode_cudnn_version(91002), (9, 10, 2));
        assert_eq!(decode_cudnn_version(8907), (8, 9, 7));
    }
}
