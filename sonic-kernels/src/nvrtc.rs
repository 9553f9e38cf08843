//! Run-time compilation with NVRTC, called through the library that [`crate::probe`] opened.
//!
//! cudarc's own NVRTC binding panics when the library is missing, and its safe API returns
//! PTX only; this one returns errors and hands back CUBIN as well, which the driver loads
//! without JIT and without the "PTX newer than the driver" failure.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;

use crate::error::KernelError;
use crate::probe::{nvrtc_library, LoadedLibrary};

type NvrtcResult = c_int;
type Program = *mut std::ffi::c_void;

type CreateProgram = unsafe extern "C" fn(
    prog: *mut Program,
    src: *const c_char,
    name: *const c_char,
    num_headers: c_int,
    headers: *const *const c_char,
    include_names: *const *const c_char,
) -> NvrtcResult;
type CompileProgram = unsafe extern "C" fn(
    prog: Program,
    num_options: c_int,
    options: *const *const c_char,
) -> NvrtcResult;
type GetSize = unsafe extern "C" fn(prog: Program, size: *mut usize) -> NvrtcResult;
type GetBytes = unsafe extern "C" fn(prog: Program, out: *mut c_char) -> NvrtcResult;
type DestroyProgram = unsafe extern "C" fn(prog: *mut Program) -> NvrtcResult;
type GetErrorString = unsafe extern "C" fn(result: NvrtcResult) -> *const c_char;
type Version = unsafe extern "C" fn(major: *mut c_int, minor: *mut c_int) -> NvrtcResult;

/// One compiled translation unit.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub ptx: String,
    pub cubin: Vec<u8>,
    /// NVRTC's program log (warnings; empty on a clean compile).
    pub log: String,
}

/// What a compilation needs besides the source: embedded headers and NVRTC options.
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    /// Names the program in NVRTC's messages.
    pub name: &'a str,
    pub source: &'a str,
    /// `(include name, text)` pairs that `#include "name"` resolves to.
    pub headers: &'a [(&'a str, &'a str)],
    pub options: &'a [String],
}

fn library() -> Result<&'static LoadedLibrary, KernelError> {
    nvrtc_library().map_err(|e| KernelError::NvrtcUnavailable(e.to_string()))
}

/// # Safety
/// `F` must match the C prototype of `symbol`.
unsafe fn symbol<F: Copy>(symbol: &'static str) -> Result<F, KernelError> {
    let lib = library()?;
    // SAFETY: forwarded to the caller.
    unsafe { lib.function::<F>(symbol) }.map_err(|e| KernelError::NvrtcUnavailable(e.to_string()))
}

/// NVRTC's (major, minor) version; part of the kernel cache key.
pub fn version() -> Result<(i32, i32), KernelError> {
    // SAFETY: the type matches `nvrtcResult nvrtcVersion(int*, int*)`.
    let version: Version = unsafe { symbol("nvrtcVersion")? };
    let (mut major, mut minor) = (0, 0);
    // SAFETY: both are valid out-pointers.
    check("nvrtcVersion", unsafe { version(&mut major, &mut minor) })?;
    Ok((major, minor))
}

fn describe(result: NvrtcResult) -> String {
    // SAFETY: the type matches `const char* nvrtcGetErrorString(nvrtcResult)`.
    let Ok(get) = (unsafe { symbol::<GetErrorString>("nvrtcGetErrorString") }) else {
        return format!("nvrtcResult {result}");
    };
    // SAFETY: NVRTC returns a static NUL-terminated string for any code.
    let text = unsafe { get(result) };
    if text.is_null() {
        return format!("nvrtcResult {result}");
    }
    // SAFETY: checked non-null; the string is static in the library.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    format!("{text} ({result})")
}

fn check(call: &'static str, result: NvrtcResult) -> Result<(), KernelError> {
    if result == 0 {
        Ok(())
    } else {
        Err(KernelError::NvrtcCall {
            call,
            message: describe(result),
        })
    }
}

fn c_string(what: &'static str, text: &str) -> Result<CString, KernelError> {
    CString::new(text).map_err(|_| KernelError::NvrtcCall {
        call: what,
        message: "text contains a NUL byte".to_owned(),
    })
}

/// Destroys the program however the compilation ends.
struct ProgramGuard(Program);

