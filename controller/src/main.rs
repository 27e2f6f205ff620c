//! `ferrolb-controller`: parses flags, sets up telemetry, runs the controller.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Parser;
use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::standalone::StandaloneOptions;
use ferrolb_telemetry::{Health, LogFormat, Shutdown};
use prometheus_client::registry::Registry;

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
    ferrolb_telemetry::init_logging(cli.log_format, "info")?;
    let registry = Arc::new(Mutex::new(Registry::default()));
    let metrics = Metrics::register(&mut registry.lock().expect("registry lock"));
    let health = Health::default();
    ferrolb_telemetry::register_process_metrics(
        &mut registry.lock().expect("registry lock"),
        "ferrolb-controller",
        env!("CARGO_PKG_VERSION"),
        health.clone(),
    );
    let shutdown = Shutdown::on_signals()?;
    let registry_for_loader = registry.clone();
    let telemetry = ferrolb_telemetry::start_server(
        cli.metrics_addr,
        registry,
        health.clone(),
        shutdown.clone(),
    )
    .await?;

    let result = match cli.manifests {
        Some(dir) => {
            let mut opts = StandaloneOptions::new(dir);
            opts.lb_class_only = cli.lb_class_only;
            opts.loader_metrics
                .register(&mut registry_for_loader.lock().expect("registry lock"));
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
    telemetry.abort();
    result.context("controller failed")
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .unwrap_or_else(|_| format!("ferrolb-controller-{}", std::process::id()))
}
