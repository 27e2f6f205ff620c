//! `ferrolb-speaker`: parses flags, sets up telemetry, runs the speaker.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::run::{MembersOptions, Options};
use ferrolb_speaker::source::ClusterSource;
use ferrolb_speaker::source::kubernetes::Kubernetes;
use ferrolb_speaker::source::standalone::Standalone;
use ferrolb_telemetry::{LogFormat, Process};

/// ferrolb speaker: announces Service IPs of this node over ARP/NDP and BGP.
/// The membership UDP port (memberlist's), used with `POD_IP` in Kubernetes mode.
const MEMBERS_PORT: u16 = 7946;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// This node's name (the Node object that supplies its labels).
    #[arg(long, env = "NODE_NAME")]
    node: String,
    /// Standalone mode: read manifests from DIR (and the controller's DIR/.ferrolb/status.yaml).
    #[arg(long, value_name = "DIR", conflicts_with = "kubeconfig")]
    manifests: Option<PathBuf>,
    /// Kubeconfig file (default: in-cluster config).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// UDP address for membership (e.g. 192.0.2.11:7946). Standalone: without it this
    /// speaker runs alone. Kubernetes: defaults to $POD_IP:7946.
    #[arg(long, value_name = "IP:PORT")]
    members_bind: Option<SocketAddr>,
    /// Other speakers' membership addresses (Kubernetes: added to the speaker Pods found).
    #[arg(long, value_name = "IP:PORT,...", value_delimiter = ',')]
    members_seeds: Vec<SocketAddr>,
    /// File holding the shared membership key (any bytes, at least 16). Kubernetes: defaults
    /// to /etc/ferrolb/memberlist/secretkey (the Secret ferrolb-memberlist, key secretkey).
    #[arg(long, value_name = "FILE")]
    members_key_file: Option<PathBuf>,
    /// Kubernetes: run without membership; the live set is then the nodes whose speaker Pod
    /// is Ready (failover as slow as the Pod's readiness). For one-node tests.
    #[arg(long, conflicts_with_all = ["members_bind", "members_key_file", "manifests"])]
    no_members: bool,
    /// Namespace of the ferrolb objects, the speaker Pods and the SpeakerStates (Kubernetes
    /// mode): the speaker Pod's own namespace (install.yaml sets POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "ferrolb-system")]
    namespace: String,
    /// Seconds between re-publications of this node's SpeakerState when nothing changes:
    /// its `lastUpdate` is the speaker's heartbeat (much older means the speaker is gone).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    state_heartbeat: u64,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, default_value = "0.0.0.0:7473")]
    metrics_addr: SocketAddr,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: LogFormat,
    /// BGP only: ignore L2Advertisements, never open an ARP/NDP socket (no CAP_NET_RAW
    /// needed). Use it on every speaker or none.
    #[arg(long)]
    no_l2: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Before the runtime starts any thread (see `sys::one_malloc_arena`).
    let one_arena = ferrolb_speaker::sys::one_malloc_arena();
    // Two workers whatever the node's size: the speaker's work is small and mostly waiting,
    // and every worker costs a stack and queues (one per core would be 64 on a big node).
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(2));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(speaker(cli, one_arena))
}

