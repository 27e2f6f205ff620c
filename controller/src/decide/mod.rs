//! The controller's decisions, without I/O: [`Core`] holds the validated config and the
//! allocator, takes Services and configuration, and returns what to write (Service status,
//! condition, Events, pool usage). Both adapters (Kubernetes and standalone) drive it the
//! same way:
//!
//! 1. [`Core::apply_config`] with the pools (before anything else);
//! 2. [`Core::restore`] with every assignment already recorded (Service status, or the
//!    standalone status file) — before any new allocation, so IPs never move;
//! 3. [`Core::reconcile`] for each Service, [`Core::release`] for each deleted one;
//! 4. [`Core::apply_config`] again on every configuration change (never moves an address;
//!    addresses left outside every pool are reported), then [`Core::reconcile`] for the
//!    Services still pending.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::config::{Config, ConfigError, Kind, Labels, ObjectRef};
use ferrolb_crds::service::ServiceRequest;
use ferrolb_crds::v1alpha1::ObjectError;
use k8s_openapi::api::core::v1::Service;

use crate::allocator::{
    AllocError, Allocator, Assignment, OutsidePool, Pool, PoolUsage, ServiceKey,
};
use crate::sink::{AllocCondition, CONDITION_TYPE, ControllerEvent, ServiceStatusWrite, reasons};

/// What a Service currently shows (its status on Kubernetes, its entry in the standalone
/// status file): compared with the decision so that nothing is rewritten and no Event is
/// repeated when nothing changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentStatus {
    /// `status.loadBalancer.ingress[].ip`.
    pub ingress: Vec<IpAddr>,
    /// Our condition, if the Service has it.
    pub condition: Option<AllocCondition>,
}

impl CurrentStatus {
    /// Reads `status.loadBalancer.ingress` and the `ferrolb.io/IPAllocated` condition.
    pub fn of_service(svc: &Service) -> Self {
        let status = svc.status.as_ref();
        let ingress = status
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|list| {
                list.iter()
                    .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        let condition = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == CONDITION_TYPE))
            .map(|c| AllocCondition {
                allocated: c.status == "True",
                reason: c.reason.clone(),
                message: c.message.clone(),
            });
        CurrentStatus { ingress, condition }
    }
}

/// Outcome of [`Core::reconcile`] for one Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceDecision {
    /// The status to write; `None` when the current one is already right.
    pub write: Option<ServiceStatusWrite>,
    /// Events to publish.
    pub events: Vec<ControllerEvent>,
    /// The allocation failure reason (metric label), if allocation failed.
    pub failure: Option<&'static str>,
    /// Whether ferrolb handles this Service.
    pub ours: bool,
}

/// Outcome of [`Core::apply_config`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDecision {
    /// Every error of the configuration (invalid objects, in force or not).
    pub errors: Vec<ConfigError>,
    /// Whether the error list differs from the previous one (rewrite the configuration state).
    pub errors_changed: bool,
    /// Whether the pools changed (re-queue pending Services, rewrite pool status).
    pub pools_changed: bool,
    /// Events: one per new configuration error, one per address newly outside every pool.
    pub events: Vec<ControllerEvent>,
    /// Addresses outside every pool now.
    pub outside: Vec<OutsidePool>,
}

/// The controller's state: last good config + allocator. See the module documentation.
#[derive(Debug, Default)]
pub struct Core {
    allocator: Allocator,
    lb_class_only: bool,
    config: Config,
    errors: Vec<ConfigError>,
    /// Pools the allocator refused (reported as configuration errors).
    pool_rejections: Vec<ConfigError>,
    namespace_labels: BTreeMap<String, Labels>,
    outside: BTreeSet<OutsidePool>,
    /// Errors an earlier run already reported (see [`Core::assume_reported`]).
    reported: Vec<ObjectError>,
}

impl Core {
    /// A controller state with no pools. `lb_class_only`: handle only Services whose
    /// `loadBalancerClass` is `ferrolb.io/lb` (else also those without a class).
    pub fn new(lb_class_only: bool) -> Self {
        Self {
            lb_class_only,
            ..Self::default()
        }
    }

