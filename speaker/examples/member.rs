//! A standalone membership member, for the benchmark (`bench/membership/run.sh`) and for
//! trying membership by hand. Prints one line per live-set change on stdout:
//!
//! ```text
//! <unix time in ns> live node-0,node-1,node-2
//! ```
//!
//! one line of counters a second (UDP payload bytes received and sent so far, members this
//! one's ring monitor declared down):
//!
//! ```text
//! <unix time in ns> stats <bytes_in> <bytes_out> <declared_dead>
//! ```
//!
//! and, on SIGTERM or SIGINT, leaves gracefully (`<ns> left`) and exits.
//!
//! ```text
//! member --name node-0 --bind 192.0.2.10:7946 --seed 192.0.2.11:7946 --key-file key
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use clap::builder::PossibleValuesParser;
use ferrolb_speaker::membership::{Membership, MembershipConfig, Tuning};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    name: String,
    #[arg(long)]
    bind: SocketAddr,
    #[arg(long = "seed")]
    seeds: Vec<SocketAddr>,
    /// File holding the shared key (at least 16 bytes).
    #[arg(long)]
    key_file: PathBuf,
    /// Timers: `fast` (ferrolb's defaults: ring monitor + relaxed SWIM), `swim-only` (SWIM
    /// alone with the earlier defaults) or `memberlist-lan` (hashicorp/memberlist
    /// DefaultLANConfig timers and a gossip-only leave, as MetalLB uses them).
    #[arg(long, default_value = "fast", value_parser = PossibleValuesParser::new(Tuning::NAMES))]
    profile: String,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let key = std::fs::read(&args.key_file)
        .with_context(|| format!("reading key file {}", args.key_file.display()))?;
    let tuning = Tuning::named(&args.profile).context("unknown --profile")?;
    let (handle, mut live) = Membership::start(MembershipConfig {
        node_name: args.name,
        bind: args.bind,
        advertise: None,
        seeds: args.seeds,
        key,
        tuning,
    })
    .await
    .context("starting membership")?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let print = |set: &std::collections::BTreeSet<String>| {
        let names: Vec<&str> = set.iter().map(String::as_str).collect();
        println!("{} live {}", now_ns(), names.join(","));
    };
    print(&live.borrow());
    let mut stats = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stats.tick() => {
                let m = handle.metrics();
                println!("{} stats {} {} {}", now_ns(), m.bytes_in, m.bytes_out, m.declared_dead);
            }
            changed = live.changed() => {
                if changed.is_err() { break; }
                print(&live.borrow_and_update());
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let m = handle.metrics();
    handle.leave().await.context("leaving membership")?;
    println!("{} left", now_ns());
    eprintln!("metrics {m:?}");
    Ok(())
}
