//! Where cluster state comes from and where the speaker's state goes: the standalone
//! directory or the Kubernetes API, behind one trait.

pub mod kubernetes;
pub mod standalone;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::SpeakerState;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::Error;
use crate::links::Link;

/// One consistent view of the inputs.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every object in force.
    pub resources: ClusterResources,
    /// Service IPs by `namespace/name` when they do not come from `Service.status`
    /// (standalone: the controller's status file). `None`: use `Service.status`.
    pub ingress: Option<BTreeMap<String, Vec<IpAddr>>>,
    /// Interfaces other speakers published (see [`crate::links`]), by node name.
    pub peer_links: BTreeMap<String, Vec<Link>>,
    /// Input problems (files that do not parse), for logs and status.
    pub errors: Vec<String>,
    /// Whether the source has delivered its first full state (readiness).
    pub synced: bool,
}

/// An event on a Service, emitted only by the node it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    /// `namespace/name`.
    pub service: String,
    /// PascalCase, e.g. `L2Announced`.
    pub reason: String,
    pub message: String,
}

/// Cluster state in, speaker state out.
pub trait ClusterSource: Send + Sync + 'static {
    /// The latest snapshot, updated on every change.
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>>;
    /// Publishes this node's `SpeakerState` (with the links annotation).
    fn publish(&self, state: SpeakerState) -> BoxFuture<'static, Result<(), Error>>;
    /// Records an event on a Service.
    fn service_event(&self, event: ServiceEvent) -> BoxFuture<'static, Result<(), Error>>;
}
