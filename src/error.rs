//! The library's one error type.

pub mod alloc_report;

use std::path::PathBuf;

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with the context a user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is not valid TOML, or does not match the schema (unknown key, wrong type).
    #[error("{}{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), key.as_ref().map(|k| format!(": `{k}`")).unwrap_or_default())]
    ConfigParse {
        /// The config file.
        file: PathBuf,
        /// The line of the key, when known.
        line: Option<usize>,
        /// The dotted key the problem concerns, when the parser's position names one.
        key: Option<String>,
        /// The parser's message (it names line and column where it knows them).
        message: String,
    },
    /// A config value is out of range or inconsistent.
    #[error("{}{}: `{key}` = {value}: {allowed}", origin(file.as_deref(), key), line.map(|l| format!(":{l}")).unwrap_or_default())]
    ConfigValue {
        /// The config file, when known.
        file: Option<PathBuf>,
        /// The line of the key, when it can be found.
        line: Option<usize>,
        /// Dotted key path, e.g. `model.width`.
        key: String,
        /// The offending value as written.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A data file is malformed.
    #[error("{}{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), column.as_ref().map(|c| format!(" (column `{c}`)")).unwrap_or_default())]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line number, when the problem is on one line.
        line: Option<usize>,
        /// Column name, when the problem is in one column.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error (part of the message, not a separate cause: printed once).
        error: std::io::Error,
    },
    /// The output directory exists and is not empty, or cannot be used.
    #[error("{}: {message}", path.display())]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// A computation would need more memory than the machine has.
    #[error("{what} needs about {needed_bytes} bytes but only {available_bytes} are available; {advice}")]
    Memory {
        /// What would be computed.
        what: String,
        /// Estimated bytes.
        needed_bytes: u64,
        /// Available bytes.
        available_bytes: u64,
        /// The setting that shrinks the largest part.
        advice: String,
    },
    /// An allocation failed during the run (possible only past the estimate, with `--force`).
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// A numerical routine failed (e.g. an eigendecomposition did not converge).
    #[error("numerics: {0}")]
    Numerics(String),
    /// The tensor backend failed.
    #[error("tensor backend: {0}")]
    Backend(String),
    /// The run was interrupted (SIGINT/SIGTERM) before anything could be logged.
    #[error("interrupted {0}")]
    Interrupted(String),
    /// Drawing or encoding a figure failed.
    #[error("{}: rendering failed: {message}", path.display())]
    Render {
        /// The figure file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `--verify` was pointed at something that is not a run directory.
    #[error("{}: not a run directory: {message}", path.display())]
    NotARun {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// A verification of a recorded run found mismatches.
    #[error("verification failed: {0}")]
    Verify(String),
}

/// Where a config value came from: its file, the command line for an option (`--out`), or
/// `<config>` for text given without a file.
fn origin(file: Option<&std::path::Path>, key: &str) -> String {
    match file {
        Some(f) => f.display().to_string(),
        None if key.starts_with("--") => "command line".into(),
        None => "<config>".into(),
    }
}

impl Error {
    /// An I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// A config value error (file and line are filled in by the loader).
    pub fn value(key: &str, value: impl std::fmt::Display, allowed: impl Into<String>) -> Self {
        Error::ConfigValue {
            file: None,
            line: None,
            key: key.to_string(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// Whether a panic message is that of a failed allocation (a library that panics instead of
/// returning an error when memory runs out, e.g. faer's matrix allocation or `Vec`'s capacity
/// overflow).
pub fn is_allocation_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("alloc") || m.contains("capacity overflow") || m.contains("tryreserve")
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::new()
    }
}
