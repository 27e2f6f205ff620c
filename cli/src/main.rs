//! `kubectl ferrolb` — a kubectl plugin (any `kubectl-NAME` binary on the PATH is one).
//!
//! ```text
//! kubectl ferrolb status [-o table|json|yaml] [--manifests DIR]
//! kubectl ferrolb why NAMESPACE/SERVICE [-o ...] [--manifests DIR]
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferrolb_cli::render::{self, Output};
use ferrolb_cli::{Inputs, gather, report};

/// Status of ferrolb: pools, Services and who announces them, BGP sessions, config errors.
#[derive(Parser, Debug)]
#[command(name = "kubectl-ferrolb", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table", global = true)]
    output: Output,
    /// Standalone mode: read the manifests directory DIR and its DIR/.ferrolb/ status files
    /// instead of Kubernetes.
    #[arg(long, value_name = "DIR", global = true)]
    manifests: Option<PathBuf>,
    /// The namespace ferrolb runs in (Kubernetes mode).
    #[arg(
        long,
        env = "FERROLB_NAMESPACE",
        default_value = "ferrolb-system",
        global = true
    )]
    ferrolb_namespace: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pools (used/free), LoadBalancer Services (IPs, announcing nodes), BGP sessions per node,
    /// configuration errors.
    Status,
    /// Why a Service has no address (or which pools could serve it).
    Why {
        /// NAMESPACE/NAME (NAME alone means namespace `default`).
        service: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (namespace, name) = match &cli.command {
        Command::Why { service } => match service.split_once('/') {
            Some((ns, n)) => (ns.to_string(), n.to_string()),
            None => ("default".to_string(), service.clone()),
        },
        Command::Status => (String::new(), String::new()),
    };
    let inputs: Inputs = match &cli.manifests {
        Some(dir) => gather::standalone(dir)
            .with_context(|| format!("reading the standalone directory {}", dir.display()))?,
        None => {
            let client = kube::Client::try_default()
                .await
                .context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
            let mut inputs = gather::kubernetes(client.clone(), &cli.ferrolb_namespace).await?;
            if matches!(cli.command, Command::Why { .. }) {
                inputs.events = gather::service_events(client, &namespace, &name).await?;
            }
            inputs
        }
    };
    let text = match cli.command {
        Command::Status => {
            let r = report::status(&inputs);
            match cli.output {
                Output::Table => render::status_table(&r),
                f => render::structured(&r, f)?,
            }
        }
        Command::Why { .. } => {
            let r = report::why(&inputs, &namespace, &name);
            match cli.output {
                Output::Table => render::why_text(&r),
                f => render::structured(&r, f)?,
            }
        }
    };
    print!("{text}");
    Ok(())
}