async fn speaker(cli: Cli, one_arena: bool) -> anyhow::Result<()> {
    let process = Process::start(
        "ferrolb-speaker",
        env!("CARGO_PKG_VERSION"),
        cli.log_format,
        cli.metrics_addr,
    )
    .await?;
    let metrics = Metrics::default();
    process.register(|r| metrics.register(r));
    let (health, shutdown) = (process.health.clone(), process.shutdown.clone());
    tracing::debug!(one_arena, "allocator: one glibc arena");

    let mut opts = Options::new(cli.node.clone());
    opts.namespace = cli.namespace.clone();
    opts.heartbeat = Duration::from_secs(cli.state_heartbeat);
    opts.l2 = !cli.no_l2;
    let kubernetes = cli.manifests.is_none();
    let (bind, key) = membership_bind_and_key(&cli, kubernetes)?;
    let source: Arc<dyn ClusterSource> = match (cli.manifests, cli.kubeconfig) {
        (Some(dir), _) => {
            // The loader already waits until a change is whole (2 ms after a rename or close,
            // else 20 ms of quiet): a second long debounce here would only add latency.
            opts.debounce = std::time::Duration::from_millis(5);
            let loader = ferrolb_cluster::Metrics::default();
            process.register(|r| loader.register(r));
            Arc::new(Standalone::start(dir, cli.node, loader)?)
        }
        (None, kubeconfig) => {
            let client = kube_client(kubeconfig).await?;
            Arc::new(Kubernetes::start(client, cli.node, cli.namespace.clone()))
        }
    };
    if let (Some(bind), Some(key)) = (bind, key) {
        opts.members = Some(MembersOptions {
            bind,
            seeds: cli.members_seeds,
            key,
            tuning: Default::default(),
        });
    } else if kubernetes {
        tracing::warn!(
            "membership disabled (--no-members): the live set is the nodes whose speaker Pod is Ready"
        );
    }
    let result = ferrolb_speaker::run::run(opts, source, metrics, health, shutdown.wait()).await;
    process.stop();
    result.context("speaker failed")
}

/// The membership address and key (Kubernetes mode: membership on by default, bound to the
/// Pod IP, the node's with hostNetwork; key from the mounted Secret). The key is read before
/// connecting anywhere: a missing key is the first thing to report.
fn membership_bind_and_key(
    cli: &Cli,
    kubernetes: bool,
) -> anyhow::Result<(Option<SocketAddr>, Option<Vec<u8>>)> {
    let bind = match cli.members_bind {
        Some(bind) => Some(bind),
        None if kubernetes && !cli.no_members => Some(pod_ip_bind()?),
        None => None,
    };
    let key_file = cli
        .members_key_file
        .clone()
        .or_else(|| kubernetes.then(|| PathBuf::from(KUBE_KEY_FILE)));
    let key = match bind {
        Some(_) => {
            let path = key_file.context("--members-bind needs --members-key-file")?;
            Some(std::fs::read(&path).with_context(|| {
                format!(
                    "failed to read the membership key file {} (Kubernetes: the Secret ferrolb-memberlist, key secretkey, which the controller creates)",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    Ok((bind, key))
}

/// A client from `--kubeconfig`, or the in-cluster config.
async fn kube_client(kubeconfig: Option<PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(&path)
                .with_context(|| format!("failed to read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("failed to find the in-cluster Kubernetes config")?,
    };
    kube::Client::try_from(config).context("failed to build the Kubernetes client")
}

/// Where install.yaml mounts the membership key (Secret ferrolb-memberlist, key secretkey).
const KUBE_KEY_FILE: &str = "/etc/ferrolb/memberlist/secretkey";

/// `$POD_IP:7946`, the Kubernetes default of `--members-bind`.
fn pod_ip_bind() -> anyhow::Result<SocketAddr> {
    let ip = std::env::var("POD_IP").map_err(|_| {
        anyhow::anyhow!(
            "Kubernetes mode runs membership: set POD_IP (fieldRef status.podIP) or --members-bind, or pass --no-members"
        )
    })?;
    let ip: std::net::IpAddr = ip
        .trim()
        .parse()
        .with_context(|| format!("POD_IP {ip:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, MEMBERS_PORT))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_namespace_comes_from_pod_namespace() {
        let cmd = Cli::command();
        let ns = cmd
            .get_arguments()
            .find(|a| a.get_id() == "namespace")
            .expect("--namespace");
        assert_eq!(
            ns.get_env().and_then(|e| e.to_str()),
            Some("POD_NAMESPACE"),
            "install.yaml sets POD_NAMESPACE; the speaker must use it"
        );
    }

    #[test]
    fn the_heartbeat_is_bounded() {
        let parse = |v: &str| Cli::try_parse_from(["s", "--node", "n1", "--state-heartbeat", v]);
        assert_eq!(parse("5").unwrap().state_heartbeat, 5);
        assert!(parse("0").is_err());
    }
}
