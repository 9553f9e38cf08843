//! The backend object: context, stream, cuBLAS handle, the convolution algorithm (with
//! cuDNN's handle when it runs them) and the loaded kernel modules.

use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, Weak};

use cudarc::cublas::CudaBlas;
use cudarc::driver::result as driver_result;
use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::sys::{CUdevice_attribute, CUevent_flags, CUmemPool_attribute};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream};
use cudarc::nvrtc::Ptx;
use sonic_core::{DType, Device, Error, Result};

use super::cudnn::CudnnConv;
use super::unavailable;
use crate::conv_algorithm::{conv_algorithm_from_env, ConvAlgorithm, ConvChoice};
use crate::registry::{Kernel, Variant};
use crate::{cache, probe_cublas, probe_cudnn, probe_driver, probe_nvrtc};

/// Dynamic shared memory a block may use without opting in.
const DEFAULT_SMEM: usize = 48 * 1024;

pub struct CudaBackend {
    pub(crate) ordinal: usize,
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) blas: CudaBlas,
    /// What `conv` runs; see [`crate::conv_algorithm`].
    pub(crate) conv: ConvChoice,
    /// cuDNN's handle and plans: opened with the backend when cuDNN runs convolutions,
    /// else on the first call that asks for it.
    pub(crate) cudnn: Mutex<Option<CudnnConv>>,
    /// `sm_90` etc.: kernels are compiled to CUBIN for exactly this device.
    arch: String,
    /// The opt-in maximum of dynamic shared memory per block.
    pub(crate) max_smem: usize,
    functions: Mutex<HashMap<(Variant, &'static str), Loaded>>,
    /// See [`CudaBackend::set_poison`].
    pub(crate) poison: AtomicBool,
    /// Lets storage created by `&self` methods point back at the owning `Arc`.
    this: Weak<CudaBackend>,
}

/// A loaded entry point with its static shared memory, which counts against the same
/// per-block limit as the dynamic part.
struct Loaded {
    function: CudaFunction,
    static_smem: usize,
    /// Set once the function may use all the shared memory the device allows; raised once
    /// and never lowered, so concurrent callers cannot shrink each other's limit.
    opted_in: bool,
}

impl fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaBackend")
            .field("ordinal", &self.ordinal)
            .field("arch", &self.arch)
            .finish_non_exhaustive()
    }
}

/// Runs a cudarc call that may panic (a library or symbol missing from an unexpected
/// installation) and turns the panic into an error.
pub(crate) fn guarded<R>(ordinal: usize, what: &str, f: impl FnOnce() -> R) -> Result<R> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown failure".to_owned());
        unavailable(ordinal, format!("{what}: {detail}"))
    })
}

/// Opens cuDNN's handle for `stream` if the probe finds the library (cudarc would panic
/// without it), turning any other panic in cudarc's loader into an error.
pub(crate) fn open_cudnn(ordinal: usize, stream: &Arc<CudaStream>) -> Result<CudnnConv> {
    if let Some(error) = probe_cudnn().error {
        return Err(unavailable(ordinal, format!("cuDNN: {error}")));
    }
    guarded(ordinal, "loading cuDNN", || CudnnConv::new(stream))?
        .map_err(|e| unavailable(ordinal, format!("cuDNN: {e}")))
}

/// Freed memory stays in the device's default pool instead of going back to the driver at
/// each synchronisation, so a model's steady-state allocations cost no driver calls (the
/// behaviour of PyTorch's caching allocator). Devices without memory pools allocate
/// synchronously and have nothing to keep, so a failure here changes nothing.
fn keep_freed_memory(ctx: &CudaContext) {
    let _ = ctx.bind_to_thread().and_then(|()| {
        // SAFETY: the device comes from a live context, and the release threshold
        // attribute takes a u64.
        unsafe {
            let pool = driver_result::device::get_default_mem_pool(ctx.cu_device())?;
            let mut threshold = u64::MAX;
            driver_result::mem_pool::set_attribute(
                pool,
                CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut threshold as *mut u64).cast(),
            )
        }
    });
}

/// The convolution algorithm and, when it is cuDNN, its handle. cuDNN that loads but
/// cannot open a handle falls back to the implicit GEMM, unless it was asked for.
fn choose_conv(
    ordinal: usize,
    stream: &Arc<CudaStream>,
) -> Result<(ConvChoice, Option<CudnnConv>)> {
    let choice = conv_algorithm_from_env().map_err(|e| unavailable(ordinal, e))?;
    if choice.algorithm != ConvAlgorithm::Cudnn {
        return Ok((choice, None));
    }
    match open_cudnn(ordinal, stream) {
        Ok(cudnn) => Ok((choice, Some(cudnn))),
        Err(err) if choice.forced => Err(err),
        Err(err) => Ok((
            ConvChoice {
                algorithm: ConvAlgorithm::ImplicitGemm,
                forced: false,
                reason: format!("cuDNN loads but fails: {err}"),
            },
            None,
        )),
    }
}

