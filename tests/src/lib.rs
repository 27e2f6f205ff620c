//! Helpers for ferrolb's cross-crate integration tests: network namespaces made by the test
//! itself, veth links, processes that are killed on drop, and bounded polling.
//!
//! Every test that uses a namespace calls [`netns::require_root`] first: without root it skips
//! with a clear message, unless `FERROLB_REQUIRE_NETNS=1` (set by `scripts/test.sh` when run as
//! root), in which case a missing privilege is a failure rather than a silent skip.

pub mod membership_lab;
pub mod netns;
mod sys;

pub use netns::{Netns, Proc, require_root, run, veth, wait_until};
