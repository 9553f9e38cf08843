//! Contiguous tensors on a runtime-chosen device.

mod device;
mod dtype;
mod ops;
mod shape;

use std::sync::Arc;

use half::{bf16, f16};

pub use device::Device;
pub use dtype::DType;
pub use shape::Shape;

use crate::backend::{Backend, CpuStorage, Storage};
use crate::{Error, Result};

/// A contiguous row-major tensor. Cloning is cheap: storage is shared and never mutated.
#[derive(Clone, Debug)]
pub struct Tensor {
    storage: Arc<Storage>,
    shape: Shape,
}

impl Tensor {
    /// Wraps backend storage; its element count must match the shape.
    pub fn from_storage(storage: Storage, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if storage.elem_count() != shape.elem_count() {
            return Err(Error::ElementCount(storage.elem_count(), shape));
        }
        Ok(Tensor {
            storage: Arc::new(storage),
            shape,
        })
    }

    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        let cpu = Tensor::from_storage(Storage::Cpu(CpuStorage::F32(data.into())), shape)?;
        cpu.to_device(device)
    }

    pub fn from_slice(data: &[f32], shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape, device)
    }

    pub fn from_f16(data: Vec<f16>, shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        Tensor::from_storage(Storage::Cpu(CpuStorage::F16(data)), shape)?.to_device(device)
    }

    pub fn from_bf16(data: Vec<bf16>, shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        Tensor::from_storage(Storage::Cpu(CpuStorage::BF16(data)), shape)?.to_device(device)
    }

    pub fn full(value: f32, shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        Tensor::from_vec(vec![value; shape.elem_count()], shape, device)
    }

    pub fn zeros(shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        Tensor::full(0.0, shape, device)
    }

    pub fn ones(shape: impl Into<Shape>, device: Device) -> Result<Tensor> {
        Tensor::full(1.0, shape, device)
    }

    /// `[start, start+1, …]` of length `len`, as f32.
    pub fn arange(start: f32, len: usize, device: Device) -> Result<Tensor> {
        let data = (0..len).map(|i| start + i as f32).collect();
        Tensor::from_vec(data, [len], device)
    }

    pub fn scalar(value: f32, device: Device) -> Result<Tensor> {
        Tensor::from_vec(vec![value], (), device)
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    /// Size of dimension `axis` (negative counts from the end).
    pub fn dim(&self, axis: isize) -> Result<usize> {
        self.shape.dim(axis)
    }

    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn device(&self) -> Device {
        match &*self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Device(s) => s.backend().device(),
        }
    }

    pub(crate) fn backend(&self) -> Arc<dyn Backend> {
        match &*self.storage {
            Storage::Cpu(_) => crate::backend::cpu(),
            Storage::Device(s) => s.backend(),
        }
    }

    /// The f32 data of a CPU tensor, borrowed; an error for other devices or dtypes.
    pub fn cpu_f32(&self) -> Result<&[f32]> {
        match &*self.storage {
            Storage::Cpu(CpuStorage::F32(buf)) => Ok(buf),
            Storage::Cpu(_) => Err(Error::UnsupportedDType {
                op: "cpu_f32",
                dtype: self.dtype(),
                device: Device::Cpu,
            }),
            Storage::Device(_) => Err(Error::invalid(
                "cpu_f32",
                format!("tensor lives on {}, not the CPU", self.device()),
            )),
        }
    }

    /// Copies the elements to the host as f32, whatever the device and dtype.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        let cpu = self.to_device(Device::Cpu)?.to_dtype(DType::F32)?;
        Ok(cpu.cpu_f32()?.to_vec())
    }

    /// The single element of a tensor with one element.
    pub fn to_scalar(&self) -> Result<f32> {
        if self.elem_count() != 1 {
            return Err(Error::invalid(
                "to_scalar",
                format!("tensor of shape {} has more than one element", self.shape),
            ));
        }
        Ok(self.to_vec()?[0])
    }

    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        let here = self.device();
        if here == device {
            return Ok(self.clone());
        }
        let on_cpu = if here.is_cpu() {
            self.clone()
        } else {
            self.backend().download(self)?
        };
        if device.is_cpu() {
            Ok(on_cpu)
        } else {
            device.backend()?.upload(&on_cpu)
        }
    }

    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if self.dtype() == dtype {
            return Ok(self.clone());
        }
        self.backend().to_dtype(self, dtype)
    }

    /// Same data under a new shape with the same element count. One dimension may be
    /// given as `usize::MAX` to be inferred.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let mut dims = shape.into().dims().to_vec();
        let inferred: Vec<usize> = (0..dims.len()).filter(|&i| dims[i] == usize::MAX).collect();
        if inferred.len() > 1 {
            return Err(Error::invalid("reshape", "at most one inferred dimension"));
        }
        if let Some(&i) = inferred.first() {
            let known: usize = dims.iter().filter(|&&d| d != usize::MAX).product();
            if known == 0 || !self.elem_count().is_multiple_of(known) {
                return Err(Error::invalid(
                    "reshape",
                    format!(
                        "cannot infer a dimension of {dims:?} from shape {}",
                        self.shape
                    ),
                ));
            }
            dims[i] = self.elem_count() / known;
        }
        let shape = Shape::new(dims);
        if shape.elem_count() != self.elem_count() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                expected: self.shape.clone(),
                found: shape,
            });
        }
        Ok(Tensor {
            storage: self.storage.clone(),
            shape,
        })
    }

    /// Removes a dimension of size 1.
    pub fn squeeze(&self, axis: isize) -> Result<Tensor> {
        let axis = self.shape.axis(axis, "squeeze")?;
        if self.dims()[axis] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!("axis {axis} of {} is not of size 1", self.shape),
            ));
        }
        let mut dims = self.dims().to_vec();
        dims.remove(axis);
        self.reshape(dims)
    }

    /// Inserts a dimension of size 1 before `axis` (`axis == rank` appends).
    pub fn unsqueeze(&self, axis: usize) -> Result<Tensor> {
        if axis > self.rank() {
            return Err(Error::invalid(
                "unsqueeze",
                format!("axis {axis} out of range for shape {}", self.shape),
            ));
        }
        let mut dims = self.dims().to_vec();
        dims.insert(axis, 1);
        self.reshape(dims)
    }

    /// Flattens dimensions `start..=end` into one.
    pub fn flatten(&self, start: usize, end: usize) -> Result<Tensor> {
        if start > end || end >= self.rank() {
            return Err(Error::invalid(
                "flatten",
                format!("bad range {start}..={end} for shape {}", self.shape),
            ));
        }
        let dims = self.dims();
        let mut out = dims[..start].to_vec();
        out.push(dims[start..=end].iter().product());
        out.extend_from_slice(&dims[end + 1..]);
        self.reshape(out)
    }
}
