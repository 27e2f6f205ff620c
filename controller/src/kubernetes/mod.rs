//! Kubernetes mode: watches Services (all namespaces), IPAddressPools and Namespaces through
//! the API server; one active replica (Lease), the other on standby.
//!
//! Start-up as leader: list pools and namespaces -> config; list Services -> restore every
//! address already in `status.loadBalancer.ingress`; only then start the reconciler. No
//! finalizers: a stopped controller never blocks a deletion; deletions seen by the watch (and,
//! after a re-list, Services missing from it) release their addresses.

pub mod lease;
pub mod memberlist_secret;
pub mod reconcile;
pub mod sink;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::IPAddressPool;
use ferrolb_telemetry::Health;
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, ListParams};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use tokio::sync::mpsc;

use crate::allocator::ServiceKey;
use crate::decide::Core;
use crate::error::Error;
use crate::lease::LeaseParams;
use crate::metrics::Metrics;
pub use lease::LeaseElector;
pub use reconcile::{Context, error_policy, reconcile};
pub use sink::KubeSink;

/// Options of Kubernetes mode.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// Kubeconfig file; `None`: in-cluster config, then the default kubeconfig.
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the ferrolb objects and of the Lease.
    pub namespace: String,
    /// Handle only Services of class `ferrolb.io/lb`.
    pub lb_class_only: bool,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity (pod name).
    pub identity: String,
}

/// Builds the client from `--kubeconfig` or the environment.
pub async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| Error::Kube {
                what: format!("read kubeconfig {}", path.display()),
                source: kube::Error::InferKubeconfig(e),
            })?;
            Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Kube {
                    what: format!("load kubeconfig {}", path.display()),
                    source: kube::Error::InferKubeconfig(e),
                })?
        }
        None => Config::infer().await.map_err(|e| Error::Kube {
            what: "find a cluster configuration (in-cluster or ~/.kube/config)".into(),
            source: kube::Error::InferConfig(e),
        })?,
    };
    Client::try_from(config).map_err(|source| Error::Kube {
        what: "build the Kubernetes client".into(),
        source,
    })
}

/// Runs the Kubernetes controller until `shutdown` completes: wait for the Lease (standby is
/// ready), then lead until shutdown (release the Lease) or until the Lease is lost (error:
/// the process exits and restarts as a standby).
pub async fn run(
    opts: KubeOptions,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let shutdown = shutdown.boxed().shared();
    let client = client(opts.kubeconfig.as_ref()).await?;
    // The speakers mount this Secret: every replica makes sure it exists, leader or not.
    memberlist_secret::ensure_memberlist_secret(client.clone(), &opts.namespace).await?;
    let elector = LeaseElector::new(
        client.clone(),
        &opts.namespace,
        &opts.lease_name,
        &opts.identity,
        LeaseParams::default(),
    );
    health.set_ready(true);
    tracing::info!(identity = %opts.identity, lease = %opts.lease_name, "waiting for the lease (standby)");
    if !elector.acquire(shutdown.clone()).await {
        return Ok(());
    }
    metrics.leader.set(1);
    health.set_ready(false);
    let result = tokio::select! {
        r = lead(client, &opts, metrics.clone(), health.clone(), shutdown.clone()) => r,
        () = elector.hold() => Err(Error::LeaseLost),
    };
    metrics.leader.set(0);
    if let Err(e) = elector.release().await {
        tracing::warn!(error = %e, "failed to release the lease");
    }
    result
}

/// Lists pools and namespaces into [`ClusterResources`].
async fn list_config(client: &Client, namespace: &str) -> Result<ClusterResources, Error> {
    let pools: Api<IPAddressPool> = Api::namespaced(client.clone(), namespace);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let lp = ListParams::default();
    Ok(ClusterResources {
        pools: pools
            .list(&lp)
            .await
            .map_err(|source| Error::Kube {
                what: format!("list IPAddressPools in {namespace}"),
                source,
            })?
            .items,
        namespaces: namespaces
            .list(&lp)
            .await
            .map_err(|source| Error::Kube {
                what: "list Namespaces".into(),
                source,
            })?
            .items,
        ..ClusterResources::default()
    })
}

