//! The crate's error type (one `thiserror` enum) and the allocator's typed failures.
//!
//! An allocation failure is not an [`Error`]: it is a decision, reported on the Service
//! (condition, Event, `allocation failures by reason` metric) with [`AllocError::reason`];
//! a pool the allocator refuses is reported as a configuration error. [`Error`] is for what
//! failed to happen (API requests, files, the Lease).

use std::net::IpAddr;

use thiserror::Error;

use crate::allocator::{Family, FamilyPolicy, Port, ServiceKey};

/// Errors of `ferrolb-controller`.
#[derive(Debug, Error)]
pub enum Error {
    /// The standalone manifests directory cannot be watched.
    #[error(transparent)]
    Cluster(#[from] ferrolb_cluster::Error),
    /// Reading or writing a file (standalone mode) failed.
    #[error("failed to {what} {}", path.display())]
    Io {
        /// What was being attempted, e.g. "write the status file".
        what: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding the standalone status file failed.
    #[error("failed to encode the standalone status file")]
    EncodeStatus(#[source] serde_saphyr::SerializeError),
    /// A request to the Kubernetes API server failed.
    #[error("failed to {what}")]
    Kube {
        /// What was being attempted, e.g. "patch the status of Service default/web".
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// This replica lost the leader Lease (its leader work stops and it goes back to standby
    /// in-process; counted as a reconcile error, never returned).
    #[error("lost the leader Lease")]
    LeaseLost,
    /// Publishing an Event failed.
    #[error("failed to publish an Event about {object}")]
    Event {
        /// The object.
        object: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Short PascalCase reason for Events and the failure metric's label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Io { .. } => "Io",
            Error::Cluster(_) => "Cluster",
            Error::EncodeStatus(_) => "EncodeStatus",
            Error::Kube { .. } => "Kube",
            Error::Event { .. } => "Event",
            Error::LeaseLost => "LeaseLost",
        }
    }

    /// Every reason [`reason`](Self::reason) can return (to pre-register metric labels).
    pub const REASONS: [&'static str; 6] = [
        "Io",
        "Cluster",
        "EncodeStatus",
        "Kube",
        "Event",
        "LeaseLost",
    ];
}

/// Why an allocation failed. `Display` is the user-facing sentence (Event message);
/// [`AllocError::reason`] is the machine label.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AllocError {
    /// Every candidate pool is full for the family.
    #[error("{} no free {family} address", pool_list(pools))]
    PoolExhausted {
        /// The pools that were tried, in order.
        pools: Vec<String>,
        /// The family that ran out.
        family: Family,
    },
    /// A requested address is held by another Service that cannot share it.
    #[error("requested {ip} is held by {holder}")]
    IpInUse {
        /// The address.
        ip: IpAddr,
        /// One Service holding it.
        holder: ServiceKey,
    },
    /// No pool may serve this Service.
    #[error("{}", no_pool_serves(cause))]
    NoEligiblePool {
        /// What excluded the pools.
        cause: Ineligible,
    },
    /// The pinned pool, or the pool of a requested address, does not serve this Service.
    #[error("pool {pool} does not serve {cause}")]
    PoolNotEligible {
        /// The pool.
        pool: String,
        /// What excluded it.
        cause: Ineligible,
    },
    /// A requested address is in no pool.
    #[error("{ip} is not in any pool")]
    NotInPool {
        /// The address.
        ip: IpAddr,
    },
    /// A requested address is not in the pinned pool.
    #[error("requested {ip} is not in pool {pool}")]
    NotInRequestedPool {
        /// The address.
        ip: IpAddr,
        /// The pinned pool.
        pool: String,
    },
    /// Two requested addresses are in different pools.
    #[error("requested {a} (pool {pool_a}) and {b} (pool {pool_b}) are not in one pool")]
    SplitPools {
        /// First address.
        a: IpAddr,
        /// Its pool.
        pool_a: String,
        /// Second address.
        b: IpAddr,
        /// Its pool.
        pool_b: String,
    },
    /// The pinned pool does not exist.
    #[error("pool {pool} does not exist")]
    UnknownPool {
        /// The pool name.
        pool: String,
    },
    /// Services with the same sharing key cannot share the address.
    #[error("sharing key {key}: {conflict}")]
    SharingConflict {
        /// The key.
        key: String,
        /// What collides.
        conflict: SharingConflict,
    },
    /// The family (or both families) cannot be served.
    #[error("{policy}: {detail}")]
    FamilyUnavailable {
        /// The Service's policy.
        policy: FamilyPolicy,
        /// What is missing.
        detail: FamilyGap,
    },
    /// The request contradicts itself.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Two pools (or two ranges of one pool) overlap.
    #[error("pools {a} and {b} overlap at {ip}")]
    PoolOverlap {
        /// First pool.
        a: String,
        /// Second pool (may equal `a`).
        b: String,
        /// First shared address.
        ip: IpAddr,
    },
    /// `avoidBuggyIPs` on an IPv4 space larger than a /8 (its free space keeps one interval
    /// per /24).
    #[error(
        "pool {pool}: avoidBuggyIPs is supported on at most 16777216 IPv4 addresses (a /8), the pool has {addresses}"
    )]
    AvoidBuggyTooLarge {
        /// The pool.
        pool: String,
        /// Its IPv4 address count.
        addresses: u128,
    },
    /// Two pools have the same name.
    #[error("pool {pool} is defined twice")]
    DuplicatePool {
        /// The name.
        pool: String,
    },
}

