//! The Rust plugin SDK: implement sonic-core's `Sampler` (the same trait the built-ins
//! implement) and export it with [`export_plugin!`](crate::export_plugin). The macro writes
//! the entry point, the factory and the vtables; every call into the plugin is wrapped in
//! `catch_unwind`, so a panic becomes an error status and never unwinds into the host.
//!
//! ```ignore
//! sonic_plugins::export_plugin! {
//!     host_min_version: "0.1.0",
//!     samplers: [
//!         { id: "my-sampler", name: "My sampler", version: "1.0.0", vendor: "me",
//!           description: "what it does", create: MySampler::default },
//!     ],
//! }
//! ```

/// Exports samplers as a sonic plugin; see the [module docs](crate::sdk).
#[macro_export]
macro_rules! export_plugin {
    (
        host_min_version: $hmv:literal,
        samplers: [ $( { id: $id:literal, name: $name:literal, version: $version:literal, vendor: $vendor:literal,
                         description: $desc:literal, create: $create:expr $(,)? } ),* $(,)? ] $(,)?
    ) => {
        #[doc(hidden)]
        pub mod __sonic_plugin_export {
            #[allow(unused_imports)]
            use super::*;
            use $crate::sdk::__private as p;

            static DESCRIPTORS: &[p::Descriptor] = &[
                $( p::descriptor(concat!($id, "\0"), concat!($name, "\0"), concat!($version, "\0"),
                                 concat!($vendor, "\0"), concat!($desc, "\0")) ),*
            ];
            static CREATORS: &[p::SamplerCreator] = &[ $( || Box::new(($create)()) ),* ];

            unsafe extern "C" fn count() -> u32 {
                DESCRIPTORS.len() as u32
            }
            unsafe extern "C" fn descriptor(index: u32) -> *const p::Descriptor {
                p::descriptor_at(DESCRIPTORS, index)
            }
            unsafe extern "C" fn create(host: *const p::Host, id: *const p::c_char, config: *const p::c_char) -> *mut p::Sampler {
                unsafe { p::create_sampler(DESCRIPTORS, CREATORS, host, id, config) }
            }
            static SAMPLER_FACTORY: p::SamplerFactory = p::sampler_factory(count, descriptor, create);

            unsafe extern "C" fn get_factory(id: *const p::c_char) -> *const p::c_void {
                unsafe { p::get_factory(id, &SAMPLER_FACTORY) }
            }

            #[no_mangle]
            #[allow(non_upper_case_globals)]
            pub static sonic_plugin_entry: p::PluginEntry = p::entry(concat!($hmv, "\0"), get_factory);
        }
    };
}

