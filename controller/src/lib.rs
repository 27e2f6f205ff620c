//! ferrolb controller: IP allocator (pure) and Service reconciler.
//!
//! - [`allocator`]: the pure IP allocator.
//! - [`decide`]: the controller's decisions ([`decide::Core`]): config + allocator + Service
//!   -> status, condition, Events. No I/O.
//! - [`sink`]: what is written, and the [`sink::ControllerSink`] trait the adapters implement.
//! - [`standalone`]: `--manifests DIR` mode (status file instead of the API server).
//! - [`kubernetes`]: the Kubernetes adapter (reconciler, status writes, Events, Lease).
//! - [`lease`]: leader election decisions (pure).
//! - [`metrics`]: Prometheus metrics.

pub mod allocator;
pub mod decide;
pub mod error;
pub mod kubernetes;
pub mod lease;
pub mod metrics;
pub mod sink;
pub mod standalone;

pub use error::{AllocError, Error};
