//! The controller's Prometheus metrics (served on `/metrics` by `ferrolb-telemetry`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::Error;
use crate::allocator::{AllocError, PoolUsage, ServiceKey};
use crate::sink::ControllerEvent;

/// `pool` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    /// Pool name.
    pub pool: String,
}

/// `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// PascalCase reason.
    pub reason: String,
}

/// `pool` and `family` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolFamilyLabel {
    /// Pool name.
    pub pool: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// `error` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    /// Error label (`Kube`, `Io`, ...).
    pub error: String,
}

/// Every metric of the controller. Cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `ferrolb_controller_addresses_in_use{pool}`.
    pub addresses_in_use: Family<PoolLabel, Gauge>,
    /// `ferrolb_controller_addresses_total{pool}` (saturating).
    pub addresses_total: Family<PoolLabel, Gauge>,
    /// `ferrolb_controller_allocation_failures_total{reason}`.
    pub allocation_failures: Family<ReasonLabel, Counter>,
    /// `ferrolb_controller_reconcile_duration_seconds`.
    pub reconcile_duration: Histogram,
    /// `ferrolb_controller_reconcile_errors_total{error}`.
    pub reconcile_errors: Family<ErrorLabel, Counter>,
    /// `ferrolb_controller_config_errors`: invalid objects (and files) now.
    pub config_errors: Gauge,
    /// `ferrolb_controller_addresses_outside_pools`: assigned addresses in no pool.
    pub outside_pools: Gauge,
    /// `ferrolb_controller_leader`: 1 while this replica is the active one.
    pub leader: Gauge,
    /// `ferrolb_controller_addresses_available{pool,family}`: still free for automatic
    /// allocation, saturating at 2^63−1 like `IPAddressPool.status` (a /64 does not fit).
    pub addresses_available: Family<PoolFamilyLabel, Gauge>,
    /// `ferrolb_controller_services_pending{reason}`: Services of ours without their
    /// addresses now, by allocation failure reason.
    pub services_pending: Family<ReasonLabel, Gauge>,
    /// `ferrolb_controller_events_total{reason}`: Events published, by reason
    /// (`InvalidConfiguration` counts configuration errors found).
    pub events: Family<ReasonLabel, Counter>,
    pending: Arc<Mutex<BTreeMap<ServiceKey, &'static str>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            addresses_in_use: Family::default(),
            addresses_total: Family::default(),
            allocation_failures: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            reconcile_errors: Family::default(),
            config_errors: Gauge::default(),
            outside_pools: Gauge::default(),
            leader: Gauge::default(),
            addresses_available: Family::default(),
            services_pending: Family::default(),
            events: Family::default(),
            pending: Arc::default(),
        }
    }
}

impl Metrics {
    /// New metrics, registered in `registry` under the `ferrolb_controller` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("ferrolb_controller");
        r.register(
            "addresses_in_use",
            "Addresses assigned to Services, per pool",
            m.addresses_in_use.clone(),
        );
        r.register(
            "addresses_total",
            "Addresses in the pool (both families, saturating)",
            m.addresses_total.clone(),
        );
        r.register(
            "allocation_failures",
            "Allocation failures by reason",
            m.allocation_failures.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time to reconcile one Service",
            m.reconcile_duration.clone(),
        );
        r.register(
            "reconcile_errors",
            "Reconcile errors by error label",
            m.reconcile_errors.clone(),
        );
        r.register(
            "config_errors",
            "Invalid configuration objects and files",
            m.config_errors.clone(),
        );
        r.register(
            "addresses_outside_pools",
            "Assigned addresses that are in no pool (kept, never moved)",
            m.outside_pools.clone(),
        );
        r.register(
            "leader",
            "1 while this replica is the active controller",
            m.leader.clone(),
        );
        r.register(
            "addresses_available",
            "Addresses still free for automatic allocation, per pool and family (saturating at 2^63-1)",
            m.addresses_available.clone(),
        );
        r.register(
            "services_pending",
            "LoadBalancer Services of ours without their addresses, by failure reason",
            m.services_pending.clone(),
        );
        r.register(
            "events",
            "Events published, by reason (InvalidConfiguration: configuration errors found)",
            m.events.clone(),
        );
        for reason in AllocError::REASONS {
            let l = ReasonLabel {
                reason: reason.to_string(),
            };
            drop(m.allocation_failures.get_or_create(&l));
            drop(m.services_pending.get_or_create(&l));
        }
        // Every Error::reason() label (counted from zero).
        for error in Error::REASONS {
            drop(m.reconcile_errors.get_or_create(&ErrorLabel {
                error: error.to_string(),
            }));
        }
        for reason in crate::sink::reasons::ALL {
            drop(m.events.get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            }));
        }
        m
    }

    /// Records the outcome of reconciling `key` (`failure`: the allocation failure reason,
    /// `None` when it has its addresses, is deleted or is not ours) and updates
    /// `services_pending`.
    pub fn service_outcome(&self, key: &ServiceKey, failure: Option<&'static str>) {
        let mut pending = self.pending.lock().expect("pending lock");
        let changed = match failure {
            Some(reason) => pending.insert(key.clone(), reason) != Some(reason),
            None => pending.remove(key).is_some(),
        };
        if changed {
            let mut counts: BTreeMap<&str, i64> =
                AllocError::REASONS.iter().map(|r| (*r, 0)).collect();
            for reason in pending.values() {
                *counts.entry(reason).or_default() += 1;
            }
            for (reason, n) in counts {
                self.services_pending
                    .get_or_create(&ReasonLabel {
                        reason: reason.to_string(),
                    })
                    .set(n);
            }
        }
    }

    /// Counts published Events by reason.
    pub fn events(&self, events: &[ControllerEvent]) {
        for e in events {
            self.events
                .get_or_create(&ReasonLabel {
                    reason: e.reason.to_string(),
                })
                .inc();
        }
    }

    /// Sets the per-pool gauges (pools that disappeared are dropped).
    pub fn set_usage(&self, usage: &[PoolUsage]) {
        self.addresses_in_use.clear();
        self.addresses_total.clear();
        self.addresses_available.clear();
        for u in usage {
            let l = PoolLabel {
                pool: u.pool.clone(),
            };
            for (family, n) in [("ipv4", u.available_v4), ("ipv6", u.available_v6)] {
                self.addresses_available
                    .get_or_create(&PoolFamilyLabel {
                        pool: u.pool.clone(),
                        family: family.to_string(),
                    })
                    .set(saturate(n));
            }
            self.addresses_in_use
                .get_or_create(&l)
                .set(saturate(u.in_use()));
            self.addresses_total
                .get_or_create(&l)
                .set(saturate(u.total()));
        }
    }

    /// Counts an allocation failure.
    pub fn failure(&self, reason: &str) {
        self.allocation_failures
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a reconcile error.
    pub fn error(&self, label: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabel {
                error: label.to_string(),
            })
            .inc();
    }
}

/// A count as a gauge value and as status counts: saturating at 2^63−1 (`i64::MAX`).
pub fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