#[doc(hidden)]
pub mod __private {
    use std::ffi::{CStr, CString};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicPtr, Ordering};

    pub use std::ffi::{c_char, c_void};

    use crate::abi::{self, SamplerHostCalls, SamplerVtable, Status, TensorView};
    pub use crate::abi::{Descriptor, Host, PluginEntry, Sampler, SamplerFactory};
    use crate::host::views::f32_view;
    use sonic_core::sampling::{Denoise, NoiseSource};
    use sonic_core::{Device, Error, Result, Tensor};

    pub type SamplerCreator = fn() -> Box<dyn sonic_core::sampling::Sampler>;

    static HOST: AtomicPtr<Host> = AtomicPtr::new(std::ptr::null_mut());

    fn log(level: i32, message: &str) {
        let host = HOST.load(Ordering::Acquire);
        if host.is_null() {
            return;
        }
        let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the host outlives the plugin and its log function is thread-safe.
        unsafe {
            if let Some(f) = (*host).log {
                f(host, level, text.as_ptr());
            }
        }
    }

    pub const fn descriptor(
        id: &'static str,
        name: &'static str,
        version: &'static str,
        vendor: &'static str,
        description: &'static str,
    ) -> Descriptor {
        Descriptor {
            struct_size: abi::size_u32::<Descriptor>(),
            id: id.as_ptr() as *const c_char,
            name: name.as_ptr() as *const c_char,
            version: version.as_ptr() as *const c_char,
            vendor: vendor.as_ptr() as *const c_char,
            description: description.as_ptr() as *const c_char,
        }
    }

    pub fn descriptor_at(all: &'static [Descriptor], index: u32) -> *const Descriptor {
        all.get(index as usize)
            .map_or(std::ptr::null(), |d| d as *const Descriptor)
    }

    pub const fn sampler_factory(
        count: unsafe extern "C" fn() -> u32,
        descriptor: unsafe extern "C" fn(u32) -> *const Descriptor,
        create: unsafe extern "C" fn(*const Host, *const c_char, *const c_char) -> *mut Sampler,
    ) -> SamplerFactory {
        SamplerFactory {
            struct_size: abi::size_u32::<SamplerFactory>(),
            count: Some(count),
            descriptor: Some(descriptor),
            create: Some(create),
        }
    }

    unsafe extern "C" fn init(host: *const Host) -> Status {
        HOST.store(host as *mut Host, Ordering::Release);
        abi::OK
    }

    unsafe extern "C" fn deinit() {
        HOST.store(std::ptr::null_mut(), Ordering::Release);
    }

    pub const fn entry(
        host_min_version: &'static str,
        get_factory: unsafe extern "C" fn(*const c_char) -> *const c_void,
    ) -> PluginEntry {
        PluginEntry {
            struct_size: abi::size_u32::<PluginEntry>(),
            abi_major: abi::ABI_MAJOR,
            abi_minor: abi::ABI_MINOR,
            host_min_version: host_min_version.as_ptr() as *const c_char,
            init: Some(init),
            deinit: Some(deinit),
            get_factory: Some(get_factory),
        }
    }

    /// # Safety
    /// `id` must be a valid C string.
    pub unsafe fn get_factory(
        id: *const c_char,
        samplers: &'static SamplerFactory,
    ) -> *const c_void {
        if id.is_null() {
            return std::ptr::null();
        }
        // SAFETY: per the caller.
        match unsafe { CStr::from_ptr(id) }.to_bytes() {
            b"sonic.sampler/1" => samplers as *const SamplerFactory as *const c_void,
            _ => std::ptr::null(),
        }
    }

    /// The instance behind `plugin_data`.
    struct Instance {
        sampler: Box<dyn sonic_core::sampling::Sampler>,
        last_error: Option<CString>,
    }

    static VTABLE: SamplerVtable = SamplerVtable {
        struct_size: abi::size_u32::<SamplerVtable>(),
        model_calls: Some(model_calls),
        reset: Some(reset),
        step: Some(step),
        last_error: Some(last_error),
        destroy: Some(destroy),
    };

    /// # Safety
    /// `id` must be null or a valid C string.
    pub unsafe fn create_sampler(
        descriptors: &'static [Descriptor],
        creators: &'static [SamplerCreator],
        _host: *const Host,
        id: *const c_char,
        _config: *const c_char,
    ) -> *mut Sampler {
        if id.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: per the caller.
        let wanted = unsafe { CStr::from_ptr(id) };
        // SAFETY: descriptor ids are the NUL-terminated literals of the export macro.
        let index = descriptors
            .iter()
            .position(|d| unsafe { CStr::from_ptr(d.id) } == wanted);
        let Some(index) = index else {
            log(
                abi::LOG_ERROR,
                &format!("no sampler `{}` in this plugin", wanted.to_string_lossy()),
            );
            return std::ptr::null_mut();
        };
        match catch_unwind(creators[index]) {
            Ok(sampler) => {
                let data = Box::into_raw(Box::new(Instance {
                    sampler,
                    last_error: None,
                }));
                Box::into_raw(Box::new(Sampler {
                    vtable: &VTABLE,
                    plugin_data: data as *mut c_void,
                }))
            }
            Err(_) => {
                log(abi::LOG_ERROR, "creating the sampler panicked");
                std::ptr::null_mut()
            }
        }
    }

    /// Runs `f` on the instance, turning errors and panics into a status and `last_error`.
    unsafe fn guarded(this: *mut Sampler, f: impl FnOnce(&mut Instance) -> Result<()>) -> Status {
        if this.is_null() {
            return abi::ERR_INVALID_ARGUMENT;
        }
        // SAFETY: a live instance created by `create_sampler`, used by one thread at a time.
        let instance = unsafe { &mut *((*this).plugin_data as *mut Instance) };
        let (status, message) = match catch_unwind(AssertUnwindSafe(|| f(instance))) {
            Ok(Ok(())) => (abi::OK, None),
            Ok(Err(e)) => (abi::ERR_INTERNAL, Some(e.to_string())),
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned());
                (
                    abi::ERR_PANIC,
                    Some(format!(
                        "panicked: {}",
                        what.unwrap_or_else(|| "no message".into())
                    )),
                )
            }
        };
        instance.last_error =
            message.map(|m| CString::new(m.replace('\0', " ")).unwrap_or_default());
        status
    }

    unsafe extern "C" fn model_calls(
        this: *mut Sampler,
        step: u32,
        sigmas: *const f32,
        n: u32,
    ) -> u32 {
        let mut calls = 1;
        let sigmas = if sigmas.is_null() {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(sigmas, n as usize) }
        };
        unsafe {
            guarded(this, |i| {
                if (step as usize) + 1 < sigmas.len() {
                    calls = i.sampler.model_calls(step as usize, sigmas) as u32;
                }
                Ok(())
            })
        };
        calls
    }

    unsafe extern "C" fn reset(this: *mut Sampler) -> Status {
        unsafe {
            guarded(this, |i| {
                i.sampler.reset();
                Ok(())
            })
        }
    }

    fn shape_of(view: *const TensorView) -> Result<Vec<usize>> {
        let bad = |m: &str| Error::Component {
            component: "host".into(),
            msg: m.into(),
        };
        if view.is_null() {
            return Err(bad("null tensor view"));
        }
        // SAFETY: the host passes valid views.
        let v = unsafe { &*view };
        if v.dtype != abi::DTYPE_F32
            || v.device_type != abi::DEVICE_CPU
            || v.data.is_null()
            || (v.ndim > 0 && v.shape.is_null())
        {
            return Err(bad("expected a contiguous CPU f32 tensor view"));
        }
        Ok(
            unsafe { std::slice::from_raw_parts(v.shape, v.ndim as usize) }
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect(),
        )
    }

    fn read_view(view: *const TensorView) -> Result<Tensor> {
        let dims = shape_of(view)?;
        let n = dims.iter().product();
        // SAFETY: a checked view of n values.
        let data = unsafe { std::slice::from_raw_parts((*view).data as *const f32, n) };
        Tensor::from_slice(data, dims, Device::Cpu)
    }

    /// The host's callbacks as sonic-core's model and noise.
    struct HostModel<'a>(&'a SamplerHostCalls);

    fn host_failed() -> Error {
        Error::Component {
            component: "host".into(),
            msg: "the host callback failed".into(),
        }
    }

    impl Denoise for HostModel<'_> {
        fn denoise(&mut self, x: &Tensor, sigma: f32) -> Result<Tensor> {
            let f = self.0.denoise.ok_or_else(host_failed)?;
            let data = x.to_vec()?;
            let shape: Vec<i64> = x.dims().iter().map(|&d| d as i64).collect();
            let out = vec![0.0f32; data.len()];
            let (xv, ov) = (f32_view(&data, &shape), f32_view(&out, &shape));
            // SAFETY: the views live through the call; the host writes `out` only.
            if unsafe { f(self.0.ctx, &xv, sigma, &ov) } != abi::OK {
                return Err(host_failed());
            }
            Tensor::from_vec(out, x.shape().clone(), Device::Cpu)
        }
    }

    impl NoiseSource for HostModel<'_> {
        fn sample(&self, like: &Tensor) -> Result<Tensor> {
            let f = self.0.noise.ok_or_else(host_failed)?;
            let shape: Vec<i64> = like.dims().iter().map(|&d| d as i64).collect();
            let out = vec![0.0f32; like.elem_count()];
            let ov = f32_view(&out, &shape);
            // SAFETY: as above.
            if unsafe { f(self.0.ctx, &ov) } != abi::OK {
                return Err(host_failed());
            }
            Tensor::from_vec(out, like.shape().clone(), Device::Cpu)
        }
    }

    unsafe extern "C" fn step(
        this: *mut Sampler,
        index: u32,
        sigmas: *const f32,
        n: u32,
        x: *const TensorView,
        calls: *const SamplerHostCalls,
        out: *const TensorView,
    ) -> Status {
        unsafe {
            guarded(this, |i| {
                if sigmas.is_null() || calls.is_null() {
                    return Err(Error::Component {
                        component: "host".into(),
                        msg: "null sigmas or host calls".into(),
                    });
                }
                let sigmas = std::slice::from_raw_parts(sigmas, n as usize);
                let x = read_view(x)?;
                if shape_of(out)? != x.dims() {
                    return Err(Error::Component {
                        component: "host".into(),
                        msg: "output view shape differs from x".into(),
                    });
                }
                let mut host = HostModel(&*calls);
                let noise = HostModel(&*calls);
                let result = i
                    .sampler
                    .step(index as usize, sigmas, &x, &mut host, &noise)?
                    .to_vec()?;
                if result.len() != x.elem_count() {
                    return Err(Error::Component {
                        component: i.sampler.name().to_string(),
                        msg: format!(
                            "returned {} elements for a {}-element output",
                            result.len(),
                            x.elem_count()
                        ),
                    });
                }
                std::ptr::copy_nonoverlapping(
                    result.as_ptr(),
                    (*out).data as *mut f32,
                    result.len(),
                );
                Ok(())
            })
        }
    }

    unsafe extern "C" fn last_error(this: *mut Sampler) -> *const c_char {
        if this.is_null() {
            return std::ptr::null();
        }
        // SAFETY: a live instance.
        let instance = unsafe { &*((*this).plugin_data as *const Instance) };
        instance
            .last_error
            .as_ref()
            .map_or(std::ptr::null(), |m| m.as_ptr())
    }

    unsafe extern "C" fn destroy(this: *mut Sampler) {
        if this.is_null() {
            return;
        }
        // SAFETY: created by `create_sampler` and destroyed once; dropping may run plugin code.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            let outer = Box::from_raw(this);
            drop(Box::from_raw(outer.plugin_data as *mut Instance));
        }));
    }
}
