//! Builds kernel variants against `kernels-cu/emulator/cuda_emulator.hpp` with the host's
//! C++ compiler and launches them on host memory, as cuLaunchKernel would on a device.
//!
//! The sources compiled are the ones the registry embeds for NVRTC, written out next to the
//! emulator header, so what runs here is byte for byte what the GPU compiles. Libraries are
//! cached under the test target directory by a hash of everything that goes into them.

use std::alloc::{alloc, dealloc, Layout};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use half::{bf16, f16};
use sha2::{Digest, Sha256};
use sonic_core::DType;
use sonic_kernels::registry::HEADERS;
use sonic_kernels::Variant;

const EMULATOR: &str = include_str!("../../../kernels-cu/emulator/cuda_emulator.hpp");
/// Set to make a missing C++ compiler a failure instead of a skip (CI sets it).
const REQUIRE_ENV: &str = "SONIC_REQUIRE_EMULATOR";
/// Extra compiler flags, e.g. `-fsanitize=address` (then run the tests with libasan
/// preloaded) to catch reads far outside a buffer.
const FLAGS_ENV: &str = "SONIC_EMULATOR_CXXFLAGS";

/// One compiled variant.
pub struct Module {
    name: String,
    library: libloading::Library,
}

/// `emu::Launch` of the emulator header.
#[repr(C)]
struct Launch {
    grid: [u32; 3],
    block: [u32; 3],
    shared_bytes: u64,
    reverse: i32,
    late_copies: i32,
}

type Launcher =
    unsafe extern "C" fn(*const Launch, *const *mut std::ffi::c_void, *mut u8, u64) -> i32;
type Parameters = unsafe extern "C" fn(*mut u64, u64) -> u64;

/// How the emulator schedules a launch: threads first-to-last with cp.async landing at
/// issue, or last-to-first with cp.async landing only at its wait. A missing barrier or
/// wait shows under one of the two.
#[derive(Clone, Copy, Debug)]
pub enum Schedule {
    Forward,
    Reverse,
}

pub const SCHEDULES: [Schedule; 2] = [Schedule::Forward, Schedule::Reverse];

/// A launch configuration: grid, block, dynamic shared memory.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_bytes: usize,
}

impl Config {
    pub fn linear(grid: u32, block: u32, shared_bytes: usize) -> Config {
        Config {
            grid: [grid, 1, 1],
            block: [block, 1, 1],
            shared_bytes,
        }
    }
}

/// `CXX` (default `c++`) if it runs; looked up once per test binary.
fn compiler() -> Option<&'static str> {
    static CXX: OnceLock<Option<String>> = OnceLock::new();
    CXX.get_or_init(|| {
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_owned());
        let found = Command::new(&cxx)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        found.then_some(cxx)
    })
    .as_deref()
}

/// The library cache: under the test target directory, or the temporary directory for a
/// test binary run away from its build tree (the GPU bundle).
fn build_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("emulated-kernels");
        if std::fs::create_dir_all(&target).is_ok() {
            return target;
        }
        let temp = std::env::temp_dir().join("sonic-emulated-kernels");
        std::fs::create_dir_all(&temp).expect("emulator build dir");
        temp
    })
    .clone()
}

impl Module {
    /// The variant built for the emulator, or `None` (reason printed) without a compiler.
    pub fn get(variant: Variant) -> Option<Arc<Module>> {
        static MODULES: OnceLock<Mutex<HashMap<Variant, Arc<Module>>>> = OnceLock::new();
        let Some(cxx) = compiler() else {
            assert!(
                std::env::var_os(REQUIRE_ENV).is_none(),
                "{REQUIRE_ENV} is set but no C++ compiler runs (set CXX)"
            );
            eprintln!("skipped: no C++ compiler for the kernel emulator (set CXX)");
            return None;
        };
        let modules = MODULES.get_or_init(Default::default);
        if let Some(m) = modules.lock().expect("module cache").get(&variant) {
            return Some(m.clone());
        }
        let module = Arc::new(Module::build(cxx, variant));
        modules
            .lock()
            .expect("module cache")
            .insert(variant, module.clone());
        Some(module)
    }

