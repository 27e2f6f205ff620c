//! The crate's error type. Problems with single files are data ([`crate::FileError`]) in the
//! view, not errors: the rest of the directory still applies.

use std::path::PathBuf;

/// Errors of starting the directory watcher.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifests directory cannot be read at start-up.
    #[error("failed to read the manifests directory {}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file-system notification watcher cannot be set up.
    #[error("failed to watch {} for changes", path.display())]
    Watch {
        /// The path.
        path: PathBuf,
        /// The notify error.
        #[source]
        source: notify::Error,
    },
}
