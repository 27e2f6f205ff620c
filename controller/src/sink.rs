//! What the controller writes, and the trait both adapters implement.
//!
//! Decisions ([`crate::decide`]) produce plain values: a Service's status, Events, pool usage,
//! configuration errors. A [`ControllerSink`] puts them somewhere: the Kubernetes adapter
//! patches status subresources and publishes Events; the standalone adapter writes
//! `DIR/.ferrolb/status.yaml`.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;

use ferrolb_crds::config::{ConfigError, ObjectRef};

use crate::allocator::{PoolUsage, ServiceKey};
use crate::error::Error;

/// Type of the Service condition ferrolb owns.
pub const CONDITION_TYPE: &str = "ferrolb.io/IPAllocated";

/// Event reasons (PascalCase, as in `kubectl get events`).
pub mod reasons {
    /// The Service got (or changed) its addresses.
    pub const IP_ALLOCATED: &str = "IPAllocated";
    /// The Service could not get an address; the message says why.
    pub const ALLOCATION_FAILED: &str = "AllocationFailed";
    /// The Service's address is in no pool any more (kept, never moved).
    pub const IP_OUTSIDE_POOL: &str = "IPOutsidePool";
    /// Two Services with the same sharing key cannot share.
    pub const SHARING_CONFLICT: &str = "SharingConflict";
    /// The Service's addresses were released (deleted, not `LoadBalancer`, other class).
    pub const IP_RELEASED: &str = "IPReleased";
    /// An object of the configuration is invalid (ignored or kept at its last good version).
    pub const INVALID_CONFIGURATION: &str = "InvalidConfiguration";
    /// Every reason above (metrics start each at zero).
    pub const ALL: [&str; 6] = [
        IP_ALLOCATED,
        ALLOCATION_FAILED,
        IP_OUTSIDE_POOL,
        SHARING_CONFLICT,
        IP_RELEASED,
        INVALID_CONFIGURATION,
    ];
}

/// The `ferrolb.io/IPAllocated` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocCondition {
    /// `status: "True"` when the Service has its addresses.
    pub allocated: bool,
    /// PascalCase reason: `IPAllocated`, `IPOutsidePool` or an allocation failure reason
    /// (`PoolExhausted`, `IPInUse`, ...).
    pub reason: String,
    /// Human sentence.
    pub message: String,
}

impl AllocCondition {
    /// `"True"` or `"False"`.
    pub fn status_str(&self) -> &'static str {
        if self.allocated { "True" } else { "False" }
    }
}

/// The status ferrolb wants a Service to have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatusWrite {
    /// The Service.
    pub service: ServiceKey,
    /// `status.loadBalancer.ingress[].ip`, primary family first (empty: no address).
    pub ingress: Vec<IpAddr>,
    /// Pool of the first address.
    pub pool: Option<String>,
    /// Our condition; `None` removes it (the Service is no longer ours).
    pub condition: Option<AllocCondition>,
}

/// An Event about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerEvent {
    /// The object the event is about.
    pub object: ObjectRef,
    /// `Warning` (true) or `Normal`.
    pub warning: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// Human sentence.
    pub message: String,
}

impl fmt::Display for ControllerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.object, self.reason, self.message)
    }
}

/// Where the controller's results go. Implemented by the Kubernetes adapter (status
/// subresources, Events) and the standalone adapter (the status file).
pub trait ControllerSink: Send {
    /// Sets a Service's `status.loadBalancer.ingress` and condition.
    fn service_status(
        &mut self,
        status: &ServiceStatusWrite,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Forgets a Service that no longer exists (the standalone file drops its entry; on
    /// Kubernetes there is nothing to write).
    fn service_deleted(
        &mut self,
        service: &ServiceKey,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Publishes an Event.
    fn event(&mut self, event: &ControllerEvent) -> impl Future<Output = Result<(), Error>> + Send;

    /// Writes the usage of every pool (the `IPAddressPool` status).
    fn pool_status(
        &mut self,
        usage: &[PoolUsage],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Writes the configuration state (valid, or the error of each invalid object).
    fn config_state(
        &mut self,
        errors: &[ConfigError],
    ) -> impl Future<Output = Result<(), Error>> + Send;
}
