//! The standalone-mode status file, `DIR/.ferrolb/status.yaml`.
//!
//! In standalone mode (`--manifests DIR`, no Kubernetes) the controller writes its results here
//! instead of into object status; the speakers read it to learn which Service has which
//! address. It is the standalone equivalent of `Service.status` (a restarted controller
//! restores its assignments from it) and of the `IPAddressPool` / `ConfigurationState` status.
//!
//! The controller writes the whole file atomically (temporary file + rename), so a reader
//! never sees half of it. `generation` increases by one with every write.
//!
//! ```yaml
//! generation: 3
//! services:
//!   - namespace: default
//!     name: web-l2
//!     ingress:
//!       - ip: 192.0.2.200
//!     pool: l2-pool
//!     condition:
//!       status: "True"
//!       reason: IPAllocated
//!       message: assigned 192.0.2.200 from pool l2-pool
//! pools:
//!   - name: l2-pool
//!     assignedIPv4: 1
//!     availableIPv4: 10
//!     assignedIPv6: 0
//!     availableIPv6: 0
//! configErrors:
//!   - file: config.yaml
//!     line: 12
//!     message: "invalid type: string \"yes\", expected a boolean"
//! configWarnings:
//!   - file: pools.yaml
//!     line: 1
//!     field: spec.autoAsign
//!     message: "pools.yaml:1: IPAddressPool \"prod\": unknown field spec.autoAsign (ignored); did you mean spec.autoAssign?"
//! events:
//!   - time: 2026-11-23T12:00:00Z
//!     object: Service default/web-l2
//!     type: Normal
//!     reason: IPAllocated
//!     message: assigned 192.0.2.200 from pool l2-pool
//! ```
//!
//! Within one Service entry `name:` comes before the `ip:` lines (scripts rely on it).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Path of the status file relative to the manifests directory.
pub const STATUS_FILE: &str = ".ferrolb/status.yaml";

/// Most recent events kept in [`StandaloneStatus::events`].
pub const MAX_EVENTS: usize = 100;

/// The whole status file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StandaloneStatus {
    /// Increases by one with every write of the file.
    #[serde(default)]
    pub generation: u64,
    /// Every `type: LoadBalancer` Service the controller handles, sorted by namespace/name.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// Usage of every pool, sorted by name.
    #[serde(default)]
    pub pools: Vec<PoolEntry>,
    /// Files that do not parse and objects that are invalid (ignored, or kept at their last
    /// valid version).
    #[serde(default)]
    pub config_errors: Vec<ConfigErrorEntry>,
    /// Fields of loaded documents that ferrolb does not know (typos, with a "did you mean"),
    /// ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_warnings: Vec<ConfigErrorEntry>,
    /// The last [`MAX_EVENTS`] events, oldest first.
    #[serde(default)]
    pub events: Vec<EventEntry>,
}

impl StandaloneStatus {
    /// The entry of one Service.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        self.services
            .iter()
            .find(|s| s.namespace == namespace && s.name == name)
    }

    /// The entry of one pool.
    pub fn pool(&self, name: &str) -> Option<&PoolEntry> {
        self.pools.iter().find(|p| p.name == name)
    }
}

/// One Service: its `status.loadBalancer.ingress` and the `ferrolb.io/IPAllocated` condition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    /// Namespace (`default` when the manifest has none).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Assigned addresses, primary family first; empty while allocation fails.
    #[serde(default)]
    pub ingress: Vec<IngressEntry>,
    /// Pool of the first address; absent when the address is outside every pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Allocation condition.
    pub condition: ConditionEntry,
}

impl ServiceEntry {
    /// The assigned addresses.
    pub fn ips(&self) -> Vec<IpAddr> {
        self.ingress.iter().map(|i| i.ip).collect()
    }
}

/// One ingress point (`status.loadBalancer.ingress[]`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IngressEntry {
    /// The address.
    pub ip: IpAddr,
}

/// The `ferrolb.io/IPAllocated` condition of a Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConditionEntry {
    /// `"True"` when the Service has its addresses, else `"False"`.
    pub status: String,
    /// PascalCase reason, e.g. `IPAllocated`, `PoolExhausted`.
    pub reason: String,
    /// Human sentence.
    pub message: String,
}

/// Usage of one pool (the `IPAddressPool` status).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolEntry {
    /// Pool name.
    pub name: String,
    /// IPv4 addresses held by Services.
    #[serde(rename = "assignedIPv4")]
    pub assigned_ipv4: u64,
    /// IPv4 addresses still free.
    #[serde(rename = "availableIPv4")]
    pub available_ipv4: u64,
    /// IPv6 addresses held by Services.
    #[serde(rename = "assignedIPv6")]
    pub assigned_ipv6: u64,
    /// IPv6 addresses still free (saturating at 2^63−1, as in `IPAddressPool.status`).
    #[serde(rename = "availableIPv6")]
    pub available_ipv6: u64,
}

/// One configuration error: a file that does not parse (`file` + `line`) or an invalid object
/// (`kind` + `namespace` + `name` + `field`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigErrorEntry {
    /// File name within the manifests directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Kind of the invalid object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace of the invalid object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the invalid object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    /// Field path, e.g. `spec.addresses[2]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The whole error as one sentence.
    pub message: String,
    /// True when the last good version (of the file or object) stays in force.
    #[serde(default)]
    pub kept_previous: bool,
}

/// One event (the standalone equivalent of a Kubernetes Event).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct EventEntry {
    /// RFC 3339 UTC time.
    pub time: String,
    /// `Kind namespace/name` of the object, e.g. `Service default/web`.
    pub object: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// PascalCase reason.
    pub reason: String,
    /// Human sentence.
    pub message: String,
}
