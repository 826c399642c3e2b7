//! The sandbox's error types.

use std::path::PathBuf;

/// Why a sandbox could not be built, restored or preserved.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The script file could not be read.
    #[error("cannot read Lua script {path}: {source}")]
    ReadScript {
        /// The script's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Lua state could not be set up (out of memory while loading the libraries).
    #[error("cannot create the Lua state: {0}")]
    Init(String),
    /// The script does not compile, or its global code failed (including a broken limit).
    #[error("{0}")]
    Load(String),
    /// The script lacks an entry point the plugin type needs.
    #[error("{0}() function was not found")]
    MissingEntryPoint(&'static str),
    /// The preserved data could not be restored.
    #[error("restore_global_data {path}: {reason}")]
    Restore {
        /// The data file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The global data could not be serialised or written.
    #[error("preserve_global_data {path}: {reason}")]
    Preserve {
        /// The data file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// `preserve` was called without `preserve_data` or a preservation path.
    #[error("data preservation is not configured for this sandbox")]
    PreservationDisabled,
    /// The sandbox was terminated earlier.
    #[error("sandbox terminated: {0}")]
    Terminated(String),
}

/// Why a sandbox stopped for good: the reason becomes the payload of the
/// `heka.sandbox-terminated` message (see [`termination_message`](crate::termination_message)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Terminated {
    /// The last error, e.g. `process_message() [string "f.lua"]:3: instruction_limit exceeded`.
    pub reason: String,
}

/// Why the host refused an injected message; the text becomes the Lua error raised by
/// `inject_message` / `inject_payload`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// The message went round the router too often.
    #[error("exceeded MaxMsgLoops")]
    MaxMsgLoops,
    /// The message would match the injecting plugin's own matcher.
    #[error("creates a circular reference (matches this plugin's message_matcher)")]
    CircularReference,
    /// The pipeline is shutting down; the call ends without terminating the sandbox.
    #[error("aborted")]
    Aborted,
    /// Anything else; the text is raised as is.
    #[error("{0}")]
    Other(String),
}
