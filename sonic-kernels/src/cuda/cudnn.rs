//! cuDNN's forward convolution through cudarc's safe API. cudarc loads libcudnn on its
//! first call and panics if it cannot, so the backend only gets here once
//! [`crate::probe_cudnn`] has opened the same library, and runs every call under
//! `catch_unwind` besides.
//!
//! Storage is NCHW (NCDHW for 3d) as everywhere in the backend; 1d convolutions run as 2d
//! with height 1. Arithmetic is f32 for every dtype (cuDNN's "pseudo half" configs), and
//! f32 data is restricted to FMA math, so cuDNN never substitutes TF32.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cudarc::cudnn::sys::{
    cudnnConvolutionFwdAlgo_t, cudnnConvolutionMode_t, cudnnDataType_t, cudnnMathType_t,
    cudnnTensorFormat_t,
};
use cudarc::cudnn::{ConvForward, Cudnn, CudnnDataType, CudnnError};
use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceSlice, SyncOnDrop};
use sonic_core::DType;

/// cuDNN's half-precision storage types, for cudarc's typed descriptors (its own impls for
/// `half`'s types need its `f16` feature). The value is the f32 scaling factor cuDNN takes
/// with half-precision data.
#[derive(Clone, Copy)]
struct Half(f32);
#[derive(Clone, Copy)]
struct BFloat16(f32);

impl CudnnDataType for Half {
    const DATA_TYPE: cudnnDataType_t = cudnnDataType_t::CUDNN_DATA_HALF;
    type Scalar = f32;
    fn into_scaling_parameter(self) -> f32 {
        self.0
    }
}

impl CudnnDataType for BFloat16 {
    const DATA_TYPE: cudnnDataType_t = cudnnDataType_t::CUDNN_DATA_BFLOAT16;
    type Scalar = f32;
    fn into_scaling_parameter(self) -> f32 {
        self.0
    }
}

/// A storage type with the math cuDNN may use on it.
trait Storage: CudnnDataType + Copy {
    const MATH: cudnnMathType_t;
    fn scale(v: f32) -> Self;
}

impl Storage for f32 {
    const MATH: cudnnMathType_t = cudnnMathType_t::CUDNN_FMA_MATH;
    fn scale(v: f32) -> Self {
        v
    }
}

impl Storage for Half {
    const MATH: cudnnMathType_t = cudnnMathType_t::CUDNN_TENSOR_OP_MATH;
    fn scale(v: f32) -> Self {
        Half(v)
    }
}

impl Storage for BFloat16 {
    const MATH: cudnnMathType_t = cudnnMathType_t::CUDNN_TENSOR_OP_MATH;
    fn scale(v: f32) -> Self {
        BFloat16(v)
    }
}

/// A buffer of the backend's (untyped bytes) seen as `T`, for cudarc's launch signature.
/// The backend queues everything on one stream, so no event needs recording around it.
struct Buffer<'a, T> {
    ptr: u64,
    len: usize,
    stream: &'a Arc<CudaStream>,
    marker: PhantomData<T>,
}

impl<'a, T> Buffer<'a, T> {
    fn new(ptr: u64, len: usize, stream: &'a Arc<CudaStream>) -> Self {
        Buffer {
            ptr,
            len,
            stream,
            marker: PhantomData,
        }
    }
}

impl<T> DeviceSlice<T> for Buffer<'_, T> {
    fn len(&self) -> usize {
        self.len
    }

    fn stream(&self) -> &Arc<CudaStream> {
        self.stream
    }
}

impl<T> DevicePtr<T> for Buffer<'_, T> {
    fn device_ptr<'a>(&'a self, _stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        (self.ptr, SyncOnDrop::Record(None))
    }
}

impl<T> DevicePtrMut<T> for Buffer<'_, T> {
    fn device_ptr_mut<'a>(&'a mut self, _stream: &'a CudaStream) -> (CUdeviceptr, SyncOnDrop<'a>) {
        (self.ptr, SyncOnDrop::Record(None))
    }
}

/// One convolution as cuDNN sees it: NCHW or NCDHW dims (all below 2³¹ elements) and the
/// per-spatial-dim parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CudnnShape {
    pub dtype: DType,
    pub x: Vec<i32>,
    pub w: Vec<i32>,
    pub y: Vec<i32>,
    pub pad: Vec<i32>,
    pub stride: Vec<i32>,
    pub dilation: Vec<i32>,
}

/// The algorithm cuDNN's heuristics picked for a shape, and the workspace it needs.
#[derive(Clone, Copy)]
struct Plan {
    algo: cudnnConvolutionFwdAlgo_t,
    workspace: usize,
}

/// What came of asking cuDNN to run a convolution.
pub(crate) enum Outcome {
    Done,
    /// cuDNN cannot run this shape (nothing was queued); the reason says why.
    Unsupported(String),
}

/// The handle and the plans found so far. Picking an algorithm costs cuDNN 9 far more host
/// time than the launch, so every shape is planned once, failures included.
pub(crate) struct CudnnConv {
    handle: Arc<Cudnn>,
    stream: Arc<CudaStream>,
    plans: HashMap<CudnnShape, Result<Plan, String>>,
}

// SAFETY: cuDNN allows a handle on any host thread as long as calls do not overlap. The
// backend keeps this behind a mutex, binds its context before each call, and the
// descriptors that share the handle are created and dropped within one locked call.
unsafe impl Send for CudnnConv {}

