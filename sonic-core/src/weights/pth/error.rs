/// Why a checkpoint could not be read. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    // Underlying errors are part of the message, not a `source`, so chains print them once.
    #[error("{file}: cannot read file: {error}")]
    Io { file: String, error: std::io::Error },

    #[error("{file}: not a zip archive, so not a torch checkpoint")]
    NotZip { file: String },

    #[error("{file}: legacy torch format not supported, re-save with torch>=1.6")]
    LegacyFormat { file: String },

    #[error("{file}: is a zip but not a torch checkpoint (no <archive>/data.pkl entry)")]
    NotTorchCheckpoint { file: String },

    #[error("{file}: truncated: {what}")]
    Truncated { file: String, what: String },

    #[error("{file}: unreadable zip archive: {error}")]
    Zip {
        file: String,
        error: zip::result::ZipError,
    },

    #[error("{file}: big-endian checkpoints are not supported")]
    BigEndian { file: String },

    #[error("{file}: refusing to import {global}: only tensor state dicts and TorchScript modules are read")]
    ForbiddenGlobal { file: String, global: String },

    #[error("{file}: unknown pickle opcode {opcode} at byte {offset} of data.pkl")]
    UnknownOpcode {
        file: String,
        opcode: String,
        offset: usize,
    },

    #[error("{file}: unsupported: {what}")]
    Unsupported { file: String, what: String },

    #[error("{file}: malformed checkpoint: {what}")]
    Malformed { file: String, what: String },

    #[error("{file}: {what} would exceed the memory budget of {budget} bytes for this file")]
    TooLarge {
        file: String,
        what: String,
        budget: usize,
    },
}

impl PthError {
    pub(crate) fn truncated(file: &str, what: impl Into<String>) -> Self {
        Self::Truncated {
            file: file.to_owned(),
            what: what.into(),
        }
    }

    pub(crate) fn malformed(file: &str, what: impl Into<String>) -> Self {
        Self::Malformed {
            file: file.to_owned(),
            what: what.into(),
        }
    }

    pub(crate) fn unsupported(file: &str, what: impl Into<String>) -> Self {
        Self::Unsupported {
            file: file.to_owned(),
            what: what.into(),
        }
    }
}

/// Names and strings taken from the file end up in error messages; a hostile file must not be
/// able to smuggle terminal escape sequences or megabytes of text into a log line.
pub(crate) fn printable(raw: &str) -> String {
    const MAX_CHARS: usize = 200;
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
