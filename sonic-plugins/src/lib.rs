//! Sonic SDK plugins: the C ABI (`include/sonic_plugin.h` and its Rust mirror), where plugin
//! libraries are found, the host loader that keeps the host alive whatever a plugin does,
//! and the Rust SDK that exports a safe implementation as a plugin.

pub mod abi;
pub mod discovery;
mod error;
pub mod host;
pub mod manifest;
pub mod sdk;

pub use discovery::{
    candidate_files, search_path, user_plugin_dir, SearchEntry, SearchPath, SearchSource,
    PLUGIN_PATH_ENV,
};
pub use error::PluginError;
pub use host::{
    load, load_static, ComponentDescriptor, LoadedPlugin, PluginAudioEncoder, PluginSampler,
};
pub use manifest::{read_manifest, Manifest};
