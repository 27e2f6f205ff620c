//! ferrolb speaker: per-node L2 and BGP announcements. See README.md.
//!
//! Data path: cluster state (standalone directory or Kubernetes) -> validated `ferrolb_crds::Config` + [`cluster`] view -> the pure
//! decision [`decide::desired`] -> the plan of changes -> protocol drivers.

pub mod cluster;
pub mod decide;
pub mod drivers;
pub mod election;
mod error;
pub mod links;
pub mod membership;
pub mod metrics;
pub mod plan;
pub mod retry;
pub mod run;
pub mod source;
pub mod status;
pub mod sys;
pub mod unnumbered;
pub mod writer;

pub use error::Error;