    fn build(cxx: &str, variant: Variant) -> Module {
        let kernel = variant.kernel;
        let mut unit = format!(
            "#include \"emulator/cuda_emulator.hpp\"\n#include \"{}\"\n",
            kernel.file()
        );
        for entry in kernel.entries() {
            unit += &format!("EMU_EXPORT({entry})\n");
        }
        let mut options = variant.options();
        options.extend(
            [
                "-O1",
                "-g0",
                "-ffp-contract=off",
                "-fPIC",
                "-shared",
                "-fvisibility=hidden",
                "-Wall",
                "-Werror",
                "-Wno-unknown-pragmas",
            ]
            .map(String::from),
        );
        if let Ok(extra) = std::env::var(FLAGS_ENV) {
            options.extend(extra.split_whitespace().map(String::from));
        }
        let mut hash = Sha256::new();
        for part in [EMULATOR, kernel.source(), &unit, &options.join(" "), cxx] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        for (_, text) in HEADERS {
            hash.update(text.as_bytes());
        }
        let digest: String = hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = variant.name();
        let dir = build_dir().join(format!("{name}-{digest}"));
        let library = dir.join(format!("lib{name}.so"));
        if !library.exists() {
            let staging = tempfile::tempdir_in(build_dir()).expect("staging directory");
            let src = staging.path();
            std::fs::create_dir_all(src.join("emulator")).expect("emulator dir");
            std::fs::write(src.join("emulator/cuda_emulator.hpp"), EMULATOR).expect("header");
            for (file, text) in HEADERS {
                std::fs::write(src.join(file), text).expect("kernel header");
            }
            std::fs::write(src.join(kernel.file()), kernel.source()).expect("kernel source");
            std::fs::write(src.join("unit.cpp"), unit).expect("unit");
            let out = src.join("lib.so");
            let result = Command::new(cxx)
                .args(&options)
                .arg("-I")
                .arg(src)
                .arg("-o")
                .arg(&out)
                .arg(src.join("unit.cpp"))
                .output()
                .expect("run the C++ compiler");
            assert!(
                result.status.success(),
                "{name} does not build for the emulator:\n{}",
                String::from_utf8_lossy(&result.stderr)
            );
            std::fs::create_dir_all(&dir).expect("cache dir");
            // Rename within one directory tree: a concurrent build never sees half a file.
            std::fs::rename(&out, &library).expect("publish library");
        }
        // SAFETY: the library was built from the emulator header and a kernel source; its
        // initialisers only set up C++ statics.
        let library = unsafe { libloading::Library::new(&library) }.expect("load library");
        Module { name, library }
    }

    /// The arguments must match the kernel's parameters in number and byte size: the
    /// kernel reads each through its pointer, so a missing or narrower one is read past.
    fn check_arguments(&self, entry: &str, args: &Args) -> Result<(), String> {
        let symbol = format!("emu_{entry}_parameters");
        // SAFETY: EMU_EXPORT defines this symbol with the `Parameters` signature.
        let parameters: libloading::Symbol<Parameters> =
            unsafe { self.library.get(symbol.as_bytes()) }
                .unwrap_or_else(|e| panic!("{}: no {symbol}: {e}", self.name));
        let mut sizes = [0u64; 32];
        // SAFETY: `sizes` holds the capacity passed.
        let count = unsafe { parameters(sizes.as_mut_ptr(), sizes.len() as u64) } as usize;
        let expected = &sizes[..count.min(sizes.len())];
        let given: Vec<u64> = args.0.iter().map(|a| a.len() as u64).collect();
        if given != expected {
            return Err(format!(
                "{}::{entry} takes parameters of {expected:?} bytes; the call passes {given:?}",
                self.name
            ));
        }
        Ok(())
    }

