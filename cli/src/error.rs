//! The tool's errors and their exit codes.

use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Exit code of a run that failed on bad input: a malformed or
/// inconsistent file, a tensor that cannot be quantized as asked.
pub const EXIT_BAD_INPUT: u8 = 1;
/// Exit code of a usage error (clap's own code for bad arguments).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a failure to read or write a file.
pub const EXIT_IO: u8 = 3;

/// Why a command failed; each names the file (and tensor) it is about.
#[derive(Debug, Error)]
pub enum CliError {
    /// Arguments that clap accepts but that do not go together.
    #[error("{0}")]
    Usage(String),
    /// A file whose contents are wrong.
    #[error("{}: {message}", file.display())]
    BadInput { file: PathBuf, message: String },
    /// A file that cannot be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

impl CliError {
    /// Bad input in `file`.
    pub fn bad_input(file: &Path, message: impl Display) -> CliError {
        CliError::BadInput {
            file: file.to_path_buf(),
            message: message.to_string(),
        }
    }

    /// Bad input in tensor `tensor` of `file`.
    pub fn bad_tensor(file: &Path, tensor: &str, message: impl Display) -> CliError {
        CliError::bad_input(file, format!("tensor \"{tensor}\": {message}"))
    }

    /// An I/O failure on `path` while doing `action`.
    pub fn io(path: &Path, action: &'static str, source: io::Error) -> CliError {
        CliError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::BadInput { .. } => EXIT_BAD_INPUT,
            CliError::Io { .. } => EXIT_IO,
        }
    }
}
