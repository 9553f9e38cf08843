//! The host services every plugin receives: logging into the host's tracing and an allocator.

use std::alloc::Layout;
use std::ffi::{c_char, c_void};

use crate::abi;

struct HostStatic(abi::Host);
// SAFETY: the struct is immutable; its pointers are to statics and its functions thread-safe.
unsafe impl Sync for HostStatic {}

static HOST_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

static HOST: HostStatic = HostStatic(abi::Host {
    struct_size: abi::size_u32::<abi::Host>(),
    abi_major: abi::ABI_MAJOR,
    abi_minor: abi::ABI_MINOR,
    host_version: HOST_VERSION.as_ptr() as *const c_char,
    host_data: std::ptr::null_mut(),
    log: Some(log),
    alloc: Some(alloc),
    free: Some(free),
});

pub(crate) fn host() -> *const abi::Host {
    &HOST.0
}

unsafe extern "C" fn log(_: *const abi::Host, level: i32, message: *const c_char) {
    let text = super::c_string(message);
    match level {
        abi::LOG_ERROR => {
            super::instance::note_logged_error(&text);
            tracing::error!(target: "sonic::plugin", "{text}")
        }
        abi::LOG_WARN => tracing::warn!(target: "sonic::plugin", "{text}"),
        abi::LOG_INFO => tracing::info!(target: "sonic::plugin", "{text}"),
        _ => tracing::debug!(target: "sonic::plugin", "{text}"),
    }
}

unsafe extern "C" fn alloc(_: *const abi::Host, size: usize, align: usize) -> *mut c_void {
    match Layout::from_size_align(size.max(1), align) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc(layout) as *mut c_void },
        Err(_) => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn free(_: *const abi::Host, ptr: *mut c_void, size: usize, align: usize) {
    if ptr.is_null() {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(size.max(1), align) {
        // SAFETY: the ABI requires the pointer to come from `alloc` with this size and alignment.
        unsafe { std::alloc::dealloc(ptr as *mut u8, layout) }
    }
}
