//! Sonic SDK core: tensors with a runtime-chosen device, the CPU reference backend,
//! weight loading, and (as the SDK grows) models, sampling and scheduling.

pub mod audio;
pub mod backend;
pub mod error;
pub mod image;
pub mod models;
pub mod nn;
pub mod pipeline;
pub mod registry;
pub mod rng;
pub mod sampling;
pub mod schedule;
pub mod tensor;
pub mod verify;
pub mod video;
pub mod weights;

pub use backend::Backend;
pub use error::{Error, Result};
pub use tensor::{DType, Device, Shape, Tensor};
