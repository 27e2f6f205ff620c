//! How a ferrolb binary sees the cluster. In standalone mode: the manifests directory
//! (`--manifests DIR`) as one stream of consistent [`ClusterView`]s. In Kubernetes mode: the
//! plumbing every watch shares ([`kube`]).
//!
//! - [`Directory`] is the loader: it reads the `*.yaml`/`*.yml` files directly in DIR (and,
//!   for speakers, the state files in `DIR/.ferrolb/`), re-reading only files whose size,
//!   times or inode changed, and keeps each file's **last good** objects while the file cannot
//!   be read or parsed. A file leaves the view only when it is gone from the directory.
//! - [`Watcher`] drives it from file-system notifications (inotify through `notify`) with a
//!   short quiet-period debounce, plus a slow periodic rescan as a safety net, and publishes
//!   every changed view on a `tokio::sync::watch` channel.
//!
//! - [`kube`] holds one copy of each rule of the Kubernetes watches: the reconnect backoff
//!   ([`kube::WatchBackoff`]), which errors are routine ([`kube::is_gone`],
//!   [`kube::log_watch_error`]), what a cached object loses ([`kube::trim`]), the paged list
//!   ([`kube::list_all`]) and a store of records ([`kube::RecordStore`]). What each binary
//!   watches and keeps stays in the binary (`controller/src/kubernetes/watch.rs`,
//!   `speaker/src/source/kubernetes.rs`).

mod directory;
mod error;
mod files;
pub mod kube;
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
