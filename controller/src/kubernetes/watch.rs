//! The leader's work: start-up (config, restore), then the watches and the reconciler.
//!
//! Every watch reconnects with [`watch_backoff`] (100 ms .. 1 s, jittered). A watch that
//! expired (410 Gone) re-lists; that is routine and logged at info ([`log_watch_error`]). Both rules, and [`trim`], are `ferrolb_cluster::kube`'s.

use std::future::Future;
use std::sync::Arc;

use ferrolb_cluster::kube::{for_each_page, log_watch_error, trim};
use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::IPAddressPool;
use ferrolb_telemetry::Health;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;

use super::reconcile::Context;
use super::sink::KubeSink;
use super::{KubeOptions, list_config, watch_backoff};
use crate::allocator::Assignment;
use crate::decide::Core;
use crate::error::Error;
use crate::metrics::Metrics;

/// Page size of the start-up Service list (bounded memory with many Services).
pub const LIST_PAGE: u32 = 500;

/// What the start-up list found: every Service that holds addresses, as an assignment.
struct Recorded {
    services: usize,
    assignments: Vec<Assignment>,
}

/// Start-up: the configuration errors the previous leader reported (so they are not
/// published again), pools and namespaces, then every recorded address, read
/// [`LIST_PAGE`] Services at a time (only one page of whole Services in memory).
async fn start_up(client: &Client, ns: &str, ctx: &Context) -> Result<Recorded, Error> {
    let reported = ctx.sink.reported_config_errors().await?;
    ctx.core().assume_reported(reported);
    let res = list_config(client, ns).await?;
    ctx.apply_config(&res).await?;
    let mut recorded = Recorded {
        services: 0,
        assignments: Vec::new(),
    };
    for_each_page(&Api::<Service>::all(client.clone()), LIST_PAGE, |page| {
        recorded.services += page.len();
        recorded.assignments.extend(ctx.recorded(&page));
    })
    .await
    .map_err(|source| Error::Kube {
        what: "list Services".into(),
        source,
    })?;
    Ok(recorded)
}

/// The leader's work until `shutdown`: config, restore every recorded address, mark ready,
/// then watch and reconcile. (Called by [`super::run`] once the Lease is held.)
pub async fn lead(
    client: Client,
    opts: &KubeOptions,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> Result<(), Error> {
    let sink = KubeSink::new(client.clone(), &opts.namespace, Some(opts.identity.clone()));
    let ctx = Arc::new(Context::new(Core::new(opts.lb_class_only), sink, metrics));
    // Spawned tasks end with `lead`, also when it is dropped (Lease lost).
    let _writer = AbortOnDrop(tokio::spawn(ctx.clone().run_pool_status_writer()));

    // 1. Pools first, 2. every recorded address, before any allocation. Retried with
    // backoff while the API server is unavailable.
    let mut retry = watch_backoff();
    let recorded = loop {
        let attempt = tokio::select! {
            () = shutdown.clone() => return Ok(()),
            r = start_up(&client, &opts.namespace, &ctx) => r,
        };
        match attempt {
            Ok(recorded) => break recorded,
            Err(e) => {
                ctx.metrics.error(e.reason());
                let delay = retry.next().unwrap_or(ferrolb_cluster::kube::CAP);
                tracing::warn!(error = %e, ?delay, "start-up listing failed; retrying");
                tokio::select! {
                    () = shutdown.clone() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    let held = recorded.assignments.len();
    ctx.restore(recorded.assignments).await;
    tracing::info!(
        services = recorded.services,
        holding_addresses = held,
        "assignments restored"
    );
    health.set_ready(true);

    // Pool / namespace changes: re-apply the config, then re-queue every Service (those
    // still pending get their chance; the others are no-ops).
    let (trigger_tx, trigger_rx) = mpsc::channel::<()>(16);
    let _config_task = AbortOnDrop(tokio::spawn(watch_config(
        client.clone(),
        opts.namespace.clone(),
        ctx.clone(),
        trigger_tx,
    )));

    // Services: the watch, the work queue and the workers (services.rs).
    super::services::run(client, ctx, trigger_rx, shutdown).await;
    Ok(())
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches pools (in the ferrolb namespace) and Namespaces; on every change re-applies the
/// config and, when pools changed, triggers a reconcile of every Service.
async fn watch_config(
    client: Client,
    namespace: String,
    ctx: Arc<Context>,
    trigger: mpsc::Sender<()>,
) {
    let (pools, pool_writer) = reflector::store::<IPAddressPool>();
    let (nss, ns_writer) = reflector::store::<Namespace>();
    let pool_stream = watcher(
        Api::<IPAddressPool>::namespaced(client.clone(), &namespace),
        watcher::Config::default(),
    )
    .backoff(watch_backoff())
    .modify(trim)
    .reflect(pool_writer)
    .map_ok(|_| ())
    .map_err(|e| ("IPAddressPools", e))
    .boxed();
    let ns_stream = watcher(Api::<Namespace>::all(client), watcher::Config::default())
        .backoff(watch_backoff())
        .modify(trim)
        .reflect(ns_writer)
        .map_ok(|_| ())
        .map_err(|e| ("Namespaces", e))
        .boxed();
    let mut changes = futures::stream::select(pool_stream, ns_stream);
    while let Some(ev) = changes.next().await {
        if let Err((what, e)) = ev {
            log_watch_error(what, &e);
            continue;
        }
        // Wait until both stores have their initial list.
        if pools.wait_until_ready().now_or_never().is_none()
            || nss.wait_until_ready().now_or_never().is_none()
        {
            continue;
        }
        let res = ClusterResources {
            pools: pools.state().iter().map(|p| (**p).clone()).collect(),
            namespaces: nss.state().iter().map(|n| (**n).clone()).collect(),
            ..ClusterResources::default()
        };
        match ctx.apply_config(&res).await {
            Ok(d) if d.pools_changed || d.errors_changed => {
                let _ = trigger.try_send(());
            }
            Ok(_) => {}
            Err(e) => {
                ctx.metrics.error(e.reason());
                tracing::warn!(error = %e, "failed to apply the configuration");
            }
        }
    }
}
