//! Runs the L2 responder on one interface for the given IPs until SIGTERM/SIGINT, then prints
//! its counters. Used by bench/arp/run.sh.
//!
//!     l2respond IFACE IP [IP...]
//!
//! `L2RESPOND_NO_LIMIT=1` turns the per-source limit off (a bucket no flood empties), to
//! compare with the responder as it was before the limit.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_arp::{Config, L2Responder, Limits};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: l2respond IFACE IP [IP...]");
        std::process::exit(2);
    }
    let ips: BTreeSet<IpAddr> = args[1..]
        .iter()
        .map(|s| s.parse().expect("IP address"))
        .collect();
    let mut config = Config::default();
    if std::env::var_os("L2RESPOND_NO_LIMIT").is_some_and(|v| v == "1") {
        config.limits = Limits {
            per_source_rate: 1e12,
            per_source_burst: 1e12,
            ..Limits::default()
        };
    }
    let (handle, mut events) = L2Responder::start(config).expect("start responder");
    handle.set_owned(&args[0], ips).expect("set_owned");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    eprintln!("l2respond: serving {} for {:?}", args[0], &args[1..]);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            ev = events.recv() => match ev {
                Some(ev) => eprintln!("l2respond: event {ev:?}"),
                None => break,
            },
        }
    }
    let c = handle.counters();
    println!(
        "frames_received={} replies={} drops={:?} send_errors={} kernel_drops={} conflicts={} conflicts_suppressed={}",
        c.frames_received,
        c.replies_total(),
        c.drops.iter().filter(|(_, v)| **v > 0).collect::<Vec<_>>(),
        c.send_errors,
        c.kernel_drops,
        c.conflicts,
        c.conflicts_suppressed
    );
}
