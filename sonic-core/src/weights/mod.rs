//! Weight files: safetensors through memory maps, PyTorch checkpoints read without Python,
//! diffusers/transformers folders, and a prefix-scoped loader that checks shapes and
//! reports missing, unused and mismatched keys.

mod builder;
mod convert;
mod folder;
pub mod pth;
mod report;
mod store;

pub use builder::VarBuilder;
pub use convert::write_safetensors;
pub use folder::{find_weight_files, read_config};
pub use report::LoadReport;
pub use store::{RawTensor, WeightStore};

#[cfg(test)]
mod tests;