impl Drop for ProgramGuard {
    fn drop(&mut self) {
        // SAFETY: the type matches `nvrtcResult nvrtcDestroyProgram(nvrtcProgram*)`.
        if let Ok(destroy) = unsafe { symbol::<DestroyProgram>("nvrtcDestroyProgram") } {
            // SAFETY: the program was created by nvrtcCreateProgram and is destroyed once.
            // Its result is ignored: nothing useful can be done about a failed free.
            unsafe { destroy(&mut self.0) };
        }
    }
}

/// Reads one of the program's outputs (log, PTX, CUBIN) through its size/get pair.
fn read_output(
    program: Program,
    size_call: &'static str,
    get_call: &'static str,
) -> Result<Vec<u8>, KernelError> {
    // SAFETY: the types match `nvrtcResult nvrtcGetXSize(nvrtcProgram, size_t*)` and
    // `nvrtcResult nvrtcGetX(nvrtcProgram, char*)` for the log, PTX and CUBIN.
    let (get_size, get): (GetSize, GetBytes) = unsafe { (symbol(size_call)?, symbol(get_call)?) };
    let mut size = 0usize;
    // SAFETY: `program` is live and `size` is a valid out-pointer.
    check(size_call, unsafe { get_size(program, &mut size) })?;
    let mut bytes = vec![0u8; size];
    if size > 0 {
        // SAFETY: `bytes` holds exactly the size NVRTC asked for.
        check(get_call, unsafe { get(program, bytes.as_mut_ptr().cast()) })?;
    }
    Ok(bytes)
}

/// Text outputs end in a NUL that Rust strings do not need.
fn text(mut bytes: Vec<u8>) -> String {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Compiles `unit` for `arch` (`"sm_90"`: a real architecture, so NVRTC also emits CUBIN).
pub fn compile(unit: &Unit<'_>, arch: &str) -> Result<Compiled, KernelError> {
    // SAFETY: the types match the NVRTC prototypes of the same names.
    let (create, compile): (CreateProgram, CompileProgram) = unsafe {
        (
            symbol("nvrtcCreateProgram")?,
            symbol("nvrtcCompileProgram")?,
        )
    };
    let source = c_string("nvrtcCreateProgram", unit.source)?;
    let name = c_string("nvrtcCreateProgram", unit.name)?;
    let header_names = unit
        .headers
        .iter()
        .map(|(n, _)| c_string("nvrtcCreateProgram", n))
        .collect::<Result<Vec<_>, _>>()?;
    let header_texts = unit
        .headers
        .iter()
        .map(|(_, t)| c_string("nvrtcCreateProgram", t))
        .collect::<Result<Vec<_>, _>>()?;
    let name_ptrs: Vec<*const c_char> = header_names.iter().map(|c| c.as_ptr()).collect();
    let text_ptrs: Vec<*const c_char> = header_texts.iter().map(|c| c.as_ptr()).collect();
    let mut options = vec![format!("--gpu-architecture={arch}")];
    options.extend(unit.options.iter().cloned());
    let options = options
        .iter()
        .map(|o| c_string("nvrtcCompileProgram", o))
        .collect::<Result<Vec<_>, _>>()?;
    let option_ptrs: Vec<*const c_char> = options.iter().map(|c| c.as_ptr()).collect();

    let mut program: Program = ptr::null_mut();
    // SAFETY: every pointer refers to a live NUL-terminated string; the two header arrays
    // have the length passed.
    let created = unsafe {
        create(
            &mut program,
            source.as_ptr(),
            name.as_ptr(),
            text_ptrs.len() as c_int,
            text_ptrs.as_ptr(),
            name_ptrs.as_ptr(),
        )
    };
    check("nvrtcCreateProgram", created)?;
    let program = ProgramGuard(program);
    // SAFETY: the program is live; the options array has the length passed.
    let compiled = unsafe { compile(program.0, option_ptrs.len() as c_int, option_ptrs.as_ptr()) };
    let log = text(read_output(
        program.0,
        "nvrtcGetProgramLogSize",
        "nvrtcGetProgramLog",
    )?);
    if compiled != 0 {
        return Err(KernelError::Compile {
            variant: unit.name.to_owned(),
            arch: arch.to_owned(),
            log: format!("{}\n{log}", describe(compiled)),
        });
    }
    let ptx = text(read_output(program.0, "nvrtcGetPTXSize", "nvrtcGetPTX")?);
    let cubin = read_output(program.0, "nvrtcGetCUBINSize", "nvrtcGetCUBIN")?;
    Ok(Compiled { ptx, cubin, log })
}
