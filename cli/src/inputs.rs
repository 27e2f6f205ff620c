//! What the report is built from, however it was gathered (Kubernetes or a standalone
//! directory): plain data, no I/O.

use std::collections::BTreeMap;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::SpeakerState;
use serde::Serialize;

/// Everything the pure report functions read.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// ferrolb objects, Services (with `status.loadBalancer.ingress` filled in), Namespaces,
    /// Nodes, EndpointSlices.
    pub resources: ClusterResources,
    /// Pool usage by pool name (the `IPAddressPool` status, or the standalone status file).
    pub pool_usage: BTreeMap<String, PoolUsage>,
    /// The allocation condition of each Service, by `namespace/name`.
    pub conditions: BTreeMap<String, Condition>,
    /// One per node that runs a speaker.
    pub speakers: Vec<SpeakerState>,
    /// Configuration errors reported by the controller and the speakers.
    pub config_errors: Vec<ConfigErrorRow>,
    /// Events, oldest first.
    pub events: Vec<EventRow>,
}

/// Addresses used and free per family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolUsage {
    pub ipv4_used: u64,
    pub ipv4_free: u64,
    pub ipv6_used: u64,
    pub ipv6_free: u64,
}

/// The `ferrolb.io/IPAllocated` condition of a Service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// One configuration error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConfigErrorRow {
    /// `controller`, `speaker-<node>`, or the file in standalone mode.
    pub source: String,
    /// `Kind namespace/name`, or `file:line`.
    pub object: String,
    /// Field path, if known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
    pub message: String,
}

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventRow {
    /// `Kind namespace/name`, e.g. `Service default/web`.
    pub object: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
}
