//! Runs the L2 responder on one interface for the given IPs until SIGTERM/SIGINT, then prints
//! its counters. Used by bench/arp/run.sh.
//!
//!     l2respond IFACE IP [IP...]

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_arp::{Config, L2Responder};

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
    let (handle, mut events) = L2Responder::start(Config::default()).expect("start responder");
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
        "frames_received={} replies={} drops={:?} send_errors={} kernel_drops={}",
        c.frames_received,
        c.replies_total(),
        c.drops.iter().filter(|(_, v)| **v > 0).collect::<Vec<_>>(),
        c.send_errors,
        c.kernel_drops
    );
}