/// Contiguous strides of `dims`.
fn strides(dims: &[i32]) -> Vec<i32> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len() - 1).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

impl CudnnConv {
    /// A handle on `stream`. The caller has probed libcudnn and guards against panics.
    pub fn new(stream: &Arc<CudaStream>) -> Result<CudnnConv, CudnnError> {
        Ok(CudnnConv {
            handle: Cudnn::new(stream.clone())?,
            stream: stream.clone(),
            plans: HashMap::new(),
        })
    }

    /// `y = conv(x, w)` on device addresses sized for `shape`, queued on the stream.
    pub fn forward(&mut self, shape: &CudnnShape, io: [u64; 3]) -> Result<Outcome, String> {
        match shape.dtype {
            DType::F32 => self.forward_as::<f32>(shape, io),
            DType::F16 => self.forward_as::<Half>(shape, io),
            DType::BF16 => self.forward_as::<BFloat16>(shape, io),
        }
    }

    fn forward_as<X: Storage>(
        &mut self,
        shape: &CudnnShape,
        io: [u64; 3],
    ) -> Result<Outcome, String> {
        let [x, w, y] = io;
        let described = (|| {
            let cudnn = &self.handle;
            let x_desc = cudnn.create_nd_tensor::<X>(&shape.x, &strides(&shape.x))?;
            let w_desc =
                cudnn.create_nd_filter::<X>(cudnnTensorFormat_t::CUDNN_TENSOR_NCHW, &shape.w)?;
            let y_desc = cudnn.create_nd_tensor::<X>(&shape.y, &strides(&shape.y))?;
            let mut conv = cudnn.create_convnd::<f32>(
                &shape.pad,
                &shape.stride,
                &shape.dilation,
                cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            )?;
            conv.set_math_type(X::MATH)?;
            Ok::<_, CudnnError>((x_desc, w_desc, y_desc, conv))
        })();
        let (x_desc, w_desc, y_desc, conv) = match described {
            Ok(descriptors) => descriptors,
            Err(e) => return Ok(Outcome::Unsupported(format!("descriptors: {e}"))),
        };
        let op = ConvForward {
            conv: &conv,
            x: &x_desc,
            w: &w_desc,
            y: &y_desc,
        };
        let plan = self.plans.entry(shape.clone()).or_insert_with(|| {
            // cudarc asserts that cuDNN returned an algorithm; a panic there is a shape
            // cuDNN has nothing for, remembered like any other refusal.
            let picked = catch_unwind(AssertUnwindSafe(|| op.pick_algorithm()))
                .map_err(|_| "cuDNN returned no algorithm".to_owned())?;
            let algo = picked.map_err(|e| e.to_string())?;
            let workspace = op.get_workspace_size(algo).map_err(|e| e.to_string())?;
            Ok(Plan { algo, workspace })
        });
        let plan = match plan {
            Ok(plan) => *plan,
            Err(why) => return Ok(Outcome::Unsupported(format!("no algorithm: {why}"))),
        };
        let mut workspace: Option<CudaSlice<u8>> = match plan.workspace {
            0 => None,
            // SAFETY: cuDNN uses the workspace as scratch and never reads it before writing.
            bytes => match unsafe { self.stream.alloc::<u8>(bytes) } {
                Ok(workspace) => Some(workspace),
                // The next algorithm needs no workspace of this size.
                Err(e) => {
                    return Ok(Outcome::Unsupported(format!(
                        "{bytes} bytes of workspace: {e}"
                    )))
                }
            },
        };
        let elems = |dims: &[i32]| dims.iter().map(|&d| d as usize).product();
        let x = Buffer::<X>::new(x, elems(&shape.x), &self.stream);
        let w = Buffer::<X>::new(w, elems(&shape.w), &self.stream);
        let mut y = Buffer::<X>::new(y, elems(&shape.y), &self.stream);
        // SAFETY: the caller's buffers hold the elements the descriptors describe, in the
        // dtype they name, on the handle's stream; the workspace outlives the queued work
        // because its stream-ordered free follows it.
        unsafe {
            op.launch(
                plan.algo,
                workspace.as_mut(),
                (X::scale(1.0), X::scale(0.0)),
                &x,
                &w,
                &mut y,
            )
        }
        .map_err(|e| format!("cudnnConvolutionForward ({:?}): {e}", plan.algo))?;
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use crate::probe::{CUBLAS_CANDIDATES, CUDNN_CANDIDATES};

    /// cudarc takes the first of its names that loads; a probe's names must come in the
    /// same order, so a library the probe found is one cudarc finds rather than panics on.
    fn probe_names_follow_cudarc(library: &str, probe: &[&str]) {
        let cudarc = cudarc::get_lib_name_candidates(library);
        let at: Vec<usize> = probe
            .iter()
            .map(|name| {
                cudarc
                    .iter()
                    .position(|c| c == name)
                    .unwrap_or_else(|| panic!("cudarc does not try {name}: {cudarc:?}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?} in {cudarc:?}");
    }

    #[test]
    fn the_probes_open_what_cudarc_opens() {
        probe_names_follow_cudarc("cudnn", CUDNN_CANDIDATES);
        probe_names_follow_cudarc("cublas", CUBLAS_CANDIDATES);
    }
}
