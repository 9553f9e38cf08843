//! Typed errors of the core library.

use std::path::PathBuf;

use crate::tensor::{DType, Device, Shape};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: shape mismatch, expected {expected} but found {found}")]
    ShapeMismatch {
        op: &'static str,
        expected: Shape,
        found: Shape,
    },

    #[error("{op}: {msg}")]
    InvalidArgument { op: &'static str, msg: String },

    #[error("{op}: cannot broadcast {lhs} with {rhs}")]
    Broadcast {
        op: &'static str,
        lhs: Shape,
        rhs: Shape,
    },

    #[error("{op}: dtype {dtype} is not supported on {device}")]
    UnsupportedDType {
        op: &'static str,
        dtype: DType,
        device: Device,
    },

    #[error("{op}: tensors live on different devices ({lhs} and {rhs})")]
    DeviceMismatch {
        op: &'static str,
        lhs: Device,
        rhs: Device,
    },

    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable { device: String, reason: String },

    #[error("{0} elements do not fit shape {1}")]
    ElementCount(usize, Shape),

    #[error("backend error on {device}: {msg}")]
    Backend { device: Device, msg: String },

    #[error("weight `{key}` is missing{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingWeight { key: String, hint: Option<String> },

    #[error("weight `{key}` has shape {found}, expected {expected}")]
    WeightShape {
        key: String,
        expected: Shape,
        found: Shape,
    },

    #[error("weight `{key}` has dtype {dtype}, which cannot be converted to a float tensor")]
    WeightDType { key: String, dtype: String },

    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },

    // The I/O error is part of the message rather than a `source`, so error chains print it once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{path}: invalid config: {msg}")]
    Config { path: PathBuf, msg: String },

    /// A pluggable component (e.g. a plugin sampler) failed or misbehaved.
    #[error("{component}: {msg}")]
    Component { component: String, msg: String },

    #[error(transparent)]
    Image(#[from] crate::image::ImageError),

    #[error("{path}: {kind}")]
    Audio {
        path: PathBuf,
        kind: crate::audio::AudioErrorKind,
    },

    #[error(transparent)]
    Pth(#[from] crate::weights::pth::PthError),

    /// A video output refused to replace an existing file or directory.
    #[error("{path}: already exists (pass --overwrite to replace it)")]
    OutputExists { path: PathBuf },

    /// A video or audio encoder, or the container writer, failed on an output.
    #[error("{path}: {codec}: {msg}")]
    Encode {
        path: PathBuf,
        codec: &'static str,
        msg: String,
    },
}

impl Error {
    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            msg: msg.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn audio(path: impl Into<PathBuf>, kind: crate::audio::AudioErrorKind) -> Self {
        Error::Audio {
            path: path.into(),
            kind,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
