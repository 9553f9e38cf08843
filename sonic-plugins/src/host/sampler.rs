//! A plugin's sampler behind sonic-core's `Sampler` trait. Outputs are checked: the host
//! pre-fills them with a marker and a guard zone, so a plugin that leaves elements unwritten,
//! writes past the end or writes NaN is reported instead of silently corrupting a run.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use sonic_core::sampling::{Denoise, NoiseSource, Sampler};
use sonic_core::{Device, Error, Result, Tensor};

use super::instance::{GuardedOutput, Instance};
use super::views::{checked_shape, f32_view};
use super::LoadedPlugin;
use crate::abi;
use crate::PluginError;

pub struct PluginSampler {
    inner: Instance<abi::Sampler>,
}

// SAFETY: the ABI lets an instance be used from any thread, one thread at a time, which
// `&mut self` on every call guarantees.
unsafe impl Send for PluginSampler {}

impl PluginSampler {
    pub(crate) fn create(
        plugin: &LoadedPlugin,
        id: &str,
    ) -> std::result::Result<Self, PluginError> {
        Ok(PluginSampler {
            inner: Instance::create(plugin, id, None)?,
        })
    }

    fn vtable(&self) -> &abi::SamplerVtable {
        self.inner.vtable()
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
        self.inner.id()
    }

    fn model_calls(&self, i: usize, sigmas: &[f32]) -> usize {
        let f = self.vtable().model_calls.expect("checked at creation");
        // SAFETY: sigmas outlives the call.
        unsafe {
            f(
                self.inner.ptr(),
                i as u32,
                sigmas.as_ptr(),
                sigmas.len() as u32,
            ) as usize
        }
    }

    fn reset(&mut self) {
        let f = self.vtable().reset.expect("checked at creation");
        // SAFETY: a live instance.
        let status = unsafe { f(self.inner.ptr()) };
        if status != abi::OK {
            tracing::warn!("{}", self.inner.failure(status));
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
            return Err(self
                .inner
                .error(format!("step {i} needs sigmas[{}]", i + 1)));
        }
        let input = x.to_vec()?;
        let shape: Vec<i64> = x.dims().iter().map(|&d| d as i64).collect();
        let mut out = GuardedOutput::new(input.len()).map_err(|m| self.inner.error(m))?;
        let (x_view, out_view) = (f32_view(&input, &shape), out.view(&shape));
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
                self.inner.ptr(),
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
            return Err(self.inner.failure(status));
        }
        let out = out.finish().map_err(|m| self.inner.error(m))?;
        Tensor::from_vec(out, x.shape().clone(), x.device())
    }
}
