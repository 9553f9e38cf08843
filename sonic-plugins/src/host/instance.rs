//! What every plugin instance has in common on the host side, whatever its kind: creation
//! through the kind's factory, the vtable completeness check, errors that name the plugin and
//! the component (with the plugin's `last_error` text), and `destroy` exactly once.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::ptr::NonNull;

use sonic_core::Error;

use super::{c_string, status_name, LoadedPlugin};
use crate::abi::{self, Host, Status};
use crate::PluginError;

type CreateFn<I> = unsafe extern "C" fn(*const Host, *const c_char, *const c_char) -> *mut I;

/// One kind of plugin component as the ABI lays it out: its factory, its instance struct
/// (`Self`: a vtable pointer and the plugin's data) and its vtable.
pub(crate) trait Kind: Sized + 'static {
    type Vtable: 'static;
    type Factory: 'static;
    /// The factory id, e.g. "sonic.sampler/1".
    const FACTORY_ID: &'static str;
    /// The kind in messages, plural: "samplers".
    const PLURAL: &'static str;
    fn create_fn(factory: &Self::Factory) -> Option<CreateFn<Self>>;
    fn vtable(&self) -> *const Self::Vtable;
    /// Whether every function of the vtable is present.
    fn complete(vtable: &Self::Vtable) -> bool;
    fn last_error_fn(
        vtable: &Self::Vtable,
    ) -> Option<unsafe extern "C" fn(*mut Self) -> *const c_char>;
    fn destroy_fn(vtable: &Self::Vtable) -> Option<unsafe extern "C" fn(*mut Self)>;
}

/// `Kind` for an instance struct whose vtable has the named functions besides `last_error`
/// and `destroy`.
macro_rules! kind {
    ($instance:ty, $vtable:ty, $factory:ty, $id:expr, $plural:literal, [$($f:ident),*]) => {
        impl Kind for $instance {
            type Vtable = $vtable;
            type Factory = $factory;
            const FACTORY_ID: &'static str = $id;
            const PLURAL: &'static str = $plural;
            fn create_fn(factory: &Self::Factory) -> Option<CreateFn<Self>> {
                factory.create
            }
            fn vtable(&self) -> *const Self::Vtable {
                self.vtable
            }
            fn complete(v: &Self::Vtable) -> bool {
                $(v.$f.is_some() &&)* v.last_error.is_some() && v.destroy.is_some()
            }
            fn last_error_fn(
                v: &Self::Vtable,
            ) -> Option<unsafe extern "C" fn(*mut Self) -> *const c_char> {
                v.last_error
            }
            fn destroy_fn(v: &Self::Vtable) -> Option<unsafe extern "C" fn(*mut Self)> {
                v.destroy
            }
        }
    };
}

kind!(
    abi::Sampler,
    abi::SamplerVtable,
    abi::SamplerFactory,
    abi::SAMPLER_FACTORY_ID,
    "samplers",
    [model_calls, reset, step]
);
kind!(
    abi::AudioEncoder,
    abi::AudioEncoderVtable,
    abi::AudioEncoderFactory,
    abi::AUDIO_ENCODER_FACTORY_ID,
    "audio encoders",
    [info, frames_for, encode]
);

