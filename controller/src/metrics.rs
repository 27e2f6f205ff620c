//! The controller's Prometheus metrics (served on `/metrics` by `ferrolb-telemetry`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::allocator::{AllocError, PoolUsage};

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
        for reason in AllocError::REASONS {
            drop(m.allocation_failures.get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            }));
        }
        m
    }

    /// Sets the per-pool gauges (pools that disappeared are dropped).
    pub fn set_usage(&self, usage: &[PoolUsage]) {
        self.addresses_in_use.clear();
        self.addresses_total.clear();
        for u in usage {
            let l = PoolLabel {
                pool: u.pool.clone(),
            };
            self.addresses_in_use
                .get_or_create(&l)
                .set(i64::try_from(u.in_use()).unwrap_or(i64::MAX));
            self.addresses_total
                .get_or_create(&l)
                .set(i64::try_from(u.total()).unwrap_or(i64::MAX));
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