    /// Launches `entry` under `schedule`; `Err` carries the emulator's finding.
    pub fn launch(
        &self,
        entry: &str,
        cfg: Config,
        schedule: Schedule,
        args: &mut Args,
    ) -> Result<(), String> {
        self.check_arguments(entry, args)?;
        let symbol = format!("emu_{entry}");
        // SAFETY: every export of the library has the `Launcher` signature (EMU_EXPORT).
        let launcher: libloading::Symbol<Launcher> = unsafe { self.library.get(symbol.as_bytes()) }
            .unwrap_or_else(|e| panic!("{}: no {symbol}: {e}", self.name));
        let launch = Launch {
            grid: cfg.grid,
            block: cfg.block,
            shared_bytes: cfg.shared_bytes as u64,
            reverse: matches!(schedule, Schedule::Reverse) as i32,
            late_copies: matches!(schedule, Schedule::Reverse) as i32,
        };
        let pointers = args.pointers();
        let mut error = vec![0u8; 512];
        // SAFETY: `pointers` holds one pointer per kernel parameter to a value of its type,
        // the buffers they name outlive the call, and `error` has the length passed.
        let status = unsafe {
            launcher(
                &launch,
                pointers.as_ptr(),
                error.as_mut_ptr(),
                error.len() as u64,
            )
        };
        if status == 0 {
            return Ok(());
        }
        let end = error.iter().position(|&b| b == 0).unwrap_or(error.len());
        Err(format!(
            "{}::{entry} ({schedule:?}): {}",
            self.name,
            String::from_utf8_lossy(&error[..end])
        ))
    }
}

/// Kernel arguments, each stored as the bytes of its C type.
#[derive(Default)]
pub struct Args(Vec<Vec<u8>>);

impl Args {
    pub fn new() -> Args {
        Args::default()
    }
    fn push(mut self, bytes: &[u8]) -> Args {
        self.0.push(bytes.to_vec());
        self
    }
    pub fn buf(self, b: &Buffer) -> Args {
        self.push(&(b.ptr() as u64).to_ne_bytes())
    }
    pub fn null(self) -> Args {
        self.push(&0u64.to_ne_bytes())
    }
    pub fn opt(self, b: Option<&Buffer>) -> Args {
        match b {
            Some(b) => self.buf(b),
            None => self.null(),
        }
    }
    pub fn i32(self, v: i32) -> Args {
        self.push(&v.to_ne_bytes())
    }
    pub fn i64(self, v: i64) -> Args {
        self.push(&v.to_ne_bytes())
    }
    pub fn f32(self, v: f32) -> Args {
        self.push(&v.to_ne_bytes())
    }
    /// Consecutive `int` parameters, one per value (not a struct: see `ints`).
    pub fn i32s<const N: usize>(self, values: [i32; N]) -> Args {
        values.into_iter().fold(self, Args::i32)
    }
    /// Consecutive `long long` parameters, one per value.
    pub fn i64s<const N: usize>(self, values: [i64; N]) -> Args {
        values.into_iter().fold(self, Args::i64)
    }
    /// A `#[repr(C)]` struct of plain integers passed by value.
    pub fn ints<const N: usize>(self, words: [i32; N]) -> Args {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        self.push(&bytes)
    }
    pub fn longs<const N: usize>(self, words: [i64; N]) -> Args {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        self.push(&bytes)
    }
    /// Raw bytes of a by-value struct with mixed fields.
    pub fn bytes(self, bytes: Vec<u8>) -> Args {
        self.push(&bytes)
    }
    fn pointers(&mut self) -> Vec<*mut std::ffi::c_void> {
        self.0
            .iter_mut()
            .map(|a| a.as_mut_ptr().cast::<std::ffi::c_void>())
            .collect()
    }
}

/// Bytes on each side of a buffer that no kernel may touch. They hold NaN in every dtype,
/// so a read past either end poisons what it feeds, and a write there is seen on return.
const GUARD: usize = 256;
const GUARD_BYTE: u8 = 0xff;

