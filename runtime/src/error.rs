//! The one error type of the `eddy-runtime` crate.
//!
//! Every variant says what failed and where: a configuration error names the file, the
//! document index and the field; an I/O error names what was being done and to which path or
//! address.

use std::path::PathBuf;

/// Errors of the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A module.yaml (or CLI-provided) setting is invalid.
    #[error("{}{}: {field}: {message}", file.display(), document.map(|d| format!(": document {d}")).unwrap_or_default())]
    Config {
        file: PathBuf,
        /// Zero-based index of the YAML document, when the error is inside one.
        document: Option<usize>,
        /// Dotted path of the field, e.g. `spec.transport.timeouts.call`.
        field: String,
        message: String,
    },
    /// A kind that Eddy reads and validates but cannot run yet.
    #[error("{}: document {document}: kind {kind}: {message}", file.display())]
    Unsupported {
        file: PathBuf,
        document: usize,
        kind: String,
        message: String,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// TLS material could not be loaded or used.
    #[error("tls: {0}")]
    Tls(String),
    /// An invocation of a function failed after its retries.
    #[error("invocation of {target} at {url} failed after {attempts} attempt(s): {reason}")]
    Invocation {
        target: String,
        /// Where the call went: the URL (http), `lambda function NAME[:QUALIFIER] [via URL]`,
        /// or `embedded`.
        url: String,
        attempts: u32,
        reason: String,
    },
    /// A function's reply breaks the protocol (e.g. a message to an unknown function type).
    #[error("invalid reply from the function for {target}: {reason}")]
    Reply { target: String, reason: String },
    /// A message was rejected at the door (unknown function type, bad encoding, ...).
    #[error("message rejected: {0}")]
    Rejected(String),
    /// The runtime is shutting down and no longer accepts work.
    #[error("the runtime is shutting down")]
    ShuttingDown,
}

impl Error {
    /// An I/O error with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
