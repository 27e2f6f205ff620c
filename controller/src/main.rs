//! `ferrolb-controller`: parses flags, sets up telemetry, runs the controller.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::standalone::StandaloneOptions;
use ferrolb_telemetry::{LogFormat, Process};

/// ferrolb controller: assigns IPs from IPAddressPools to LoadBalancer Services.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Kubeconfig file (default: in-cluster config, then ~/.kube/config).
    #[arg(long, value_name = "PATH", conflicts_with = "manifests")]
    kubeconfig: Option<PathBuf>,
    /// Standalone mode: read manifests from DIR instead of a cluster; results go to
    /// DIR/.ferrolb/status.yaml.
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Handle only Services with `spec.loadBalancerClass: ferrolb.io/lb`.
    #[arg(long)]
    lb_class_only: bool,
    /// Namespace of the ferrolb objects, the Lease and the ConfigurationState (default: the
    /// pod's own namespace, `POD_NAMESPACE`, which install.yaml sets).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ferrolb-system")]
    namespace: String,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, default_value = "0.0.0.0:7472")]
    metrics_addr: SocketAddr,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: LogFormat,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "ferrolb-controller")]
    lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let process = Process::start(
        "ferrolb-controller",
        env!("CARGO_PKG_VERSION"),
        cli.log_format,
        cli.metrics_addr,
    )
    .await?;
    let metrics = process.register(Metrics::register);
    let (health, shutdown) = (process.health.clone(), process.shutdown.clone());

    let result = match cli.manifests {
        Some(dir) => {
            let mut opts = StandaloneOptions::new(dir);
            opts.lb_class_only = cli.lb_class_only;
            process.register(|r| opts.loader_metrics.register(r));
            ferrolb_controller::standalone::run(opts, metrics, health, shutdown.wait()).await
        }
        None => {
            let opts = ferrolb_controller::kubernetes::KubeOptions {
                kubeconfig: cli.kubeconfig,
                namespace: cli.namespace,
                lb_class_only: cli.lb_class_only,
                lease_name: cli.lease_name,
                identity: cli.pod_name.unwrap_or_else(default_identity),
            };
            ferrolb_controller::kubernetes::run(opts, metrics, health, shutdown.wait()).await
        }
    };
    process.stop();
    result.context("controller failed")
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .unwrap_or_else(|_| format!("ferrolb-controller-{}", std::process::id()))
}
