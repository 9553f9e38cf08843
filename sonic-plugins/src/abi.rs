//! `#[repr(C)]` mirrors of include/sonic_plugin.h, which is the source of truth: a test
//! compiles the header and checks that every struct has the same size and field offsets.

use std::ffi::{c_char, c_void};

pub const ABI_MAJOR: u32 = 1;
pub const ABI_MINOR: u32 = 0;

pub const ENTRY_SYMBOL: &[u8] = b"sonic_plugin_entry\0";
pub const SAMPLER_FACTORY_ID: &str = "sonic.sampler/1";
pub const AUDIO_ENCODER_FACTORY_ID: &str = "sonic.audio-encoder/1";

pub type Status = i32;
pub const OK: Status = 0;
pub const ERR_INVALID_ARGUMENT: Status = -1;
pub const ERR_UNSUPPORTED: Status = -2;
pub const ERR_OUT_OF_MEMORY: Status = -3;
pub const ERR_INTERNAL: Status = -4;
pub const ERR_PANIC: Status = -5;
pub const ERR_HOST: Status = -6;

pub const DTYPE_F32: u32 = 0;
pub const DTYPE_F16: u32 = 1;
pub const DTYPE_BF16: u32 = 2;
pub const DEVICE_CPU: u32 = 1;
pub const DEVICE_CUDA: u32 = 2;

pub const LOG_ERROR: i32 = 0;
pub const LOG_WARN: i32 = 1;
pub const LOG_INFO: i32 = 2;
pub const LOG_DEBUG: i32 = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TensorView {
    pub dtype: u32,
    pub device_type: u32,
    pub device_id: i32,
    pub ndim: u32,
    pub shape: *const i64,
    pub strides: *const i64,
    pub data: *mut c_void,
}

#[repr(C)]
pub struct Host {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub host_version: *const c_char,
    pub host_data: *mut c_void,
    pub log: Option<unsafe extern "C" fn(*const Host, i32, *const c_char)>,
    pub alloc: Option<unsafe extern "C" fn(*const Host, usize, usize) -> *mut c_void>,
    pub free: Option<unsafe extern "C" fn(*const Host, *mut c_void, usize, usize)>,
}

#[repr(C)]
pub struct Descriptor {
    pub struct_size: u32,
    pub id: *const c_char,
    pub name: *const c_char,
    pub version: *const c_char,
    pub vendor: *const c_char,
    pub description: *const c_char,
}

#[repr(C)]
pub struct PluginEntry {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub host_min_version: *const c_char,
    pub init: Option<unsafe extern "C" fn(*const Host) -> Status>,
    pub deinit: Option<unsafe extern "C" fn()>,
    pub get_factory: Option<unsafe extern "C" fn(*const c_char) -> *const c_void>,
}

#[repr(C)]
pub struct SamplerHostCalls {
    pub struct_size: u32,
    pub ctx: *mut c_void,
    pub denoise: Option<
        unsafe extern "C" fn(*mut c_void, *const TensorView, f32, *const TensorView) -> Status,
    >,
    pub noise: Option<unsafe extern "C" fn(*mut c_void, *const TensorView) -> Status>,
}

#[repr(C)]
pub struct SamplerVtable {
    pub struct_size: u32,
    pub model_calls: Option<unsafe extern "C" fn(*mut Sampler, u32, *const f32, u32) -> u32>,
    pub reset: Option<unsafe extern "C" fn(*mut Sampler) -> Status>,
    #[allow(clippy::type_complexity)]
    pub step: Option<
        unsafe extern "C" fn(
            *mut Sampler,
            u32,
            *const f32,
            u32,
            *const TensorView,
            *const SamplerHostCalls,
            *const TensorView,
        ) -> Status,
    >,
    pub last_error: Option<unsafe extern "C" fn(*mut Sampler) -> *const c_char>,
    pub destroy: Option<unsafe extern "C" fn(*mut Sampler)>,
}

#[repr(C)]
pub struct Sampler {
    pub vtable: *const SamplerVtable,
    pub plugin_data: *mut c_void,
}

#[repr(C)]
pub struct SamplerFactory {
    pub struct_size: u32,
    pub count: Option<unsafe extern "C" fn() -> u32>,
    pub descriptor: Option<unsafe extern "C" fn(u32) -> *const Descriptor>,
    pub create:
        Option<unsafe extern "C" fn(*const Host, *const c_char, *const c_char) -> *mut Sampler>,
}

#[repr(C)]
pub struct AudioEncoderInfo {
    pub struct_size: u32,
    pub sample_rate: u32,
    pub frames_per_second: f32,
    pub layers: u32,
    pub hidden_size: u32,
}