thread_local! {
    /// The last error a plugin logged on this thread while the host was creating an instance:
    /// a factory's `create` reports why it failed only through the log.
    static CREATE_LOG: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Called by the host's log callback: keeps an error logged during `create` for the error.
pub(crate) fn note_logged_error(text: &str) {
    CREATE_LOG.with(|c| {
        if let Some(slot) = c.borrow_mut().as_mut() {
            *slot = Some(text.to_string());
        }
    });
}

/// A live plugin instance of kind `K`, destroyed when dropped.
pub(crate) struct Instance<K: Kind> {
    raw: NonNull<K>,
    plugin: String,
    id: String,
}

impl<K: Kind> Instance<K> {
    /// Creates the component `id` of `plugin` with an optional JSON configuration.
    pub(crate) fn create(
        plugin: &LoadedPlugin,
        id: &str,
        config: Option<&str>,
    ) -> Result<Self, PluginError> {
        let fail = |msg: String| PluginError::Call {
            plugin: plugin.display_name(),
            component: id.to_string(),
            msg,
        };
        let factory = plugin.factory(K::FACTORY_ID) as *const K::Factory;
        if factory.is_null() {
            return Err(fail(format!("the plugin provides no {}", K::PLURAL)));
        }
        // SAFETY: a static factory of this kind of an initialised plugin.
        let create = K::create_fn(unsafe { &*factory })
            .ok_or_else(|| fail("the factory has no create".into()))?;
        let c_id = CString::new(id).map_err(|_| fail("id contains NUL".into()))?;
        let c_config = config
            .map(CString::new)
            .transpose()
            .map_err(|_| fail("configuration contains NUL".into()))?;
        let config_ptr = c_config.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        CREATE_LOG.with(|c| *c.borrow_mut() = Some(None));
        // SAFETY: host is a static; id and config are valid C strings (or NULL) for the call.
        let raw = unsafe { create(super::callbacks::host(), c_id.as_ptr(), config_ptr) };
        let logged = CREATE_LOG.with(|c| c.borrow_mut().take().flatten());
        let raw = NonNull::new(raw).ok_or_else(|| {
            fail(match logged {
                Some(why) => format!("create returned no instance: {why}"),
                None => "create returned no instance".into(),
            })
        })?;
        // SAFETY: a created instance points at its vtable.
        let vtable = unsafe { raw.as_ref().vtable() };
        // SAFETY: non-null vtables of a live instance are statics of the plugin.
        if vtable.is_null() || !K::complete(unsafe { &*vtable }) {
            // Without a complete vtable there is no safe way to destroy it: leak it.
            return Err(fail("the instance's vtable is incomplete".into()));
        }
        Ok(Instance {
            raw,
            plugin: plugin.display_name(),
            id: id.to_string(),
        })
    }

    pub(crate) fn ptr(&self) -> *mut K {
        self.raw.as_ptr()
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn vtable(&self) -> &K::Vtable {
        // SAFETY: checked non-null and complete at creation; the library is never unloaded.
        unsafe { &*self.raw.as_ref().vtable() }
    }

    /// An error naming the plugin and the component.
    pub(crate) fn error(&self, msg: String) -> Error {
        PluginError::Call {
            plugin: self.plugin.clone(),
            component: self.id.clone(),
            msg,
        }
        .into()
    }

    /// The error for a failed call: the status and the plugin's `last_error` text.
    pub(crate) fn failure(&self, status: Status) -> Error {
        self.error(self.failure_message(status))
    }

    /// What [`failure`](Self::failure) says, without the names.
    pub(crate) fn failure_message(&self, status: Status) -> String {
        let last = K::last_error_fn(self.vtable())
            // SAFETY: a live instance; the text is valid until the next call on it.
            .map(|f| c_string(unsafe { f(self.raw.as_ptr()) }))
            .unwrap_or_default();
        if last.is_empty() {
            status_name(status)
        } else {
            format!("{} ({last})", status_name(status))
        }
    }
}

impl<K: Kind> Drop for Instance<K> {
    fn drop(&mut self) {
        if let Some(destroy) = K::destroy_fn(self.vtable()) {
            // SAFETY: the instance is destroyed exactly once, here.
            unsafe { destroy(self.raw.as_ptr()) }
        }
    }
}

/// A host-allocated output buffer, pre-filled with a marker and followed by a guard zone, so
/// a plugin that leaves elements unwritten, writes past the end or writes NaN is caught.
pub(crate) struct GuardedOutput {
    buf: Vec<f32>,
    n: usize,
}

/// A NaN with a payload no arithmetic produces: marks output elements not yet written.
const UNWRITTEN: u32 = 0x7fc5_a5a5;
/// Marker elements after the output, to catch writes past its end.
const GUARD: usize = 64;

impl GuardedOutput {
    /// Room for `n` elements; an allocation failure is an error, not an abort.
    pub(crate) fn new(n: usize) -> Result<Self, String> {
        let total = n
            .checked_add(GUARD)
            .ok_or_else(|| format!("an output of {n} elements is too large"))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(total)
            .map_err(|_| format!("cannot allocate an output of {n} elements"))?;
        buf.resize(total, f32::from_bits(UNWRITTEN));
        Ok(GuardedOutput { buf, n })
    }

    /// The writable view the plugin gets (the caller keeps `shape` alive).
    pub(crate) fn view(&mut self, shape: &[i64]) -> abi::TensorView {
        abi::TensorView {
            data: self.buf.as_mut_ptr() as *mut std::ffi::c_void,
            ..super::views::f32_view(&self.buf[..self.n], shape)
        }
    }

    /// The written elements, or what the plugin did wrong.
    pub(crate) fn finish(mut self) -> Result<Vec<f32>, String> {
        let n = self.n;
        if self.buf[n..].iter().any(|v| v.to_bits() != UNWRITTEN) {
            return Err(format!("wrote past the end of its {n}-element output"));
        }
        self.buf.truncate(n);
        let unwritten = self.buf.iter().filter(|v| v.to_bits() == UNWRITTEN).count();
        if unwritten > 0 {
            return Err(format!("left {unwritten} of {n} output elements unwritten"));
        }
        if let Some(bad) = self.buf.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "wrote a non-finite value ({}) at element {bad}",
                self.buf[bad]
            ));
        }
        Ok(self.buf)
    }
}
