//! Standalone mode: `ferrolb-controller --manifests DIR`, no Kubernetes.
//!
//! How the directory is seen is `ferrolb-cluster`'s job (one loader for both binaries:
//! inotify, per-file last good, limits); each new [`ClusterView`] re-runs the same decisions
//! as the Kubernetes reconciler ([`crate::decide::Core`]), and the results go to
//! `DIR/.ferrolb/status.yaml` ([`ferrolb_crds::standalone::StandaloneStatus`], written
//! atomically).
//!
//! - A file that does not load is reported (`configErrors`, with `file:line`) and its last
//!   good content stays in force; unknown fields are reported in `configWarnings`.
//! - At start-up the assignments recorded in the status file are restored before any new
//!   allocation: the status file is the standalone equivalent of `Service.status`, so a
//!   restart gives every Service the address it had.
//! - Services have no clusterIP here: the family comes from `spec.ipFamilies` /
//!   `spec.ipFamilyPolicy`, default IPv4 SingleStack. A Service without a namespace is in
//!   `default`.

mod status;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::Instant;

use ferrolb_cluster::ClusterView;
use ferrolb_telemetry::Health;

pub use status::StatusFile;

use crate::allocator::{Assignment, ServiceKey};
use crate::decide::{Core, CurrentStatus};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::sink::{AllocCondition, ControllerEvent, ControllerSink, reasons};

/// Options of standalone mode.
#[derive(Clone, Debug)]
pub struct StandaloneOptions {
    /// The manifests directory.
    pub dir: PathBuf,
    /// Handle only Services of class `ferrolb.io/lb`.
    pub lb_class_only: bool,
    /// The directory loader's metrics (register them to export them).
    pub loader_metrics: ferrolb_cluster::Metrics,
}

impl StandaloneOptions {
    /// Defaults: Services without a class are ours.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            lb_class_only: false,
            loader_metrics: ferrolb_cluster::Metrics::default(),
        }
    }
}

/// The standalone controller: decisions + status file, fed with views of the directory.
#[derive(Debug)]
pub struct Standalone {
    status: StatusFile,
    core: Core,
    metrics: Metrics,
    /// Services seen in the last pass (to release deleted ones).
    known: BTreeSet<ServiceKey>,
    /// Services recorded in the status file at start-up but in no loaded file while some
    /// file has never loaded: they may be in that file, so their addresses are kept (and
    /// their entries left as they are) until every file has loaded once.
    orphans: BTreeSet<ServiceKey>,
}

impl Standalone {
    /// Reads the previous status file, restores the recorded assignments, reconciles every
    /// Service of `view` (the directory's first view) and writes the status file.
    pub async fn start(
        opts: &StandaloneOptions,
        metrics: Metrics,
        view: &ClusterView,
    ) -> Result<Self, Error> {
        let mut me = Self {
            status: StatusFile::new(&opts.dir),
            core: Core::new(opts.lb_class_only),
            metrics,
            known: BTreeSet::new(),
            orphans: BTreeSet::new(),
        };
        let previous = me.status.load()?.clone();
        let res = resources(view);
        // Pools first, then the recorded assignments, then anything new.
        let cfg = me.core.apply_config(&res);
        me.emit(&cfg.events).await?;
        let mut assignments: Vec<_> = res
            .services
            .iter()
            .filter_map(|svc| {
                let entry = previous.service(
                    svc.metadata.namespace.as_deref().unwrap_or("default"),
                    svc.metadata.name.as_deref().unwrap_or_default(),
                )?;
                me.core.assignment(svc, entry.ips())
            })
            .collect();
        if view.has_unloaded_files() {
            let present: BTreeSet<ServiceKey> = res.services.iter().map(key_of).collect();
            for entry in &previous.services {
                let key = ServiceKey::new(entry.namespace.clone(), entry.name.clone());
                if !present.contains(&key) && !entry.ingress.is_empty() {
                    tracing::warn!(service = %key, ips = ?entry.ips(), "Service not in any loaded file while a file does not load; keeping its addresses");
                    assignments.push(Assignment {
                        service: key.clone(),
                        ips: entry.ips(),
                        sharing: None,
                        pool: None,
                    });
                    me.orphans.insert(key);
                }
            }
        }
        let events = me.core.restore_assignments(assignments);
        me.emit(&events).await?;
        // Entries of Services that are gone are dropped by the first pass.
        me.known = previous
            .services
            .iter()
            .map(|s| ServiceKey::new(s.namespace.clone(), s.name.clone()))
            .collect();
        me.pass(view, &res, cfg.errors).await?;
        me.status.flush()?;
        Ok(me)
    }

    /// Reconciles everything in a new view of the directory and writes the status when it
    /// changed. Returns whether the status file was written.
    pub async fn apply(&mut self, view: &ClusterView) -> Result<bool, Error> {
        let res = resources(view);
        let cfg = self.core.apply_config(&res);
        self.emit(&cfg.events).await?;
        self.pass(view, &res, cfg.errors).await?;
        self.status.flush()
    }

    /// The status as last computed.
    pub fn status(&self) -> &ferrolb_crds::standalone::StandaloneStatus {
        self.status.status()
    }

    /// The decisions' state.
    pub fn core(&self) -> &Core {
        &self.core
    }