#[repr(C)]
pub struct AudioEncoderVtable {
    pub struct_size: u32,
    pub info: Option<unsafe extern "C" fn(*mut AudioEncoder, *mut AudioEncoderInfo) -> Status>,
    pub frames_for: Option<unsafe extern "C" fn(*mut AudioEncoder, u64, *mut u64) -> Status>,
    pub encode: Option<
        unsafe extern "C" fn(*mut AudioEncoder, *const f32, u64, *const TensorView) -> Status,
    >,
    pub last_error: Option<unsafe extern "C" fn(*mut AudioEncoder) -> *const c_char>,
    pub destroy: Option<unsafe extern "C" fn(*mut AudioEncoder)>,
}

#[repr(C)]
pub struct AudioEncoder {
    pub vtable: *const AudioEncoderVtable,
    pub plugin_data: *mut c_void,
}

#[repr(C)]
pub struct AudioEncoderFactory {
    pub struct_size: u32,
    pub count: Option<unsafe extern "C" fn() -> u32>,
    pub descriptor: Option<unsafe extern "C" fn(u32) -> *const Descriptor>,
    pub create: Option<
        unsafe extern "C" fn(*const Host, *const c_char, *const c_char) -> *mut AudioEncoder,
    >,
}

// Descriptors and the entry are immutable statics shared by every thread of the host.
unsafe impl Sync for Descriptor {}
unsafe impl Sync for PluginEntry {}
unsafe impl Sync for SamplerVtable {}
unsafe impl Sync for SamplerFactory {}
unsafe impl Sync for AudioEncoderVtable {}
unsafe impl Sync for AudioEncoderFactory {}

/// `size_of` as the u32 every struct carries in `struct_size`.
pub const fn size_u32<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

/// Field offsets of every struct, named as in the header, for the layout test.
#[cfg(test)]
pub(crate) fn layout_table() -> Vec<(&'static str, usize)> {
    use std::mem::{offset_of, size_of};
    macro_rules! layout {
        ($($c:literal => $t:ty { $($f:ident),* }),* $(,)?) => {{
            let mut v = Vec::new();
            $(
                v.push(($c, size_of::<$t>()));
                $( v.push((concat!($c, ".", stringify!($f)), offset_of!($t, $f))); )*
            )*
            v
        }};
    }
    layout! {
        "sonic_tensor_view_t" => TensorView { dtype, device_type, device_id, ndim, shape, strides, data },
        "sonic_host_t" => Host { struct_size, abi_major, abi_minor, host_version, host_data, log, alloc, free },
        "sonic_descriptor_t" => Descriptor { struct_size, id, name, version, vendor, description },
        "sonic_plugin_entry_t" => PluginEntry { struct_size, abi_major, abi_minor, host_min_version, init, deinit, get_factory },
        "sonic_sampler_host_calls_t" => SamplerHostCalls { struct_size, ctx, denoise, noise },
        "sonic_sampler_vtable_t" => SamplerVtable { struct_size, model_calls, reset, step, last_error, destroy },
        "sonic_sampler_t" => Sampler { vtable, plugin_data },
        "sonic_sampler_factory_t" => SamplerFactory { struct_size, count, descriptor, create },
        "sonic_audio_encoder_info_t" => AudioEncoderInfo { struct_size, sample_rate, frames_per_second, layers, hidden_size },
        "sonic_audio_encoder_vtable_t" => AudioEncoderVtable { struct_size, info, frames_for, encode, last_error, destroy },
        "sonic_audio_encoder_t" => AudioEncoder { vtable, plugin_data },
        "sonic_audio_encoder_factory_t" => AudioEncoderFactory { struct_size, count, descriptor, create },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    /// Compiles a C program that prints the header's sizes and offsets in the same order as
    /// `layout_table`, and compares.
    #[test]
    fn header_and_rust_agree_on_layout() {
        let table = super::layout_table();
        let mut program = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"sonic_plugin.h\"\nint main(void) {\n");
        for (name, _) in &table {
            let expr = match name.split_once('.') {
                Some((ty, field)) => format!("offsetof({ty}, {field})"),
                None => format!("sizeof({name})"),
            };
            program.push_str(&format!("    printf(\"%zu\\n\", (size_t){expr});\n"));
        }
        program.push_str("    return 0;\n}\n");
        let dir = tempfile::tempdir().unwrap();
        let (src, exe) = (dir.path().join("layout.c"), dir.path().join("layout"));
        std::fs::write(&src, program).unwrap();
        let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let status = Command::new(&cc)
            .arg("-std=c99")
            .arg("-Wall")
            .arg("-Werror")
            .arg("-I")
            .arg(&include)
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .status();
        let status =
            status.unwrap_or_else(|e| panic!("the C compiler `{cc}` is needed for this test: {e}"));
        assert!(status.success(), "the header does not compile");
        let out = Command::new(&exe).output().unwrap();
        let c_values: Vec<usize> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(c_values.len(), table.len());
        for ((name, rust), c) in table.iter().zip(c_values) {
            assert_eq!(*rust, c, "{name}: Rust {rust}, C {c}");
        }
    }
}
