//! The Service reconciler: `reconcile(obj, ctx) -> Result<Next>` and `error_policy`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::config::Kind;
use ferrolb_crds::service::ANNOTATION_ALLOCATED_FROM_POOL;
use k8s_openapi::api::core::v1::Service;

use super::queue::Next;
use super::sink::KubeSink;
use super::slim_service::SlimService;
use crate::allocator::{Assignment, ServiceKey};
use crate::decide::{ConfigDecision, Core, CurrentStatus};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::sink::{ControllerEvent, ControllerSink, ServiceStatusWrite};

/// Re-check interval of a Service whose allocation failed (a pool change re-queues it
/// earlier).
pub const FAILED_RECHECK: Duration = Duration::from_secs(300);

/// Shared state of the reconciler.
pub struct Context {
    /// Decisions and allocator.
    pub core: Mutex<Core>,
    /// Writes.
    pub sink: KubeSink,
    /// Metrics.
    pub metrics: Metrics,
    /// Consecutive errors per Service (for the backoff).
    failures: Mutex<HashMap<ServiceKey, u32>>,
    /// The status last written per Service, with the `resourceVersion` the Service had
    /// before the write: while the watch still shows that version, the write is what the
    /// Service has (no second write, no repeated Event when a re-queue comes first).
    written: Mutex<HashMap<ServiceKey, (Option<String>, CurrentStatus)>>,
    /// Pool status to rewrite (see [`super::pool_status`]).
    pub(super) pool_dirty: Notify,
}

impl Context {
    /// A context around `core`.
    pub fn new(core: Core, sink: KubeSink, metrics: Metrics) -> Self {
        Self {
            core: Mutex::new(core),
            sink,
            metrics,
            failures: Mutex::default(),
            written: Mutex::default(),
            pool_dirty: Notify::new(),
        }
    }

    pub(super) fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().expect("controller core lock")
    }

    /// Publishes events; a failed Event is logged and counted, never fatal.
    pub async fn emit(&self, events: &[ControllerEvent]) {
        self.metrics.events(events);
        for e in events {
            tracing::info!(object = %e.object, reason = e.reason, message = %e.message, "event");
            if let Err(err) = self.sink.publish(e).await {
                self.metrics.error(err.reason());
                tracing::warn!(error = %err, "failed to publish an event");
            }
        }
    }

    /// Applies a new configuration (pools, namespaces): Events, configuration state; marks
    /// the pool status dirty. Returns the decision (its `pools_changed` says whether to
    /// re-queue Services).
    pub async fn apply_config(&self, res: &ClusterResources) -> Result<ConfigDecision, Error> {
        for p in &res.pools {
            self.sink.remember(Kind::IPAddressPool, &p.metadata);
        }
        let (d, outside) = {
            let mut core = self.core();
            let d = core.apply_config(res);
            let outside = core.allocator().outside_pools().len();
            (d, outside)
        };
        self.metrics
            .config_errors
            .set(i64::try_from(d.errors.len()).unwrap_or(i64::MAX));
        self.metrics
            .outside_pools
            .set(i64::try_from(outside).unwrap_or(i64::MAX));
        self.pool_status_changed();
        self.emit(&d.events).await;
        self.sink.clone().config_state(&d.errors).await?;
        Ok(d)
    }

    /// The assignments recorded in these Services' status (start-up, a page at a time);
    /// their identities are remembered for the Events a conflict would raise.
    pub fn recorded(&self, services: &[Service]) -> Vec<Assignment> {
        let core = self.core();
        services
            .iter()
            .filter_map(|s| {
                let a = core.assignment(s, CurrentStatus::of_service(s).ingress)?;
                self.sink.remember(Kind::Service, &s.metadata);
                Some(a)
            })
            .collect()
    }

    /// Restores the recorded assignments (start-up, before any allocation).
    pub async fn restore(&self, assignments: Vec<Assignment>) {
        let events = self.core().restore_assignments(assignments);
        self.emit(&events).await;
    }

    /// The status `svc` has: the one last written while the watch still shows the version
    /// from before that write, else its own. A record the watch has caught up with is
    /// dropped (a copy per Service would stay for nothing: ~2 MB at 10,000).
    fn written_status(&self, key: &ServiceKey, svc: &Service) -> CurrentStatus {
        let mut written = self.written.lock().expect("written lock");
        match written.get(key) {
            Some((rv, w)) if *rv == svc.metadata.resource_version => return w.clone(),
            Some(_) => {
                written.remove(key);
            }
            None => {}
        }
        CurrentStatus::of_service(svc)
    }

    /// Releases a deleted Service (and marks the pool status dirty).
    pub async fn deleted(&self, key: &ServiceKey) -> Result<(), Error> {
        let freed = self.core().release(key);
        self.failures.lock().expect("failures lock").remove(key);
        self.written.lock().expect("written lock").remove(key);
        self.metrics.service_outcome(key, None);
        if !freed.is_empty() {
            tracing::info!(service = %key, ips = ?freed, "released the addresses of a deleted Service");
            self.pool_status_changed();
        }
        self.sink.clone().service_deleted(key).await
    }

    /// Services holding addresses that are not `present` (deleted while we were not
    /// watching) are released.
    pub async fn resync(&self, present: impl Fn(&ServiceKey) -> bool) -> Result<(), Error> {
        let gone: Vec<ServiceKey> = {
            let core = self.core();
            core.allocator()
                .assignments()
                .into_iter()
                .map(|a| a.service)
                .filter(|k| !present(k))
                .collect()
        };
        for k in gone {
            self.deleted(&k).await?;
        }
        Ok(())
    }
}

