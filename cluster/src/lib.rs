//! How a ferrolb binary sees the cluster in standalone mode: the manifests directory
//! (`--manifests DIR`) as one stream of consistent [`ClusterView`]s.
//!
//! - [`Directory`] is the loader: it reads the `*.yaml`/`*.yml` files directly in DIR (and,
//!   for speakers, the state files in `DIR/.ferrolb/`), re-reading only files whose size,
//!   times or inode changed, and keeps each file's **last good** objects while the file cannot
//!   be read or parsed. A file leaves the view only when it is gone from the directory.
//! - [`Watcher`] drives it from file-system notifications (inotify through `notify`) with a
//!   short quiet-period debounce, plus a slow periodic rescan as a safety net, and publishes
//!   every changed view on a `tokio::sync::watch` channel.
//!
//! The Kubernetes watches still live in the binaries (`controller/src/kubernetes`,
//! `speaker/src/source/kubernetes`); moving them here is later work.

mod directory;
mod error;
mod files;
mod limits;
mod metrics;
mod pending;
mod view;
mod watcher;

pub use directory::{Directory, Options, Scan};
pub use error::Error;
pub use files::{FileError, write_atomic};
pub use limits::Limits;
pub use metrics::Metrics;
pub use view::ClusterView;
pub use watcher::Watcher;

/// The directory of the binaries' state files inside DIR.
pub const STATE_DIR: &str = ".ferrolb";

/// Path of one speaker's state file relative to DIR.
pub fn speaker_state_file(node: &str) -> String {
    format!("{STATE_DIR}/speaker-{node}.yaml")
}
