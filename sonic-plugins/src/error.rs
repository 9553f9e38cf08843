use std::path::PathBuf;

/// Everything that can go wrong between the host and a plugin. Each names the library.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: cannot load the library: {msg}")]
    Load { path: PathBuf, msg: String },

    #[error("{path}: not a sonic plugin (no `sonic_plugin_entry` symbol)")]
    NoEntry { path: PathBuf },

    #[error(
        "{path}: plugin ABI {major}.{minor} is not supported by this host (ABI {host_major}.x)"
    )]
    AbiMismatch {
        path: PathBuf,
        major: u32,
        minor: u32,
        host_major: u32,
    },

    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },

    #[error("{path}: manifest {manifest}: {msg}")]
    Manifest {
        path: PathBuf,
        manifest: PathBuf,
        msg: String,
    },

    #[error("{path}: sha256 {found} does not match the manifest's {expected}; not loaded")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error("plugin {plugin}, {component}: {msg}")]
    Call {
        plugin: String,
        component: String,
        msg: String,
    },
}

impl From<PluginError> for sonic_core::Error {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::Call {
                plugin,
                component,
                msg,
            } => sonic_core::Error::Component {
                component: format!("plugin {plugin}, {component}"),
                msg,
            },
            other => sonic_core::Error::Component {
                component: "plugin".into(),
                msg: other.to_string(),
            },
        }
    }
}
