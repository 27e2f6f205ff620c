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
use crate::cluster::Workloads;
use crate::links::Link;
// Defined where the events are made (status.rs); re-exported for the sources' API.
pub use crate::status::ServiceEvent;

/// One consistent view of the inputs.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every object in force, except Services and EndpointSlices (always empty here: the
    /// speaker keeps only their records, in `workloads`).
    pub resources: ClusterResources,
    /// Services and EndpointSlices as the few fields the decision reads.
    pub workloads: Workloads,
    /// Service IPs by `namespace/name` when they do not come from `Service.status`
    /// (standalone: the controller's status file). `None`: use `Service.status`.
    pub ingress: Option<BTreeMap<String, Vec<IpAddr>>>,
    /// Interfaces other speakers published (see [`crate::links`]), by node name.
    pub peer_links: BTreeMap<String, Vec<Link>>,
    /// Input problems (files that do not parse), for logs and status.
    pub errors: Vec<String>,
    /// Whether the source has delivered its first full state (readiness).
    pub synced: bool,
    /// Speaker Pods by node name (Kubernetes): membership seeds, and without membership the
    /// live set (nodes whose speaker Pod is Ready). `None`: the source does not know.
    pub speakers: Option<BTreeMap<String, SpeakerPod>>,
}

/// One speaker Pod as the API server sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpeakerPod {
    /// Pod IP (the node's IP: the speaker runs with hostNetwork).
    pub ip: Option<IpAddr>,
    /// Condition `Ready=True`.
    pub ready: bool,
}

/// Speaker Pods by node from Pod objects (those without a node are left out).
pub fn speaker_pods(pods: &[k8s_openapi::api::core::v1::Pod]) -> BTreeMap<String, SpeakerPod> {
    let mut out = BTreeMap::new();
    for p in pods {
        let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        let status = p.status.as_ref();
        let ip = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|i| i.parse().ok());
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let deleting = p.metadata.deletion_timestamp.is_some();
        out.insert(
            node,
            SpeakerPod {
                ip,
                ready: ready && !deleting,
            },
        );
    }
    out
}

/// Cluster state in, speaker state out.
pub trait ClusterSource: Send + Sync + 'static {
    /// The latest snapshot, updated on every change.
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>>;
    /// Publishes this node's `SpeakerState` (with the links annotation).
    fn publish(&self, state: SpeakerState) -> BoxFuture<'static, Result<(), Error>>;
    /// Records an event on a Service.
    fn service_event(&self, event: ServiceEvent) -> BoxFuture<'static, Result<(), Error>>;
    /// Reports the result of validating the configuration (called after the first full
    /// state, then whenever the list of errors changes; empty = valid). Kubernetes: the
    /// `ConfigurationState` `speaker-<node>` and `InvalidConfiguration` Events. By default
    /// nothing beyond the speaker's log lines (standalone mode).
    fn config_state(
        &self,
        errors: Vec<ferrolb_crds::config::ConfigError>,
    ) -> BoxFuture<'static, Result<(), Error>> {
        let _ = errors;
        Box::pin(async { Ok(()) })
    }
}
