//! Kubernetes mode: watches Services and pools through the API server.

use std::future::Future;
use std::path::PathBuf;

use ferrolb_telemetry::Health;

use crate::error::Error;
use crate::metrics::Metrics;

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

/// Runs the Kubernetes controller until `shutdown` completes.
pub async fn run(
    _opts: KubeOptions,
    _metrics: Metrics,
    _health: Health,
    _shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    Err(Error::Unsupported(
        "Kubernetes mode is not wired up in this build; use --manifests DIR",
    ))
}
