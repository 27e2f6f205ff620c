//! The plumbing both binaries' Kubernetes watches share: the reconnect backoff, which watch
//! errors are routine (and how they are logged), what is dropped from every cached object,
//! the paged list, and a reflector store of small records keyed by `namespace/name`.
//!
//! What each binary watches, and what it does with the objects, stays in the binary
//! (`controller/src/kubernetes/services.rs`: a record store and a work queue over the
//! Service watch; `speaker/src/source/kubernetes.rs`: reflectors and the speaker's records).

mod backoff;
mod record_store;
mod watch;

pub use backoff::{CAP, FIRST, WatchBackoff};
pub use record_store::{Keyed, RecordStore, RecordWriter, map_event, record_store};
pub use watch::{LAST_APPLIED, for_each_page, is_gone, list_all, log_watch_error, trim};