/// The leader's work until `shutdown`: config, restore every recorded address, mark ready,
/// then watch and reconcile. (Called by [`run`] once the Lease is held.)
pub async fn lead(
    client: Client,
    opts: &KubeOptions,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> Result<(), Error> {
    let sink = KubeSink::new(client.clone(), &opts.namespace, Some(opts.identity.clone()));
    let ctx = Arc::new(Context::new(Core::new(opts.lb_class_only), sink, metrics));

    // 1. Pools first, 2. every recorded address, before any allocation. Retried with
    // backoff (1 s .. 30 s) while the API server is unavailable.
    let services: Api<Service> = Api::all(client.clone());
    let mut attempt = 0u32;
    let list = loop {
        let r = async {
            let res = list_config(&client, &opts.namespace).await?;
            ctx.apply_config(&res).await?;
            services
                .list(&ListParams::default())
                .await
                .map_err(|source| Error::Kube {
                    what: "list Services".into(),
                    source,
                })
        }
        .await;
        match r {
            Ok(list) => break list,
            Err(e) => {
                ctx.metrics.error(e.reason());
                let delay = reconcile::backoff(attempt).min(std::time::Duration::from_secs(30));
                attempt = attempt.saturating_add(1);
                tracing::warn!(error = %e, ?delay, "start-up listing failed; retrying");
                tokio::select! {
                    () = shutdown.clone() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    ctx.restore(&list.items).await;
    tracing::info!(services = list.items.len(), "assignments restored");
    health.set_ready(true);

    // Pool / namespace changes: re-apply the config, then re-queue every Service (those
    // still pending get their chance; the others are no-ops).
    let (trigger_tx, trigger_rx) = mpsc::channel::<()>(16);
    let config_task = tokio::spawn(watch_config(
        client.clone(),
        opts.namespace.clone(),
        ctx.clone(),
        trigger_tx,
    ));

    // Services: deletions (and Services missing after a re-list) release their addresses.
    let (reader, writer) = reflector::store::<Service>();
    let (del_tx, del_rx) = mpsc::unbounded_channel::<ServiceChange>();
    let stream = watcher(services, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |ev| {
            let change = match ev {
                watcher::Event::Delete(s) => Some(ServiceChange::Deleted(key_of(s))),
                watcher::Event::InitDone => Some(ServiceChange::Relisted),
                _ => None,
            };
            if let Some(c) = change {
                let _ = del_tx.send(c);
            }
        })
        .touched_objects();
    let delete_task = tokio::spawn(handle_deletions(ctx.clone(), reader.clone(), del_rx));

    Controller::for_stream(stream, reader)
        .reconcile_all_on(tokio_stream_from(trigger_rx))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
            std::future::ready(())
        })
        .await;
    config_task.abort();
    delete_task.abort();
    Ok(())
}

enum ServiceChange {
    Deleted(ServiceKey),
    Relisted,
}

fn key_of(s: &Service) -> ServiceKey {
    ServiceKey::new(
        s.metadata.namespace.clone().unwrap_or_default(),
        s.metadata.name.clone().unwrap_or_default(),
    )
}

async fn handle_deletions(
    ctx: Arc<Context>,
    reader: Store<Service>,
    mut rx: mpsc::UnboundedReceiver<ServiceChange>,
) {
    while let Some(change) = rx.recv().await {
        let r = match change {
            ServiceChange::Deleted(key) => ctx.deleted(&key).await,
            ServiceChange::Relisted => {
                let present: Vec<ServiceKey> = reader.state().iter().map(|s| key_of(s)).collect();
                ctx.resync(&present).await
            }
        };
        if let Err(e) = r {
            ctx.metrics.error(e.reason());
            tracing::warn!(error = %e, "failed to release a deleted Service");
        }
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<()>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
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
    .default_backoff()
    .reflect(pool_writer)
    .map_ok(|_| ())
    .boxed();
    let ns_stream = watcher(Api::<Namespace>::all(client), watcher::Config::default())
        .default_backoff()
        .reflect(ns_writer)
        .map_ok(|_| ())
        .boxed();
    let mut changes = futures::stream::select(pool_stream, ns_stream);
    while let Some(ev) = changes.next().await {
        if let Err(e) = ev {
            tracing::warn!(error = %e, "config watch error");
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
