//! In-process throughput of `Responder::handle` (decode + decide + build the reply), no
//! sockets: an upper bound for one core. Used by bench/arp/run.sh.
//!
//!     handle_throughput [SECONDS]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_arp::packet::{
    ArpOp, ArpPacket, ETHERTYPE_ARP, ETHERTYPE_IPV6, EthernetHeader, Frame, Ipv6Header, NdpMessage,
    NdpOptions, Payload, solicited_node, solicited_node_mac,
};
use ferrolb_arp::{MacAddr, Responder, Verdict};

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS"))
        .unwrap_or(2.0);
    let me = MacAddr([2, 0, 0, 0, 0x0a, 1]);
    let them = MacAddr([2, 0, 0, 0, 0x0c, 1]);
    // 256 owned IPs per family: a realistic large node.
    let mut owned: BTreeSet<IpAddr> = BTreeSet::new();
    for i in 0..256u32 {
        owned.insert(IpAddr::V4(std::net::Ipv4Addr::from(
            0xc000_0200 + (i % 256),
        )));
        owned.insert(IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i),
        )));
    }
    let mut r = Responder::new(me);
    r.set_owned(&owned);
    let arp = Frame {
        eth: EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: them,
            vlan: None,
            ethertype: ETHERTYPE_ARP,
        },
        payload: Payload::Arp(ArpPacket {
            op: ArpOp::Request,
            sha: them,
            spa: "198.51.100.1".parse().unwrap(),
            tha: MacAddr::ZERO,
            tpa: "192.0.2.77".parse().unwrap(),
        }),
    }
    .to_bytes();
    let target = "2001:db8::4d".parse().unwrap();
    let ns = Frame {
        eth: EthernetHeader {
            dst: solicited_node_mac(&target),
            src: them,
            vlan: None,
            ethertype: ETHERTYPE_IPV6,
        },
        payload: Payload::Ndp {
            ip: Ipv6Header::ndp("fe80::1".parse().unwrap(), solicited_node(&target)),
            msg: NdpMessage::NeighborSolicit {
                target,
                options: NdpOptions {
                    source_lla: Some(them),
                    ..NdpOptions::default()
                },
            },
        },
    }
    .to_bytes();
    for (name, frame) in [("arp_request", &arp[..]), ("ndp_ns", &ns[..])] {
        assert!(matches!(r.handle(frame), Verdict::Reply { .. }));
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs_f64(secs) {
            for _ in 0..1000 {
                black_box(r.handle(black_box(frame)));
            }
            n += 1000;
        }
        let el = start.elapsed().as_secs_f64();
        println!(
            "kind={name} replies={n} seconds={el:.2} replies_per_s={:.0} ns_per_reply={:.0}",
            n as f64 / el,
            el * 1e9 / n as f64
        );
    }
}
