//! The crate's error type (config errors are data: [`crate::config::ConfigError`]).

use std::path::PathBuf;

/// Errors of loading resources from YAML.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document is not valid YAML, or not a valid object of its kind.
    #[error("failed to parse {what} in {file}:{line}: {message}")]
    Yaml {
        /// File name (or the label given for in-memory text).
        file: String,
        /// 1-based line in the file.
        line: u64,
        /// `apiVersion`/`kind` (and name) when known, else "YAML document".
        what: String,
        /// The parser's message.
        message: String,
        /// The parser's error.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A document has no `apiVersion` or `kind`.
    #[error("failed to load object in {file}:{line}: {message}")]
    Object {
        /// File name.
        file: String,
        /// 1-based line of the document start.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A text holds more than a limit allows; nothing of it is loaded.
    #[error("{file}: {value} {what}, more than the limit of {limit}")]
    Limit {
        /// File name.
        file: String,
        /// What was counted, e.g. `objects`.
        what: &'static str,
        /// The count.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// Reading a file or directory failed.
    #[error("failed to read {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
