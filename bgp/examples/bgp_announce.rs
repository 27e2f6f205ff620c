//! Benchmark sender: announces N IPv4 /32 and M IPv6 /128 to one peer and holds them until
//! SIGTERM/SIGINT. Prints one JSON line once every prefix is sent (timings, counters, RSS).
//!
//! ```text
//! bgp_announce --router-id 192.0.2.10 --peer 192.0.2.1 --local-as 64512 --peer-as 64513 \
//!              --v4 100000 --v6 20000 --next-hop6 2001:db8::10 [--v4-base 198.18.0.0] \
//!              [--connect-time SECS]
//! ```
//! `--connect-time`: the session's ConnectRetry time (default 1; 0 = the crate's default).
//! IPv4 routes count up from `--v4-base` (default 198.18.0.0, the RFC 2544 benchmarking
//! range); IPv6 routes from 2001:db8:100::.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ferrolb_bgp::{
    BgpSpeaker, GracefulMode, PeerConfig, PeerSelector, RouteAttrs, SpeakerConfig, State,
};
use ipnet::IpNet;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .or(default)
        .unwrap_or_else(|| panic!("missing or bad {name}"))
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let router_id: Ipv4Addr = arg(&args, "--router-id", None);
    let peer: IpAddr = arg(&args, "--peer", None);
    let local_as: u32 = arg(&args, "--local-as", Some(64512));
    let peer_as: u32 = arg(&args, "--peer-as", Some(64513));
    let n4: u32 = arg(&args, "--v4", Some(100_000));
    let n6: u32 = arg(&args, "--v6", Some(20_000));
    let nh6: Ipv6Addr = arg(&args, "--next-hop6", Some("2001:db8::10".parse()?));
    let base4: Ipv4Addr = arg(&args, "--v4-base", Some(Ipv4Addr::new(198, 18, 0, 0)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut routes = BTreeMap::new();
        for i in 0..n4 {
            let a = Ipv4Addr::from(u32::from(base4) + i);
            routes.insert(IpNet::new(IpAddr::V4(a), 32)?, RouteAttrs::default());
        }
        let base6 = u128::from("2001:db8:100::".parse::<Ipv6Addr>()?);
        for i in 0..n6 {
            let a = Ipv6Addr::from(base6 + i as u128);
            routes.insert(
                IpNet::new(IpAddr::V6(a), 128)?,
                RouteAttrs {
                    next_hop: Some(IpAddr::V6(nh6)),
                    ..Default::default()
                },
            );
        }
        let total = routes.len();
        let speaker = BgpSpeaker::new(SpeakerConfig::new(router_id))?;
        speaker.set_routes(PeerSelector::All, routes)?;
        let mut p = PeerConfig::new(peer, local_as, peer_as);
        let connect: u64 = arg(&args, "--connect-time", Some(1));
        if connect > 0 {
            p.connect_time = Duration::from_secs(connect);
        }
        let start = Instant::now();
        speaker.add_peer(p)?;
        let mut st = speaker.subscribe();
        let mut established = None;
        loop {
            let s = st.borrow_and_update().get(&ferrolb_bgp::PeerKey::from(peer)).cloned();
            if let Some(s) = s {
                if s.state == State::Established && established.is_none() {
                    established = Some(start.elapsed());
                }
                if s.prefixes_sent == total {
                    break;
                }
            }
            tokio::time::timeout(Duration::from_secs(60), st.changed()).await??;
        }
        let sent = start.elapsed();
        let c = speaker.counters();
        println!(
            "{{\"total\":{total},\"established_ms\":{:.3},\"all_sent_ms\":{:.3},\"updates_out\":{},\"update_bytes_out\":{},\"rss_kb\":{}}}",
            established.unwrap_or_default().as_secs_f64() * 1e3,
            sent.as_secs_f64() * 1e3,
            c.messages_out[2],
            c.update_bytes_out,
            rss_kb()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        speaker.shutdown(GracefulMode::CeaseAndWithdraw).await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
