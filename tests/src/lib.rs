//! Helpers for ferrolb's cross-crate integration tests: network namespaces made by the test
//! itself, veth links, processes that are killed on drop, and bounded polling.
//!
//! Every test that uses a namespace calls [`netns::require_root`] first: without root it skips
//! with a clear message, unless `FERROLB_REQUIRE_NETNS=1` (set by `scripts/test.sh` when run as
//! root), in which case a missing privilege is a failure rather than a silent skip.

pub mod kube_env;
pub mod l2_fixture;
pub mod lab;
pub mod membership_lab;
pub mod netns;
pub mod peers_bird;
pub mod peers_ferrolb;
pub mod peers_frr;
pub mod peers_gobgp;
pub mod speaker_run;
mod sys;
pub mod tools;
pub mod vm;

pub use netns::{Netns, Proc, require_root, run, veth, wait_until};
pub mod bfd_peers;

/// A fresh private directory for a peer daemon's files: `/tmp/flb-<kind>-<pid>-<n>`.
pub fn peers_dir(kind: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("flb-{kind}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create peer dir");
    dir
}