/// A device allocation stand-in: 256-byte aligned storage of `dtype` elements between two
/// guard bands. Outputs start as NaN, so an element no thread writes fails its comparison.
pub struct Buffer {
    base: *mut u8,
    layout: Layout,
    pub len: usize,
    pub dtype: DType,
}

// SAFETY: the buffer owns its allocation; kernels touch it only during a launch.
unsafe impl Send for Buffer {}

impl Buffer {
    fn raw(len: usize, dtype: DType, fill: u8) -> Buffer {
        let bytes = len * dtype.size_in_bytes();
        let layout = Layout::from_size_align(bytes + 2 * GUARD, GUARD).expect("layout");
        // SAFETY: the layout is non-zero (guards) and valid.
        let base = unsafe { alloc(layout) };
        assert!(!base.is_null(), "allocation");
        // SAFETY: `base` spans `layout.size()` bytes.
        unsafe {
            std::ptr::write_bytes(base, GUARD_BYTE, GUARD);
            std::ptr::write_bytes(base.add(GUARD), fill, bytes);
            std::ptr::write_bytes(base.add(GUARD + bytes), GUARD_BYTE, GUARD);
        }
        Buffer {
            base,
            layout,
            len,
            dtype,
        }
    }

    /// `data` stored as `dtype` (rounded to nearest).
    pub fn from_f32(data: &[f32], dtype: DType) -> Buffer {
        let bytes: Vec<u8> = match dtype {
            DType::F32 => data.iter().flat_map(|x| x.to_ne_bytes()).collect(),
            DType::F16 => data
                .iter()
                .flat_map(|&x| f16::from_f32(x).to_bits().to_ne_bytes())
                .collect(),
            DType::BF16 => data
                .iter()
                .flat_map(|&x| bf16::from_f32(x).to_bits().to_ne_bytes())
                .collect(),
        };
        let b = Buffer::raw(data.len(), dtype, 0);
        // SAFETY: the payload holds exactly `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), b.ptr(), bytes.len()) };
        b
    }

    /// 64-bit indices (index_select's `index`), counted as pairs of f32 words: only the
    /// address and the guards of such a buffer are used.
    pub fn from_i64(data: &[i64]) -> Buffer {
        let b = Buffer::raw(2 * data.len(), DType::F32, 0);
        // SAFETY: the payload holds 2 · 4 bytes per index.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr().cast::<u8>(), b.ptr(), 8 * data.len())
        };
        b
    }

    /// Every byte 0xff: NaN in f32, f16 and bf16.
    pub fn poisoned(len: usize, dtype: DType) -> Buffer {
        Buffer::raw(len, dtype, 0xff)
    }

    pub fn ptr(&self) -> *mut u8 {
        // SAFETY: within the allocation.
        unsafe { self.base.add(GUARD) }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the payload spans len elements after the leading guard.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len * self.dtype.size_in_bytes()) }
    }

    pub fn to_f32(&self) -> Vec<f32> {
        self.assert_guards();
        let bytes = self.bytes();
        match self.dtype {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32())
                .collect(),
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_bits(u16::from_ne_bytes([c[0], c[1]])).to_f32())
                .collect(),
        }
    }

    /// Panics when a kernel wrote outside the buffer.
    pub fn assert_guards(&self) {
        let bytes = self.len * self.dtype.size_in_bytes();
        // SAFETY: both guards lie inside the allocation.
        let (head, tail) = unsafe {
            (
                std::slice::from_raw_parts(self.base, GUARD),
                std::slice::from_raw_parts(self.base.add(GUARD + bytes), GUARD),
            )
        };
        assert!(
            head.iter().chain(tail).all(|&b| b == GUARD_BYTE),
            "a kernel wrote outside a buffer of {} {} elements",
            self.len,
            self.dtype
        );
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `raw` with this layout.
        unsafe { dealloc(self.base, self.layout) }
    }
}
