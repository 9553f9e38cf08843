//! The Rust plugin SDK: implement sonic-core's `Sampler` or `AudioEncoder` (the same traits
//! the built-ins implement) and export them with [`export_plugin!`](crate::export_plugin). The
//! macro writes the entry point, the factories and the vtables; every call into the plugin is
//! wrapped in `catch_unwind`, so a panic becomes an error status and never unwinds into the
//! host.
//!
//! ```ignore
//! sonic_plugins::export_plugin! {
//!     host_min_version: "0.1.0",
//!     samplers: [
//!         { id: "my-sampler", name: "My sampler", version: "1.0.0", vendor: "me",
//!           description: "what it does", create: MySampler::default },
//!     ],
//!     audio_encoders: [
//!         { id: "my-encoder", name: "My encoder", version: "1.0.0", vendor: "me",
//!           description: "what it does", create: MyEncoder::from_config },
//!     ],
//! }
//! ```
//!
//! Both lists are optional (a plugin may export only samplers or only audio encoders), and a
//! kind with no entries has no factory. A sampler's `create` is `fn() -> impl Sampler`. An
//! audio encoder's is `fn(Option<&str>) -> sonic_core::Result<impl AudioEncoder>`: it gets
//! the JSON configuration the host passes (`None` for defaults), and an error it returns is
//! logged through the host, which reports it as the reason creation failed.

/// Exports samplers and audio encoders as a sonic plugin; see the [module docs](crate::sdk).
#[macro_export]
macro_rules! export_plugin {
    (
        host_min_version: $hmv:literal
        $(, samplers: [ $( { id: $id:literal, name: $name:literal, version: $version:literal, vendor: $vendor:literal,
                            description: $desc:literal, create: $create:expr $(,)? } ),* $(,)? ] )?
        $(, audio_encoders: [ $( { id: $aid:literal, name: $aname:literal, version: $aversion:literal, vendor: $avendor:literal,
                                   description: $adesc:literal, create: $acreate:expr $(,)? } ),* $(,)? ] )?
        $(,)?
    ) => {
        #[doc(hidden)]
        pub mod __sonic_plugin_export {
            #[allow(unused_imports)]
            use super::*;
            use $crate::sdk::__private as p;

            $crate::__sonic_plugin_factory! {
                samplers, Sampler, SamplerFactory,
                [ $($( ($id, $name, $version, $vendor, $desc) ),*)? ],
                [ $($( |_config| Ok(Box::new(($create)())) ),*)? ]
            }
            $crate::__sonic_plugin_factory! {
                audio_encoders, AudioEncoder, AudioEncoderFactory,
                [ $($( ($aid, $aname, $aversion, $avendor, $adesc) ),*)? ],
                [ $($( |config| Ok(Box::new(($acreate)(config)?)) ),*)? ]
            }

            unsafe extern "C" fn get_factory(id: *const p::c_char) -> *const p::c_void {
                unsafe { p::get_factory(id, samplers::factory(), audio_encoders::factory()) }
            }

            #[no_mangle]
            #[allow(non_upper_case_globals)]
            pub static sonic_plugin_entry: p::PluginEntry = p::entry(concat!($hmv, "\0"), get_factory);
        }
    };
}

/// One kind's descriptors, creators and factory, for [`export_plugin!`](crate::export_plugin).
#[doc(hidden)]
#[macro_export]
macro_rules! __sonic_plugin_factory {
    (
        $module:ident, $handle:ident, $factory:ident,
        [ $( ($id:literal, $name:literal, $version:literal, $vendor:literal, $desc:literal) ),* ],
        [ $( $make:expr ),* ]
    ) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            use $crate::sdk::__private as p;

            static DESCRIPTORS: &[p::Descriptor] = &[
                $( p::descriptor(concat!($id, "\0"), concat!($name, "\0"), concat!($version, "\0"),
                                 concat!($vendor, "\0"), concat!($desc, "\0")) ),*
            ];
            static CREATORS: &[p::Creator<p::$handle>] = &[ $( $make ),* ];

            unsafe extern "C" fn count() -> u32 {
                DESCRIPTORS.len() as u32
            }
            unsafe extern "C" fn descriptor(index: u32) -> *const p::Descriptor {
                p::descriptor_at(DESCRIPTORS, index)
            }
            unsafe extern "C" fn create(
                host: *const p::Host,
                id: *const p::c_char,
                config: *const p::c_char,
            ) -> *mut p::$handle {
                unsafe { p::create::<p::$handle>(DESCRIPTORS, CREATORS, host, id, config) }
            }
            static FACTORY: p::$factory = p::$factory {
                struct_size: p::size_u32::<p::$factory>(),
                count: Some(count),
                descriptor: Some(descriptor),
                create: Some(create),
            };

            /// The factory, or `None` when this plugin exports nothing of the kind.
            pub(super) fn factory() -> Option<&'static p::$factory> {
                (!DESCRIPTORS.is_empty()).then_some(&FACTORY)
            }
        }
    };
}

