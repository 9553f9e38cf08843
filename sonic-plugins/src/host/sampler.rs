//! A plugin's sampler behind sonic-core's `Sampler` trait. Outputs are checked: the host
//! pre-fills them with a marker and a guard zone, so a plugin that leaves elements unwritten,
//! writes past the end or writes NaN is reported instead of silently corrupting a run.

use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use sonic_core::sampling::{Denoise, NoiseSource, Sampler};
use sonic_core::{Device, Error, Result, Tensor};

use super::views::{checked_shape, f32_view};
use super::{c_string, status_name, LoadedPlugin};
use crate::abi;
use crate::PluginError;

/// A NaN with a payload no arithmetic produces: marks output elements not yet written.
const UNWRITTEN: u32 = 0x7fc5_a5a5;
/// Marker elements after the output, to catch writes past its end.
const GUARD: usize = 64;

pub struct PluginSampler {
    raw: NonNull<abi::Sampler>,
    id: String,
    plugin: String,
}

// SAFETY: the ABI lets an instance be used from any thread, one thread at a time, which
// `&mut self` on every call guarantees.
unsafe impl Send for PluginSampler {}

impl PluginSampler {
    pub(crate) fn create(
        plugin: &LoadedPlugin,
        id: &str,
    ) -> std::result::Result<Self, PluginError> {
        let fail = |msg: String| PluginError::Call {
            plugin: plugin.display_name(),
            component: id.to_string(),
            msg,
        };
        let factory = plugin.factory(abi::SAMPLER_FACTORY_ID) as *const abi::SamplerFactory;
        if factory.is_null() {
            return Err(fail("the plugin provides no samplers".into()));
        }
        // SAFETY: a static factory of an initialised plugin.
        let create =
            unsafe { (*factory).create }.ok_or_else(|| fail("the factory has no create".into()))?;
        let c_id = CString::new(id).map_err(|_| fail("id contains NUL".into()))?;
        // SAFETY: host is a static; id is a valid C string; config NULL means defaults.
        let raw = unsafe { create(super::callbacks::host(), c_id.as_ptr(), std::ptr::null()) };
        let raw = NonNull::new(raw).ok_or_else(|| fail("create returned no instance".into()))?;
        // SAFETY: a created instance points at its vtable.
        let vtable = unsafe { raw.as_ref().vtable };
        let complete = !vtable.is_null()
            && unsafe {
                let v = &*vtable;
                v.model_calls.is_some()
                    && v.reset.is_some()
                    && v.step.is_some()
                    && v.last_error.is_some()
                    && v.destroy.is_some()
            };
        if !complete {
            return Err(fail("the instance's vtable is incomplete".into()));
        }
        Ok(PluginSampler {
            raw,
            id: id.to_string(),
            plugin: plugin.display_name(),
        })
    }

    fn vtable(&self) -> &abi::SamplerVtable {
        // SAFETY: checked non-null and complete at creation; the library is never unloaded.
        unsafe { &*self.raw.as_ref().vtable }
    }

    fn error(&self, msg: String) -> Error {
        PluginError::Call {
            plugin: self.plugin.clone(),
            component: self.id.clone(),
            msg,
        }
        .into()
    }

    fn failure(&mut self, status: abi::Status) -> Error {
        let last = self
            .vtable()
            .last_error
            .map(|f| unsafe { f(self.raw.as_ptr()) })
            .map(c_string)
            .unwrap_or_default();
        let msg = if last.is_empty() {
            status_name(status)
        } else {
            format!("{} ({last})", status_name(status))
        };
        self.error(msg)
    }
}

impl Drop for PluginSampler {
    fn drop(&mut self) {
        if let Some(destroy) = self.vtable().destroy {
            // SAFETY: the instance is destroyed exactly once, here.
            unsafe { destroy(self.raw.as_ptr()) }
        }
    }
}

/// What the host callbacks of one `step` call reach.
struct StepContext<'a> {
    model: &'a mut dyn Denoise,
    noise: &'a dyn NoiseSource,
    device: Device,
    error: Option<Error>,
}

fn run_callback(
    ctx: *mut c_void,
    body: impl FnOnce(&mut StepContext) -> Result<()>,
) -> abi::Status {
    // SAFETY: `ctx` is the StepContext the host passed into this very step call.
    let ctx = unsafe { &mut *(ctx as *mut StepContext) };
    match catch_unwind(AssertUnwindSafe(|| body(ctx))) {
        Ok(Ok(())) => abi::OK,
        Ok(Err(e)) => {
            ctx.error.get_or_insert(e);
            abi::ERR_HOST
        }
        Err(_) => {
            ctx.error.get_or_insert(Error::Component {
                component: "host".into(),
                msg: "a host callback panicked".into(),
            });
            abi::ERR_HOST
        }
    }
}

