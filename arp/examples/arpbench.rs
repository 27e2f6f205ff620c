//! ARP request generator for bench/arp/run.sh, run in the client namespace on an AF_PACKET
//! socket (the crate's `PacketSocket`), so the kernel and our responder are measured by the
//! same tool in the same run.
//!
//!     arpbench latency IFACE SRC_IP COUNT TARGET [TARGET...]
//!         One request at a time, targets interleaved (A B A B ...); prints p50/p90/p99/max
//!         round-trip time per target in microseconds. IPv4: ARP requests; IPv6: Neighbor
//!         Solicitations to the target's solicited-node group (SRC_IP of the same family).
//!         The gap between a reply and the next request is ARPBENCH_GAP_US (default 200 µs).
//!     arpbench blast IFACE SRC_IP SECONDS WINDOW TARGET
//!         Keeps WINDOW requests outstanding for SECONDS; prints replies per second.
//!     arpbench flood IFACE SRC_IP RATE SECONDS DST_MAC TARGET [TARGET...]
//!         Sends ARP requests for the targets in turn (A B A B ...) to DST_MAC at RATE per
//!         second (paced per millisecond) for SECONDS, reading nothing; prints what went out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ferrolb_arp::packet::{
    ArpOp, ETHERTYPE_IPV6, EthernetHeader, Frame, Ipv6Header, NdpMessage, NdpOptions, Payload,
    solicited_node, solicited_node_mac,
};
use ferrolb_arp::{MacAddr, PacketSocket};

fn request(mac: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    Frame::arp_request(mac, spa, tpa).to_bytes().to_vec()
}

fn solicitation(mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    Frame {
        eth: EthernetHeader {
            dst: solicited_node_mac(&target),
            src: mac,
            vlan: None,
            ethertype: ETHERTYPE_IPV6,
        },
        payload: Payload::Ndp {
            ip: Ipv6Header::ndp(src, solicited_node(&target)),
            msg: NdpMessage::NeighborSolicit {
                target,
                options: NdpOptions {
                    source_lla: Some(mac),
                    ..NdpOptions::default()
                },
            },
        },
    }
    .to_bytes()
    .to_vec()
}

fn request_for(mac: MacAddr, src: IpAddr, target: IpAddr) -> Vec<u8> {
    match (src, target) {
        (IpAddr::V4(s), IpAddr::V4(t)) => request(mac, s, t),
        (IpAddr::V6(s), IpAddr::V6(t)) => solicitation(mac, s, t),
        _ => panic!("SRC_IP and TARGET must be of the same family"),
    }
}

/// The IP a reply (ARP reply or solicited NA) addressed to `mac` answers for.
fn answer_for(frame: &[u8], mac: MacAddr) -> Option<IpAddr> {
    match Frame::decode(frame) {
        Ok(Frame {
            payload: Payload::Arp(a),
            ..
        }) if a.op == ArpOp::Reply && a.tha == mac => Some(IpAddr::V4(a.spa)),
        Ok(Frame {
            eth,
            payload:
                Payload::Ndp {
                    msg: NdpMessage::NeighborAdvert { flags, target, .. },
                    ..
                },
        }) if eth.dst == mac && flags.solicited => Some(IpAddr::V6(target)),
        _ => None,
    }
}

/// The sender IP of an ARP reply addressed to `mac`, if `frame` is one.
fn reply_from(frame: &[u8], mac: MacAddr) -> Option<Ipv4Addr> {
    match Frame::decode(frame) {
        Ok(Frame {
            payload: Payload::Arp(a),
            ..
        }) if a.op == ArpOp::Reply && a.tha == mac => Some(a.spa),
        _ => None,
    }
}