    async fn emit(&mut self, events: &[ControllerEvent]) -> Result<(), Error> {
        self.metrics.events(events);
        for e in events {
            tracing::info!(object = %e.object, reason = e.reason, message = %e.message, "event");
            self.status.event(e).await?;
        }
        Ok(())
    }

    /// Reconciles every Service (sorted), releases the deleted ones, writes pools and errors.
    async fn pass(
        &mut self,
        view: &ClusterView,
        res: &ferrolb_crds::ClusterResources,
        config_errors: Vec<ferrolb_crds::ConfigError>,
    ) -> Result<(), Error> {
        let file_errors = &view.file_errors;
        self.status.set_file_errors(file_errors);
        self.status.set_unknown_fields(&view.unknown_fields);
        self.status.config_state(&config_errors).await?;
        self.metrics
            .config_errors
            .set(i64::try_from(file_errors.len() + config_errors.len()).unwrap_or(i64::MAX));

        let mut services: Vec<_> = res.services.iter().collect();
        services.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
        let mut seen = BTreeSet::new();
        for svc in services {
            let key = ServiceKey::new(
                svc.metadata.namespace.clone().unwrap_or_default(),
                svc.metadata.name.clone().unwrap_or_default(),
            );
            if !seen.insert(key.clone()) {
                continue;
            }
            let current = self.current(&key);
            let t0 = Instant::now();
            let d = self.core.reconcile(svc, &current);
            self.metrics
                .reconcile_duration
                .observe(t0.elapsed().as_secs_f64());
            self.metrics.service_outcome(&key, d.failure);
            if let Some(reason) = d.failure
                && current
                    .condition
                    .as_ref()
                    .is_none_or(|c| c.reason != reason)
            {
                self.metrics.failure(reason);
            }
            if let Some(w) = &d.write {
                self.status.service_status(w).await?;
            }
            self.emit(&d.events).await?;
        }
        self.orphans.retain(|k| !seen.contains(k));
        if !view.has_unloaded_files() {
            // Every file has loaded: orphans still absent were really deleted.
            self.known.extend(std::mem::take(&mut self.orphans));
        }
        let gone: Vec<ServiceKey> = self
            .known
            .difference(&seen)
            .filter(|k| !self.orphans.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let freed = self.core.release(&key);
            self.metrics.service_outcome(&key, None);
            self.status.service_deleted(&key).await?;
            if !freed.is_empty() {
                let ips: Vec<String> = freed.iter().map(ToString::to_string).collect();
                let e = ControllerEvent {
                    object: crate::decide::service_ref(&key),
                    warning: false,
                    reason: reasons::IP_RELEASED,
                    message: format!("released {}: the Service was deleted", ips.join(", ")),
                };
                self.emit(&[e]).await?;
            }
        }
        self.known = seen;
        self.known.extend(self.orphans.iter().cloned());
        let usage = self.core.pool_usage();
        self.metrics.set_usage(&usage);
        self.metrics
            .outside_pools
            .set(i64::try_from(self.core.allocator().outside_pools().len()).unwrap_or(i64::MAX));
        self.status.pool_status(&usage).await
    }

    fn current(&self, key: &ServiceKey) -> CurrentStatus {
        self.status
            .status()
            .service(&key.namespace, &key.name)
            .map(|e| CurrentStatus {
                ingress: e.ips(),
                condition: Some(AllocCondition {
                    allocated: e.condition.status == "True",
                    reason: e.condition.reason.clone(),
                    message: e.condition.message.clone(),
                }),
            })
            .unwrap_or_default()
    }
}

/// The objects of `view`, Services without a namespace in `default`.
fn resources(view: &ClusterView) -> ferrolb_crds::ClusterResources {
    let mut res = view.resources.clone();
    for svc in &mut res.services {
        svc.metadata
            .namespace
            .get_or_insert_with(|| "default".into());
    }
    res
}

fn key_of(svc: &k8s_openapi::api::core::v1::Service) -> ServiceKey {
    ServiceKey::new(
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

/// Runs standalone mode until `shutdown` completes: watch the directory
/// ([`ferrolb_cluster::Watcher`]), start from its first view, then apply every new view.
/// `health` becomes ready once the first status file is written. An error of one pass is
/// logged and retried with the next view (or the loader's periodic rescan).
pub async fn run(
    opts: StandaloneOptions,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(shutdown);
    let watcher = ferrolb_cluster::Watcher::start(
        ferrolb_cluster::Options::new(&opts.dir),
        opts.loader_metrics.clone(),
    )?;
    let mut views = watcher.subscribe();
    let first = views.borrow_and_update().clone();
    let mut ctl = tokio::select! {
        _ = &mut shutdown => return Ok(()),
        r = Standalone::start(&opts, metrics.clone(), &first) => r?,
    };
    tracing::info!(dir = %opts.dir.display(), services = ctl.status().services.len(), "standalone controller started");
    health.set_ready(true);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = views.changed() => if r.is_err() { break },
        }
        let view = views.borrow_and_update().clone();
        match ctl.apply(&view).await {
            Ok(true) => {
                tracing::debug!(
                    generation = ctl.status().generation,
                    view = view.generation,
                    "status file written"
                )
            }
            Ok(false) => {}
            Err(e) => {
                metrics.error(e.reason());
                tracing::warn!(error = %e, "standalone pass failed; retrying with the next view");
            }
        }
    }
    tracing::info!("standalone controller stopped");
    Ok(())
}