impl CudaBackend {
    /// Opens device `ordinal` after checking, without cudarc, that the driver, the device
    /// and NVRTC are all there.
    pub fn new(ordinal: usize) -> Result<Arc<CudaBackend>> {
        let driver = probe_driver();
        if let Some(error) = driver.error {
            return Err(unavailable(ordinal, format!("CUDA driver: {error}")));
        }
        if ordinal >= driver.devices.len() {
            return Err(unavailable(
                ordinal,
                format!("the driver reports {} device(s)", driver.devices.len()),
            ));
        }
        let nvrtc = probe_nvrtc();
        if let Some(error) = nvrtc.error {
            return Err(unavailable(ordinal, format!("kernels need NVRTC: {error}")));
        }
        let ctx = guarded(ordinal, "creating the CUDA context", || {
            CudaContext::new(ordinal)
        })?
        .map_err(|e| unavailable(ordinal, format!("creating the CUDA context: {e}")))?;
        // One stream carries kernels, cuBLAS and cuDNN, so cudarc's per-allocation events
        // order nothing that the stream does not already order.
        // SAFETY: every allocation, launch and copy of the backend is on `stream`.
        unsafe { ctx.disable_event_tracking() };
        keep_freed_memory(&ctx);
        let stream = ctx.default_stream();
        // cudarc panics on a missing library; the probe says what is missing and why.
        if let Some(error) = probe_cublas().error {
            return Err(unavailable(ordinal, format!("cuBLAS: {error}")));
        }
        let blas = guarded(ordinal, "loading cuBLAS", || CudaBlas::new(stream.clone()))?
            .map_err(|e| unavailable(ordinal, format!("cuBLAS: {e}")))?;
        let (conv, cudnn) = choose_conv(ordinal, &stream)?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| unavailable(ordinal, e.to_string()))?;
        let optin = CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN;
        let max_smem = ctx.attribute(optin).map_or(DEFAULT_SMEM, |v| v as usize);
        Ok(Arc::new_cyclic(|this| CudaBackend {
            ordinal,
            ctx,
            stream,
            blas,
            conv,
            cudnn: Mutex::new(cudnn),
            arch: format!("sm_{major}{minor}"),
            max_smem,
            functions: Mutex::new(HashMap::new()),
            poison: AtomicBool::new(false),
            this: this.clone(),
        }))
    }

    pub(crate) fn arc(&self) -> Result<Arc<CudaBackend>> {
        self.this
            .upgrade()
            .ok_or_else(|| self.error("the backend is being dropped"))
    }

    /// The architecture kernels are compiled for, e.g. `sm_90`.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Waits for all queued work; benches and tests time and read results after it.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| self.error(e))
    }

    /// Device time, in milliseconds, of the work `f` queues on the stream, measured with
    /// timing events around it (host launch overhead excluded once the queue is ahead).
    pub fn time_ms(&self, f: impl FnOnce() -> Result<()>) -> Result<f32> {
        let timing = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let start = self
            .stream
            .record_event(timing)
            .map_err(|e| self.error(e))?;
        f()?;
        let end = self
            .stream
            .record_event(timing)
            .map_err(|e| self.error(e))?;
        start.elapsed_ms(&end).map_err(|e| self.error(e))
    }

    pub(crate) fn error(&self, msg: impl ToString) -> Error {
        Error::Backend {
            device: Device::Cuda(self.ordinal),
            msg: msg.to_string(),
        }
    }

    /// The entry point `entry` of `kernel` for `dtype` (and head dim), compiling and loading
    /// its module on first use, able to take `smem` bytes of dynamic shared memory.
    pub(crate) fn function(
        &self,
        kernel: Kernel,
        dtype: DType,
        head_dim: Option<usize>,
        entry: &'static str,
        smem: usize,
    ) -> Result<CudaFunction> {
        let variant = Variant {
            kernel,
            dtype,
            head_dim,
        };
        let mut functions = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        if !functions.contains_key(&(variant, entry)) {
            let cubin = cache::cubin(&variant, &self.arch).map_err(|e| self.error(e))?;
            let module = self
                .ctx
                .load_module(Ptx::from_binary(cubin))
                .map_err(|e| self.error(format!("loading {}: {e}", variant.name())))?;
            for name in kernel.entries() {
                let failed = |e| self.error(format!("{}::{name}: {e}", variant.name()));
                let function = module.load_function(name).map_err(failed)?;
                let static_smem = function.shared_size_bytes().map_err(failed)? as usize;
                functions.insert(
                    (variant, name),
                    Loaded {
                        function,
                        static_smem,
                        opted_in: false,
                    },
                );
            }
        }
        let loaded = functions
            .get_mut(&(variant, entry))
            .ok_or_else(|| self.error(format!("{} has no {entry}", variant.name())))?;
        let total = smem + loaded.static_smem;
        if total > self.max_smem {
            return Err(self.error(format!(
                "{}::{entry} needs {total} bytes of shared memory ({} static); the device \
                 allows {}",
                variant.name(),
                loaded.static_smem,
                self.max_smem
            )));
        }
        if total > DEFAULT_SMEM && !loaded.opted_in {
            let attr = CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
            let most = (self.max_smem - loaded.static_smem) as i32;
            self.ctx.bind_to_thread().map_err(|e| self.error(e))?;
            loaded
                .function
                .set_attribute(attr, most)
                .map_err(|e| self.error(e))?;
            loaded.opted_in = true;
        }
        Ok(loaded.function.clone())
    }
}