fn mac_of(iface: &str) -> MacAddr {
    let out = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .expect("read interface MAC");
    out.trim().parse().expect("MAC")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Sends `frames` in turn at `rate` per second for `secs`, paced per millisecond;
/// returns (sent, refused by the kernel, elapsed seconds).
fn flood(sock: &PacketSocket, frames: &[Vec<u8>], rate: f64, secs: f64) -> (u64, u64, f64) {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let (mut sent, mut refused, mut i) = (0u64, 0u64, 0usize);
    while Instant::now() < end {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while sent + refused < due {
            match sock.send(&frames[i % frames.len()]) {
                Ok(_) => sent += 1,
                Err(_) => refused += 1,
            }
            i += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (sent, refused, start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!(
            "usage: arpbench latency IFACE SRC_IP COUNT TARGET...\n       arpbench blast IFACE SRC_IP SECONDS WINDOW TARGET"
        );
        std::process::exit(2);
    }
    let iface = &args[1];
    let src: IpAddr = args[2].parse().expect("SRC_IP");
    let mac = mac_of(iface);
    let sock = PacketSocket::open(iface)
        .expect("open packet socket")
        .into_async()
        .expect("register socket");
    let mut buf = vec![0u8; 2048];
    match args[0].as_str() {
        "latency" => {
            let count: usize = args[3].parse().expect("COUNT");
            let targets: Vec<IpAddr> = args[4..]
                .iter()
                .map(|s| s.parse().expect("TARGET"))
                .collect();
            let mut rtts: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
            let mut lost = vec![0usize; targets.len()];
            let gap_us: u64 = std::env::var("ARPBENCH_GAP_US")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200);
            for i in 0..count * targets.len() {
                let t = i % targets.len();
                let frame = request_for(mac, src, targets[t]);
                let start = Instant::now();
                sock.get_ref().send(&frame).expect("send");
                let deadline = start + Duration::from_millis(200);
                let got = loop {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    let Ok(guard) = tokio::time::timeout(wait, sock.readable()).await else {
                        break false;
                    };
                    let mut guard = guard.expect("readable");
                    let mut found = false;
                    loop {
                        match sock.get_ref().try_recv(&mut buf) {
                            Ok(r) => {
                                if answer_for(&buf[r], mac) == Some(targets[t]) {
                                    found = true;
                                    break;
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                guard.clear_ready();
                                break;
                            }
                            Err(e) => panic!("recv: {e}"),
                        }
                    }
                    if found {
                        break true;
                    }
                };
                if got {
                    rtts[t].push(start.elapsed().as_secs_f64() * 1e6);
                } else {
                    lost[t] += 1;
                }
                // Gap so requests do not queue behind each other.
                tokio::time::sleep(Duration::from_micros(gap_us)).await;
            }
            for (t, ip) in targets.iter().enumerate() {
                let v = &mut rtts[t];
                v.sort_by(|a, b| a.total_cmp(b));
                println!(
                    "target={ip} n={} lost={} p50_us={:.1} p90_us={:.1} p99_us={:.1} max_us={:.1}",
                    v.len(),
                    lost[t],
                    pct(v, 0.5),
                    pct(v, 0.9),
                    pct(v, 0.99),
                    v.last().copied().unwrap_or(f64::NAN)
                );
            }
        }
        "blast" => {
            let secs: f64 = args[3].parse().expect("SECONDS");
            let window: usize = args[4].parse().expect("WINDOW");
            let target: Ipv4Addr = args[5].parse().expect("TARGET");
            let IpAddr::V4(spa) = src else {
                panic!("blast is ARP only: SRC_IP must be IPv4")
            };
            let frame = request(mac, spa, target);
            let start = Instant::now();
            let end = start + Duration::from_secs_f64(secs);
            let (mut sent, mut replies, mut stalls) = (0u64, 0u64, 0u64);
            let mut outstanding = 0usize;
            while Instant::now() < end {
                while outstanding < window {
                    match sock.get_ref().send(&frame) {
                        Ok(_) => {
                            sent += 1;
                            outstanding += 1;
                        }
                        Err(_) => break,
                    }
                }
                match tokio::time::timeout(Duration::from_millis(20), sock.readable()).await {
                    Err(_) => {
                        // Requests or replies were lost somewhere: refill the window.
                        stalls += 1;
                        outstanding = 0;
                    }
                    Ok(guard) => {
                        let mut guard = guard.expect("readable");
                        loop {
                            match sock.get_ref().try_recv(&mut buf) {
                                Ok(r) => {
                                    if reply_from(&buf[r], mac) == Some(target) {
                                        replies += 1;
                                        outstanding = outstanding.saturating_sub(1);
                                    }
                                }
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                    guard.clear_ready();
                                    break;
                                }
                                Err(e) => panic!("recv: {e}"),
                            }
                        }
                    }
                }
            }
            let el = start.elapsed().as_secs_f64();
            println!(
                "target={target} seconds={el:.2} sent={sent} replies={replies} stalls={stalls} replies_per_s={:.0}",
                replies as f64 / el
            );
        }
        "flood" => {
            let rate: f64 = args[3].parse().expect("RATE");
            let secs: f64 = args[4].parse().expect("SECONDS");
            let dst: MacAddr = args[5].parse().expect("DST_MAC");
            let IpAddr::V4(spa) = src else {
                panic!("flood is ARP only: SRC_IP must be IPv4")
            };
            let frames: Vec<Vec<u8>> = args[6..]
                .iter()
                .map(|t| {
                    let mut f = request(mac, spa, t.parse().expect("TARGET"));
                    f[..6].copy_from_slice(&dst.0);
                    f
                })
                .collect();
            let (sent, refused, el) = flood(sock.get_ref(), &frames, rate, secs);
            println!(
                "flood sent={sent} refused={refused} seconds={el:.2} rate_per_s={:.0}",
                sent as f64 / el
            );
        }
        other => panic!("unknown mode {other}"),
    }
}