    /// The allocator (read-only).
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Configuration errors an earlier run (the previous leader) already reported, as its
    /// `ConfigurationState` lists them: the next [`Self::apply_config`] publishes no
    /// `InvalidConfiguration` Event for those still present, so a leader change or restart
    /// does not repeat them. (`keptPrevious` is ignored in the comparison: a new leader has
    /// no last good version of an object that was invalid before it started.)
    pub fn assume_reported(&mut self, errors: Vec<ObjectError>) {
        self.reported = errors;
    }

    /// Validates the configuration (an invalid object keeps its last good version) and hands
    /// the pools to the allocator. Never moves an address.
    pub fn apply_config(&mut self, res: &ClusterResources) -> ConfigDecision {
        let outcome = Config::build(res, Some(&self.config));
        self.namespace_labels = res
            .namespaces
            .iter()
            .filter_map(|ns| {
                Some((
                    ns.metadata.name.clone()?,
                    ns.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect();
        let mut decision = ConfigDecision {
            pools_changed: outcome.config.pools != self.config.pools,
            ..ConfigDecision::default()
        };
        if decision.pools_changed {
            self.pool_rejections = self.set_pools(&outcome.config);
        }
        let mut errors = outcome.errors;
        errors.extend(self.pool_rejections.iter().cloned());
        let old_errors: BTreeSet<String> = self.errors.iter().map(|e| e.to_string()).collect();
        let reported = std::mem::take(&mut self.reported);
        for e in &errors {
            if !old_errors.contains(&e.to_string()) && !reported_before(&reported, e) {
                decision.events.push(ControllerEvent {
                    object: e.object.clone(),
                    warning: true,
                    reason: reasons::INVALID_CONFIGURATION,
                    message: e.to_string(),
                });
            }
        }
        decision.errors_changed = errors != self.errors;
        decision.errors = errors.clone();
        self.errors = errors;
        self.config = outcome.config;
        decision.events.extend(self.note_outside());
        decision.outside = self.outside.iter().cloned().collect();
        decision
    }

    /// Hands the pools to the allocator. The config function has validated them (ranges,
    /// overlaps, unique names), so the allocator refuses a pool only for a limit of its own
    /// (`avoidBuggyIPs` on more than a /8): that pool is left out and reported, the rest apply.
    fn set_pools(&mut self, config: &Config) -> Vec<ConfigError> {
        let all: Vec<Pool> = config.pools.values().map(to_alloc_pool).collect();
        if self.allocator.set_pools(all.clone()).is_ok() {
            return Vec::new();
        }
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        for (cfg, pool) in config.pools.values().zip(all) {
            let mut trial = accepted.clone();
            trial.push(pool.clone());
            // `set_pools` changes nothing when it fails, so trials are safe.
            match self.allocator.set_pools(trial) {
                Ok(_) => accepted.push(pool),
                Err(e) => {
                    let me = ObjectRef {
                        kind: Kind::IPAddressPool,
                        namespace: cfg.namespace.clone(),
                        name: cfg.name.clone(),
                    };
                    rejected.push(me.error("spec", None, e.to_string()));
                }
            }
        }
        if let Err(e) = self.allocator.set_pools(accepted) {
            // Each pool was accepted together with the ones before it; this cannot fail.
            tracing::error!(error = %e, "accepted pools rejected as a whole");
        }
        rejected
    }

    /// Events for addresses newly outside every pool; forgets those back inside.
    fn note_outside(&mut self) -> Vec<ControllerEvent> {
        let now: BTreeSet<OutsidePool> = self.allocator.outside_pools().into_iter().collect();
        let events = now
            .difference(&self.outside)
            .map(|o| ControllerEvent {
                object: service_ref(&o.service),
                warning: true,
                reason: reasons::IP_OUTSIDE_POOL,
                message: format!(
                    "{} is outside every IPAddressPool; it stays assigned (addresses never move)",
                    o.ip
                ),
            })
            .collect();
        self.outside = now;
        events
    }

    /// Restores the addresses Services already have (from `status.loadBalancer.ingress`),
    /// before any allocation. Services that are not ours are skipped. Returns Events for
    /// addresses outside every pool and for conflicting records.
    pub fn restore(&mut self, services: &[Service]) -> Vec<ControllerEvent> {
        let list = services
            .iter()
            .filter_map(|svc| self.assignment(svc, CurrentStatus::of_service(svc).ingress))
            .collect();
        self.restore_assignments(list)
    }

    /// The assignment record of a Service holding `ips` (for [`Self::restore_assignments`]);
    /// `None` when the Service is not ours or holds nothing. A Service whose annotations do
    /// not parse is still restored (without sharing or pool pin): its address must not be
    /// handed to another Service.
    pub fn assignment(&self, svc: &Service, ips: Vec<IpAddr>) -> Option<Assignment> {
        if ips.is_empty() {
            return None;
        }
        match ServiceRequest::from_service(svc) {
            Ok(req) => {
                if !req.is_ours(self.lb_class_only) {
                    return None;
                }
                let areq = self.to_request(&req);
                Some(Assignment {
                    service: areq.service,
                    ips,
                    sharing: areq.sharing,
                    pool: areq.pool,
                })
            }
            Err(_) if self.is_ours_raw(svc) => Some(Assignment {
                service: ServiceKey::new(
                    svc.metadata
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                    svc.metadata.name.clone().unwrap_or_default(),
                ),
                ips,
                sharing: None,
                pool: None,
            }),
            Err(_) => None,
        }
    }

    /// Restores explicit assignment records (the standalone status file).
    pub fn restore_assignments(&mut self, list: Vec<Assignment>) -> Vec<ControllerEvent> {
        let report = self.allocator.restore(list);
        let mut events: Vec<ControllerEvent> = report
            .conflicts
            .into_iter()
            .map(|(svc, e)| ControllerEvent {
                object: service_ref(&svc),
                warning: true,
                reason: failure_event_reason(&e),
                message: format!("recorded address not restored: {e}"),
            })
            .collect();
        events.extend(self.note_outside());
        events
    }

    /// Decides the status of one Service (allocating or releasing as needed).
    pub fn reconcile(&mut self, svc: &Service, current: &CurrentStatus) -> ServiceDecision {
        let key = ServiceKey::new(
            svc.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        let req = match ServiceRequest::from_service(svc) {
            Ok(req) => req,
            Err(_) if !self.is_ours_raw(svc) => return self.not_ours(&key, current),
            Err(errors) => return self.invalid_request(key, &errors, current),
        };
        if !req.is_ours(self.lb_class_only) {
            return self.not_ours(&key, current);
        }
        let areq = self.to_request(&req);
        match self.allocator.allocate(&areq) {
            Ok(a) => {
                let condition = match &a.pool {
                    Some(pool) => AllocCondition {
                        allocated: true,
                        reason: reasons::IP_ALLOCATED.into(),
                        message: format!("assigned {} from pool {pool}", join_ips(&a.ips)),
                    },
                    None => AllocCondition {
                        allocated: true,
                        reason: reasons::IP_OUTSIDE_POOL.into(),
                        message: format!(
                            "kept {}, which is outside every IPAddressPool",
                            join_ips(&a.ips)
                        ),
                    },
                };
                self.finish(key, a.ips, a.pool, condition, current, None)
            }
            Err(e) => self.allocation_failed(key, &e, current),
        }
    }

    /// A Service of ours whose annotations or fields do not parse: it keeps what it has.
    fn invalid_request(
        &mut self,
        key: ServiceKey,
        errors: &[ConfigError],
        current: &CurrentStatus,
    ) -> ServiceDecision {
        let message = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let kept = self.allocator.assigned(&key).map(<[IpAddr]>::to_vec);
        let ingress = kept.unwrap_or_else(|| current.ingress.clone());
        let condition = AllocCondition {
            allocated: false,
            reason: "InvalidRequest".into(),
            message,
        };
        self.finish(
            key,
            ingress,
            None,
            condition,
            current,
            Some("InvalidRequest"),
        )
    }

    /// The allocator refused: the Service keeps what it has, and says why.
    fn allocation_failed(
        &mut self,
        key: ServiceKey,
        e: &AllocError,
        current: &CurrentStatus,
    ) -> ServiceDecision {
        let ingress = self
            .allocator
            .assigned(&key)
            .map(<[IpAddr]>::to_vec)
            .unwrap_or_default();
        let pool = ingress
            .first()
            .and_then(|ip| self.allocator.pool_of(*ip))
            .map(str::to_string);
        let condition = AllocCondition {
            allocated: !ingress.is_empty(),
            reason: e.reason().into(),
            message: e.to_string(),
        };
        let mut d = self.finish(key, ingress, pool, condition, current, Some(e.reason()));
        // The event reason distinguishes sharing conflicts from the rest.
        for ev in &mut d.events {
            if ev.reason == reasons::ALLOCATION_FAILED {
                ev.reason = failure_event_reason(e);
            }
        }
        d
    }

    /// Releases the addresses of a deleted Service. Returns the addresses freed.
    pub fn release(&mut self, service: &ServiceKey) -> Vec<IpAddr> {
        let freed = self.allocator.release(service);
        self.outside.retain(|o| &o.service != service);
        freed
    }

    /// Usage of every pool, sorted by name.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        self.allocator.usage()
    }

    /// Whether ferrolb handles the Service, looking only at `type` and `loadBalancerClass`
    /// (for Services whose annotations do not parse).
    fn is_ours_raw(&self, svc: &Service) -> bool {
        let spec = svc.spec.as_ref();
        let lb = spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
        let class = spec.and_then(|s| s.load_balancer_class.as_deref());
        lb && match class {
            None => !self.lb_class_only,
            Some(c) => c == ferrolb_crds::service::LB_CLASS,
        }
    }

    fn not_ours(&mut self, key: &ServiceKey, current: &CurrentStatus) -> ServiceDecision {
        let freed = self.release(key);
        let had = !freed.is_empty() || self.allocator.assigned(key).is_some();
        let mut d = ServiceDecision::default();
        // Only undo what we wrote: our condition marks the status as ours.
        if had || current.condition.is_some() {
            let ingress = if current.condition.is_some() || had {
                Vec::new()
            } else {
                current.ingress.clone()
            };
            d.write = Some(ServiceStatusWrite {
                service: key.clone(),
                ingress,
                pool: None,
                condition: None,
            });
            if had || !current.ingress.is_empty() {
                d.events.push(ControllerEvent {
                    object: service_ref(key),
                    warning: false,
                    reason: reasons::IP_RELEASED,
                    message: format!(
                        "released {}: not a LoadBalancer Service of class {} any more",
                        join_ips(if freed.is_empty() {
                            &current.ingress
                        } else {
                            &freed
                        }),
                        ferrolb_crds::service::LB_CLASS
                    ),
                });
            }
        }
        d
    }

    fn finish(
        &self,
        key: ServiceKey,
        ingress: Vec<IpAddr>,
        pool: Option<String>,
        condition: AllocCondition,
        current: &CurrentStatus,
        failure: Option<&'static str>,
    ) -> ServiceDecision {
        let mut d = ServiceDecision {
            ours: true,
            failure,
            ..ServiceDecision::default()
        };
        let ingress_changed = ingress != current.ingress;
        let condition_changed = current.condition.as_ref() != Some(&condition);
        if ingress_changed && !ingress.is_empty() && failure.is_none() {
            d.events.push(ControllerEvent {
                object: service_ref(&key),
                warning: false,
                reason: reasons::IP_ALLOCATED,
                message: condition.message.clone(),
            });
        }
        if condition_changed && failure.is_some() {
            d.events.push(ControllerEvent {
                object: service_ref(&key),
                warning: true,
                reason: reasons::ALLOCATION_FAILED,
                message: condition.message.clone(),
            });
        }
        if ingress_changed || condition_changed {
            d.write = Some(ServiceStatusWrite {
                service: key,
                ingress,
                pool,
                condition: Some(condition),
            });
        }
        d
    }
}

/// Whether `e` is in `reported` (ignoring `keptPrevious`).
fn reported_before(reported: &[ObjectError], e: &ConfigError) -> bool {
    let mut mine = ObjectError::from(e);
    reported.iter().any(|r| {
        mine.kept_previous = r.kept_previous;
        *r == mine
    })
}

/// The Event reason for an allocation failure.
fn failure_event_reason(e: &AllocError) -> &'static str {
    match e {
        AllocError::SharingConflict { .. } => reasons::SHARING_CONFLICT,
        _ => reasons::ALLOCATION_FAILED,
    }
}

/// Reference to a Service for Events.
pub fn service_ref(key: &ServiceKey) -> ObjectRef {
    ObjectRef {
        kind: Kind::Service,
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    }
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

mod convert;
#[cfg(test)]
mod tests;

pub use convert::to_alloc_pool;