#[doc(hidden)]
pub mod __private {
    use std::ffi::{CStr, CString};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicPtr, Ordering};

    pub use std::ffi::{c_char, c_void};

    use crate::abi::{
        self, AudioEncoderInfo, AudioEncoderVtable, SamplerHostCalls, SamplerVtable, Status,
        TensorView,
    };
    pub use crate::abi::{
        size_u32, AudioEncoder, AudioEncoderFactory, Descriptor, Host, PluginEntry, Sampler,
        SamplerFactory,
    };
    use crate::host::views::f32_view;
    use sonic_core::sampling::{Denoise, NoiseSource};
    use sonic_core::{Device, Error, Result, Tensor};

    /// Makes one component from the host's JSON configuration (`None`: defaults).
    pub type Creator<H> = fn(Option<&str>) -> Result<<H as Handle>::Inner>;

    /// An ABI instance struct (a vtable pointer and the plugin's data) and the safe component
    /// the SDK keeps behind it.
    pub trait Handle: Sized + 'static {
        /// A boxed sonic-core trait object.
        type Inner: 'static;
        /// The kind, in messages.
        const NOUN: &'static str;
        fn wrap(data: *mut c_void) -> Self;
        fn data(&self) -> *mut c_void;
    }

    macro_rules! handle {
        ($handle:ident, $inner:ty, $noun:literal, $vtable:ident) => {
            impl Handle for $handle {
                type Inner = Box<$inner>;
                const NOUN: &'static str = $noun;
                fn wrap(data: *mut c_void) -> Self {
                    $handle {
                        vtable: &$vtable,
                        plugin_data: data,
                    }
                }
                fn data(&self) -> *mut c_void {
                    self.plugin_data
                }
            }
        };
    }

    handle!(
        Sampler,
        dyn sonic_core::sampling::Sampler,
        "sampler",
        SAMPLER_VTABLE
    );
    handle!(
        AudioEncoder,
        dyn sonic_core::models::AudioEncoder,
        "audio encoder",
        AUDIO_ENCODER_VTABLE
    );

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
    /// `id` must be null or a valid C string.
    pub unsafe fn get_factory(
        id: *const c_char,
        samplers: Option<&'static SamplerFactory>,
        audio_encoders: Option<&'static AudioEncoderFactory>,
    ) -> *const c_void {
        if id.is_null() {
            return std::ptr::null();
        }
        // SAFETY: per the caller.
        let id = unsafe { CStr::from_ptr(id) }.to_bytes();
        let found = if id == abi::SAMPLER_FACTORY_ID.as_bytes() {
            samplers.map(|f| f as *const SamplerFactory as *const c_void)
        } else if id == abi::AUDIO_ENCODER_FACTORY_ID.as_bytes() {
            audio_encoders.map(|f| f as *const AudioEncoderFactory as *const c_void)
        } else {
            None
        };
        found.unwrap_or(std::ptr::null())
    }

    /// The instance behind `plugin_data`.
    pub struct Instance<T> {
        inner: T,
        last_error: Option<CString>,
    }

    fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        format!("panicked: {}", what.unwrap_or_else(|| "no message".into()))
    }

    /// Creates the component `id` of kind `H`: a new instance, or null after logging why.
    ///
    /// # Safety
    /// `id` and `config` must be null or valid C strings.
    pub unsafe fn create<H: Handle>(
        descriptors: &'static [Descriptor],
        creators: &'static [Creator<H>],
        _host: *const Host,
        id: *const c_char,
        config: *const c_char,
    ) -> *mut H {
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
                &format!(
                    "no {} `{}` in this plugin",
                    H::NOUN,
                    wanted.to_string_lossy()
                ),
            );
            return std::ptr::null_mut();
        };
        let config = if config.is_null() {
            None
        } else {
            // SAFETY: per the caller.
            match unsafe { CStr::from_ptr(config) }.to_str() {
                Ok(c) => Some(c),
                Err(_) => {
                    log(abi::LOG_ERROR, "the configuration is not UTF-8");
                    return std::ptr::null_mut();
                }
            }
        };
        let what = format!("creating the {} `{}`", H::NOUN, wanted.to_string_lossy());
        match catch_unwind(AssertUnwindSafe(|| creators[index](config))) {
            Ok(Ok(inner)) => {
                let data = Box::into_raw(Box::new(Instance {
                    inner,
                    last_error: None,
                }));
                Box::into_raw(Box::new(H::wrap(data as *mut c_void)))
            }
            Ok(Err(e)) => {
                log(abi::LOG_ERROR, &format!("{what} failed: {e}"));
                std::ptr::null_mut()
            }
            Err(payload) => {
                log(
                    abi::LOG_ERROR,
                    &format!("{what} {}", panic_message(payload.as_ref())),
                );
                std::ptr::null_mut()
            }
        }
    }

    /// Runs `f` on the instance, turning errors and panics into a status and `last_error`.
    unsafe fn guarded<H: Handle>(
        this: *mut H,
        f: impl FnOnce(&mut H::Inner) -> Result<()>,
    ) -> Status {
        if this.is_null() {
            return abi::ERR_INVALID_ARGUMENT;
        }
        // SAFETY: a live instance created by `create`, used by one thread at a time.
        let instance = unsafe { &mut *((*this).data() as *mut Instance<H::Inner>) };
        let (status, message) = match catch_unwind(AssertUnwindSafe(|| f(&mut instance.inner))) {
            Ok(Ok(())) => (abi::OK, None),
            Ok(Err(e)) => (abi::ERR_INTERNAL, Some(e.to_string())),
            Err(payload) => (abi::ERR_PANIC, Some(panic_message(payload.as_ref()))),
        };
        instance.last_error =
            message.map(|m| CString::new(m.replace('\0', " ")).unwrap_or_default());
        status
    }

    unsafe extern "C" fn last_error<H: Handle>(this: *mut H) -> *const c_char {
        if this.is_null() {
            return std::ptr::null();
        }
        // SAFETY: a live instance.
        let instance = unsafe { &*((*this).data() as *const Instance<H::Inner>) };
        instance
            .last_error
            .as_ref()
            .map_or(std::ptr::null(), |m| m.as_ptr())
    }

    unsafe extern "C" fn destroy<H: Handle>(this: *mut H) {
        if this.is_null() {
            return;
        }
        // SAFETY: created by `create` and destroyed once; dropping may run plugin code.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            let outer = Box::from_raw(this);
            drop(Box::from_raw(outer.data() as *mut Instance<H::Inner>));
        }));
    }

    fn host_error(msg: impl Into<String>) -> Error {
        Error::Component {
            component: "host".into(),
            msg: msg.into(),
        }
    }

    fn shape_of(view: *const TensorView) -> Result<Vec<usize>> {
        if view.is_null() {
            return Err(host_error("null tensor view"));
        }
        // SAFETY: the host passes valid views.
        let v = unsafe { &*view };
        if v.dtype != abi::DTYPE_F32
            || v.device_type != abi::DEVICE_CPU
            || v.data.is_null()
            || (v.ndim > 0 && v.shape.is_null())
        {
            return Err(host_error("expected a contiguous CPU f32 tensor view"));
        }
        Ok(
            unsafe { std::slice::from_raw_parts(v.shape, v.ndim as usize) }
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect(),
        )
    }

    /// Copies `values` into the view's data at element `offset`.
    ///
    /// # Safety
    /// `view` passed [`shape_of`] and holds at least `offset + values.len()` elements.
    unsafe fn write_at(view: *const TensorView, offset: usize, values: &[f32]) {
        // SAFETY: per the caller.
        unsafe {
            std::ptr::copy_nonoverlapping(
                values.as_ptr(),
                ((*view).data as *mut f32).add(offset),
                values.len(),
            )
        }
    }

    // ------------------------------------------------------------------------- samplers

    static SAMPLER_VTABLE: SamplerVtable = SamplerVtable {
        struct_size: abi::size_u32::<SamplerVtable>(),
        model_calls: Some(model_calls),
        reset: Some(reset),
        step: Some(step),
        last_error: Some(last_error::<Sampler>),
        destroy: Some(destroy::<Sampler>),
    };

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
            guarded(this, |s| {
                if (step as usize) + 1 < sigmas.len() {
                    calls = s.model_calls(step as usize, sigmas) as u32;
                }
                Ok(())
            })
        };
        calls
    }

    unsafe extern "C" fn reset(this: *mut Sampler) -> Status {
        unsafe {
            guarded(this, |s| {
                s.reset();
                Ok(())
            })
        }
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
        host_error("the host callback failed")
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
            guarded(this, |s| {
                if sigmas.is_null() || calls.is_null() {
                    return Err(host_error("null sigmas or host calls"));
                }
                let sigmas = std::slice::from_raw_parts(sigmas, n as usize);
                let x = read_view(x)?;
                if shape_of(out)? != x.dims() {
                    return Err(host_error("output view shape differs from x"));
                }
                let mut host = HostModel(&*calls);
                let noise = HostModel(&*calls);
                let result = s
                    .step(index as usize, sigmas, &x, &mut host, &noise)?
                    .to_vec()?;
                if result.len() != x.elem_count() {
                    return Err(Error::Component {
                        component: s.name().to_string(),
                        msg: format!(
                            "returned {} elements for a {}-element output",
                            result.len(),
                            x.elem_count()
                        ),
                    });
                }
                write_at(out, 0, &result);
                Ok(())
            })
        }
    }

    // ------------------------------------------------------------------- audio encoders

    static AUDIO_ENCODER_VTABLE: AudioEncoderVtable = AudioEncoderVtable {
        struct_size: abi::size_u32::<AudioEncoderVtable>(),
        info: Some(encoder_info),
        frames_for: Some(frames_for),
        encode: Some(encode),
        last_error: Some(last_error::<AudioEncoder>),
        destroy: Some(destroy::<AudioEncoder>),
    };

    fn encoder_error(msg: String) -> Error {
        Error::InvalidArgument {
            op: "audio encoder",
            msg,
        }
    }

    fn to_u32(what: &str, v: usize) -> Result<u32> {
        u32::try_from(v).map_err(|_| encoder_error(format!("{what} {v} does not fit the ABI")))
    }

    unsafe extern "C" fn encoder_info(
        this: *mut AudioEncoder,
        out: *mut AudioEncoderInfo,
    ) -> Status {
        unsafe {
            guarded(this, |e| {
                if out.is_null() {
                    return Err(host_error("null info"));
                }
                let info = e.info();
                out.write(AudioEncoderInfo {
                    struct_size: abi::size_u32::<AudioEncoderInfo>(),
                    sample_rate: info.sample_rate,
                    frames_per_second: info.frames_per_second,
                    layers: to_u32("layers", info.layers)?,
                    hidden_size: to_u32("hidden_size", info.hidden_size)?,
                });
                Ok(())
            })
        }
    }

    fn samples_len(n: u64) -> Result<usize> {
        usize::try_from(n).map_err(|_| host_error(format!("{n} samples do not fit in memory")))
    }

    unsafe extern "C" fn frames_for(this: *mut AudioEncoder, n: u64, out: *mut u64) -> Status {
        unsafe {
            guarded(this, |e| {
                if out.is_null() {
                    return Err(host_error("null frame count"));
                }
                out.write(e.frames_for(samples_len(n)?) as u64);
                Ok(())
            })
        }
    }

    unsafe extern "C" fn encode(
        this: *mut AudioEncoder,
        samples: *const f32,
        n: u64,
        out: *const TensorView,
    ) -> Status {
        unsafe {
            guarded(this, |e| {
                let n = samples_len(n)?;
                let samples = match (samples.is_null(), n) {
                    (_, 0) => &[][..],
                    (true, _) => return Err(host_error("null samples")),
                    (false, _) => std::slice::from_raw_parts(samples, n),
                };
                let info = e.info();
                let frames = e.frames_for(n);
                let expected = [info.layers, frames, info.hidden_size];
                let dims = shape_of(out)?;
                if dims != expected {
                    return Err(host_error(format!(
                        "output view {dims:?}, expected [layers, frames, hidden_size] = {expected:?}"
                    )));
                }
                let states = e.encode(samples)?;
                if states.len() != info.layers {
                    return Err(encoder_error(format!(
                        "{} hidden states, info says {}",
                        states.len(),
                        info.layers
                    )));
                }
                let per_layer = frames * info.hidden_size;
                for (k, state) in states.iter().enumerate() {
                    if state.dims() != [frames, info.hidden_size] {
                        return Err(encoder_error(format!(
                            "hidden state {k} is {}, expected [{frames}, {}]",
                            state.shape(),
                            info.hidden_size
                        )));
                    }
                    write_at(out, k * per_layer, &state.to_vec()?);
                }
                Ok(())
            })
        }
    }
}
