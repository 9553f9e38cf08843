//! Sonic SDK plugins: where plugin libraries are found (and, as the SDK grows, the C ABI
//! and the host loader).

pub mod discovery;

pub use discovery::{
    candidate_files, search_path, user_plugin_dir, SearchEntry, SearchPath, SearchSource,
    PLUGIN_PATH_ENV,
};