/// Reads a view into a tensor.
unsafe fn tensor_from(view: *const abi::TensorView, device: Device) -> Result<Tensor> {
    let dims = unsafe { checked_shape(view) }.map_err(|m| Error::Component {
        component: "plugin".into(),
        msg: m,
    })?;
    let n = dims.iter().product();
    // SAFETY: checked view of n contiguous f32 values.
    let data = unsafe { std::slice::from_raw_parts((*view).data as *const f32, n) };
    Tensor::from_slice(data, dims, device)
}

/// Writes a tensor into a view of the same shape.
unsafe fn write_to(view: *const abi::TensorView, t: &Tensor) -> Result<()> {
    let dims = unsafe { checked_shape(view) }.map_err(|m| Error::Component {
        component: "plugin".into(),
        msg: m,
    })?;
    if dims != t.dims() {
        return Err(Error::Component {
            component: "plugin".into(),
            msg: format!("output view {dims:?} for a tensor {}", t.shape()),
        });
    }
    let data = t.to_vec()?;
    // SAFETY: checked view of data.len() contiguous f32 values owned by the caller.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), (*view).data as *mut f32, data.len()) };
    Ok(())
}

unsafe extern "C" fn denoise_callback(
    ctx: *mut c_void,
    x: *const abi::TensorView,
    sigma: f32,
    out: *const abi::TensorView,
) -> abi::Status {
    run_callback(ctx, |c| {
        let x = unsafe { tensor_from(x, c.device) }?;
        let denoised = c.model.denoise(&x, sigma)?;
        unsafe { write_to(out, &denoised) }
    })
}

unsafe extern "C" fn noise_callback(ctx: *mut c_void, out: *const abi::TensorView) -> abi::Status {
    run_callback(ctx, |c| {
        let dims = unsafe { checked_shape(out) }.map_err(|m| Error::Component {
            component: "plugin".into(),
            msg: m,
        })?;
        let like = Tensor::zeros(dims, c.device)?;
        let noise = c.noise.sample(&like)?;
        unsafe { write_to(out, &noise) }
    })
}

impl Sampler for PluginSampler {
    fn name(&self) -> &str {
        &self.id
    }

    fn model_calls(&self, i: usize, sigmas: &[f32]) -> usize {
        let f = self.vtable().model_calls.expect("checked at creation");
        // SAFETY: sigmas outlives the call.
        unsafe {
            f(
                self.raw.as_ptr(),
                i as u32,
                sigmas.as_ptr(),
                sigmas.len() as u32,
            ) as usize
        }
    }

    fn reset(&mut self) {
        let f = self.vtable().reset.expect("checked at creation");
        // SAFETY: a live instance.
        let status = unsafe { f(self.raw.as_ptr()) };
        if status != abi::OK {
            tracing::warn!("{}", self.failure(status));
        }
    }

    fn step(
        &mut self,
        i: usize,
        sigmas: &[f32],
        x: &Tensor,
        model: &mut dyn Denoise,
        noise: &dyn NoiseSource,
    ) -> Result<Tensor> {
        if i + 1 >= sigmas.len() {
            return Err(self.error(format!("step {i} needs sigmas[{}]", i + 1)));
        }
        let input = x.to_vec()?;
        let shape: Vec<i64> = x.dims().iter().map(|&d| d as i64).collect();
        let n = input.len();
        let mut out = vec![f32::from_bits(UNWRITTEN); n + GUARD];
        let (x_view, out_view) = (f32_view(&input, &shape), f32_view(&out[..n], &shape));
        let mut ctx = StepContext {
            model,
            noise,
            device: x.device(),
            error: None,
        };
        let calls = abi::SamplerHostCalls {
            struct_size: abi::size_u32::<abi::SamplerHostCalls>(),
            ctx: &mut ctx as *mut StepContext as *mut c_void,
            denoise: Some(denoise_callback),
            noise: Some(noise_callback),
        };
        let step = self.vtable().step.expect("checked at creation");
        // SAFETY: every pointer is valid for the duration of the call; `out` is writable.
        let status = unsafe {
            step(
                self.raw.as_ptr(),
                i as u32,
                sigmas.as_ptr(),
                sigmas.len() as u32,
                &x_view,
                &calls,
                &out_view,
            )
        };
        if let Some(e) = ctx.error {
            return Err(e);
        }
        if status != abi::OK {
            return Err(self.failure(status));
        }
        if out[n..].iter().any(|v| v.to_bits() != UNWRITTEN) {
            return Err(self.error(format!("wrote past the end of its {n}-element output")));
        }
        out.truncate(n);
        let unwritten = out.iter().filter(|v| v.to_bits() == UNWRITTEN).count();
        if unwritten > 0 {
            return Err(self.error(format!("left {unwritten} of {n} output elements unwritten")));
        }
        if let Some(bad) = out.iter().position(|v| !v.is_finite()) {
            return Err(self.error(format!(
                "wrote a non-finite value ({}) at element {bad}",
                out[bad]
            )));
        }
        Tensor::from_vec(out, x.shape().clone(), x.device())
    }
}