/// Reconciles one Service: decide, write status (with the pool annotation, one PATCH),
/// publish Events, mark the pool status dirty.
pub async fn reconcile(slim: Arc<SlimService>, ctx: Arc<Context>) -> Result<Next, Error> {
    let t0 = Instant::now();
    let svc = slim.to_service();
    let key = slim.service_key();
    let current = ctx.written_status(&key, &svc);
    let d = ctx.core().reconcile(&svc, &current);
    ctx.metrics
        .reconcile_duration
        .observe(t0.elapsed().as_secs_f64());
    ctx.metrics.service_outcome(&key, d.failure);
    if d.ours || !d.events.is_empty() {
        ctx.sink.remember(Kind::Service, &svc.metadata);
    }
    if let Some(reason) = d.failure
        && current
            .condition
            .as_ref()
            .is_none_or(|c| c.reason != reason)
    {
        ctx.metrics.failure(reason);
    }
    if let Some(w) = &d.write {
        write_status(&ctx, &svc, &key, w).await?;
        // Usage changes only with a write (an allocation, a release, a change).
        ctx.pool_status_changed();
    }
    ctx.emit(&d.events).await;
    ctx.failures.lock().expect("failures lock").remove(&key);
    Ok(if d.failure.is_some() {
        Next::After(FAILED_RECHECK)
    } else {
        Next::AwaitChange
    })
}

/// Writes the status and records it with the `resourceVersion` `svc` had before.
async fn write_status(
    ctx: &Context,
    svc: &Service,
    key: &ServiceKey,
    w: &ServiceStatusWrite,
) -> Result<(), Error> {
    let written = ctx.sink.apply_service_status(w).await?;
    // An annotation applied on the Service itself (earlier versions) is not the status
    // write's to remove: remove it the way it was written.
    let left = written
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_ALLOCATED_FROM_POOL));
    if w.pool.is_none() && left.is_some() {
        ctx.sink.pool_annotation(key, None).await?;
    }
    ctx.written.lock().expect("written lock").insert(
        key.clone(),
        (
            svc.metadata.resource_version.clone(),
            CurrentStatus {
                ingress: w.ingress.clone(),
                condition: w.condition.clone(),
            },
        ),
    );
    Ok(())
}

/// Backoff after `n` consecutive errors: 1 s, 2 s, 4 s ... capped at 5 min.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(8)).min(Duration::from_secs(300))
}

/// Logs the error, counts it by label and re-queues with backoff.
pub fn error_policy(svc: Arc<SlimService>, err: &Error, ctx: Arc<Context>) -> Next {
    let key = svc.service_key();
    ctx.metrics.error(err.reason());
    let n = {
        let mut f = ctx.failures.lock().expect("failures lock");
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(n - 1);
    tracing::warn!(service = %key, error = %err, attempt = n, ?delay, "reconcile failed; retrying");
    Next::After(delay)
}
