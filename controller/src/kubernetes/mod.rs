//! Kubernetes mode: watches Services (all namespaces), IPAddressPools and Namespaces through
//! the API server; one active replica (Lease), the other on standby.
//!
//! Start-up as leader: list pools and namespaces -> config; list Services -> restore every
//! address already in `status.loadBalancer.ingress`; only then start the reconciler. No
//! finalizers: a stopped controller never blocks a deletion; deletions seen by the watch (and,
//! after a re-list, Services missing from it) release their addresses.

pub mod events;
pub mod lease;
pub mod memberlist_secret;
pub mod pool_status;
pub mod queue;
pub mod reconcile;
mod services;
pub mod sink;
pub mod slim_service;
mod watch;

use std::future::Future;
use std::path::PathBuf;

use ferrolb_cluster::kube::list_all;
use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::IPAddressPool;
use ferrolb_telemetry::Health;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::{Client, Config};

use crate::error::Error;
use crate::lease::LeaseParams;
use crate::metrics::Metrics;
pub use ferrolb_cluster::kube::WatchBackoff;
pub use lease::LeaseElector;
pub use queue::Next;
pub use reconcile::{Context, error_policy, reconcile};
pub use sink::KubeSink;
pub use slim_service::SlimService;
pub use watch::lead;

/// Jitter of the controller's reconnect backoff: each delay shortened by up to a fifth, so it
/// is never later than the 100 ms .. 1 s schedule.
pub const BACKOFF_JITTER: f64 = -0.2;

/// The reconnect backoff of every watch and of failed Lease attempts ([`WatchBackoff`] with [`BACKOFF_JITTER`]).
pub fn watch_backoff() -> WatchBackoff {
    WatchBackoff::new(BACKOFF_JITTER)
}

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

impl KubeOptions {
    /// Options with the defaults of the binary (`ferrolb-system`, Lease `ferrolb-controller`).
    pub fn new(kubeconfig: Option<PathBuf>, identity: impl Into<String>) -> Self {
        Self {
            kubeconfig,
            namespace: "ferrolb-system".into(),
            lb_class_only: false,
            lease_name: "ferrolb-controller".into(),
            identity: identity.into(),
        }
    }
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
/// ready), then lead until shutdown (release the Lease). A Lease that could not be renewed
/// within its duration (e.g. an API server outage) stops all leader work at once — another
/// replica may hold it by then — and this replica goes back to standby in-process: when the
/// API server is back it competes for the Lease again and, if it wins, starts over (config,
/// restore, watches).
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
    loop {
        health.set_ready(true);
        tracing::info!(identity = %opts.identity, lease = %opts.lease_name, "waiting for the lease (standby)");
        if !elector.acquire(shutdown.clone()).await {
            return Ok(());
        }
        metrics.leader.set(1);
        health.set_ready(false);
        let led = tokio::select! {
            r = lead(client.clone(), &opts, metrics.clone(), health.clone(), shutdown.clone()) => Some(r),
            () = elector.hold() => None,
        };
        metrics.leader.set(0);
        match led {
            Some(result) => {
                if let Err(e) = elector.release().await {
                    tracing::warn!(error = %e, "failed to release the lease");
                }
                return result;
            }
            None => {
                metrics.error(Error::LeaseLost.reason());
                tracing::warn!(lease = %opts.lease_name, "lost the lease; leader work stopped, back to standby");
            }
        }
    }
}

/// Page size of the pool and Namespace lists at start-up.
const CONFIG_LIST_PAGE: u32 = 500;

/// Lists pools and namespaces into [`ClusterResources`], a page at a time.
pub(crate) async fn list_config(
    client: &Client,
    namespace: &str,
) -> Result<ClusterResources, Error> {
    let pools: Api<IPAddressPool> = Api::namespaced(client.clone(), namespace);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Ok(ClusterResources {
        pools: list_all(&pools, CONFIG_LIST_PAGE)
            .await
            .map_err(|source| Error::Kube {
                what: format!("list IPAddressPools in {namespace}"),
                source,
            })?,
        namespaces: list_all(&namespaces, CONFIG_LIST_PAGE)
            .await
            .map_err(|source| Error::Kube {
                what: "list Namespaces".into(),
                source,
            })?,
        ..ClusterResources::default()
    })
}