fn no_pool_serves(cause: &Ineligible) -> String {
    match cause {
        Ineligible::NoPools => "no pool is configured".to_owned(),
        Ineligible::NoAutoAssign => "no pool has autoAssign enabled".to_owned(),
        other => format!("no pool serves {other}"),
    }
}

fn pool_list(pools: &[String]) -> String {
    match pools {
        [one] => format!("pool {one} has"),
        many => format!("pools {} have", many.join(", ")),
    }
}

impl AllocError {
    /// Short PascalCase reason for Events and the `allocation failures by reason` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            AllocError::PoolExhausted { .. } => "PoolExhausted",
            AllocError::IpInUse { .. } => "IPInUse",
            AllocError::NoEligiblePool { .. } | AllocError::PoolNotEligible { .. } => {
                "NoEligiblePool"
            }
            AllocError::NotInPool { .. }
            | AllocError::NotInRequestedPool { .. }
            | AllocError::SplitPools { .. } => "NotInPool",
            AllocError::UnknownPool { .. } => "UnknownPool",
            AllocError::SharingConflict { .. } => "SharingConflict",
            AllocError::FamilyUnavailable { .. } => "FamilyUnavailable",
            AllocError::InvalidRequest(_) => "InvalidRequest",
            AllocError::PoolOverlap { .. }
            | AllocError::AvoidBuggyTooLarge { .. }
            | AllocError::DuplicatePool { .. } => "InvalidPools",
        }
    }

    /// Every reason [`reason`](Self::reason) can return (to pre-register metric labels).
    pub const REASONS: [&'static str; 9] = [
        "PoolExhausted",
        "IPInUse",
        "NoEligiblePool",
        "NotInPool",
        "UnknownPool",
        "SharingConflict",
        "FamilyUnavailable",
        "InvalidRequest",
        "InvalidPools",
    ];
}

/// Why a pool does not serve a Service. Renders as the object of "no pool serves ..." /
/// "pool X does not serve ...".
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Ineligible {
    /// No pool is configured at all.
    #[error("any Service (no pool is configured)")]
    NoPools,
    /// Every pool has `autoAssign: false` and nothing was requested explicitly.
    #[error("automatic allocation (autoAssign is false)")]
    NoAutoAssign,
    /// `serviceAllocation.namespaces` / `namespaceSelectors` exclude the namespace.
    #[error("namespace {0}")]
    Namespace(String),
    /// `serviceAllocation.serviceSelectors` do not match the Service's labels.
    #[error("Service {0} (its labels match no serviceSelectors)")]
    ServiceSelectors(ServiceKey),
}

/// What a dual-stack or single-family request is missing.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FamilyGap {
    /// No eligible pool has addresses of this family.
    #[error("no eligible pool has {0} addresses")]
    NoPoolForFamily(Family),
    /// No single eligible pool has both families.
    #[error("no single pool serves both IPv4 and IPv6")]
    NoDualStackPool,
    /// Requested addresses do not cover both families.
    #[error("requested addresses do not include both IPv4 and IPv6")]
    RequestedSingleFamily,
}

/// What prevents two Services with the same sharing key from sharing an address.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SharingConflict {
    /// Both use the same protocol+port.
    #[error("port {port} already used by {holder}")]
    Port {
        /// The port.
        port: Port,
        /// The Service already using it.
        holder: ServiceKey,
    },
    /// `externalTrafficPolicy` or (for `Local`) the pod selector differs.
    #[error("{holder} has a different externalTrafficPolicy or Local selector")]
    Backend {
        /// The Service already on the address.
        holder: ServiceKey,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reasons_are_listed_once_for_the_metric_labels() {
        let io = || std::io::Error::other("test");
        let errors = [
            Error::Cluster(ferrolb_cluster::Error::ReadDir {
                path: "/manifests".into(),
                source: io(),
            }),
            Error::Io {
                what: "write the status file",
                path: "/manifests/.ferrolb/status.yaml".into(),
                source: io(),
            },
            Error::LeaseLost,
        ];
        for e in &errors {
            assert!(Error::REASONS.contains(&e.reason()), "{}", e.reason());
        }
        let mut sorted = Error::REASONS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), Error::REASONS.len(), "no reason twice");
    }
}
