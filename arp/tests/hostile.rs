//! Requests no reply may go to (invalid senders) and Neighbor Solicitations behind IPv6
//! extension headers (captured from the Linux kernel, see `vectors/capture_exthdr.sh`).

mod common;

use std::net::Ipv4Addr;

use ferrolb_arp::packet::{
    ArpOp, ArpPacket, DecodeError, ETHERTYPE_ARP, EthernetHeader, Frame, Payload,
};
use ferrolb_arp::{DropReason, MacAddr, ReplyKind, Responder, Verdict};

const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SERVER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn responder(ips: &[&str]) -> Responder {
    let mut r = Responder::new(SERVER);
    r.set_owned(&ips.iter().map(|s| s.parse().unwrap()).collect());
    r
}

fn arp_request(eth_src: MacAddr, sha: MacAddr, spa: &str, tpa: &str) -> Vec<u8> {
    Frame {
        eth: EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: eth_src,
            vlan: None,
            ethertype: ETHERTYPE_ARP,
        },
        payload: Payload::Arp(ArpPacket {
            op: ArpOp::Request,
            sha,
            spa: spa.parse::<Ipv4Addr>().unwrap(),
            tha: MacAddr::ZERO,
            tpa: tpa.parse().unwrap(),
        }),
    }
    .to_bytes()
    .to_vec()
}

#[test]
fn arp_requests_from_invalid_senders_get_no_reply() {
    let r = responder(&["192.0.2.10"]);
    for spa in [
        "255.255.255.255",
        "224.0.0.1",
        "239.255.255.250",
        "127.0.0.1",
        "0.1.2.3",
    ] {
        assert_eq!(
            r.handle(&arp_request(CLIENT, CLIENT, spa, "192.0.2.10")),
            Verdict::Drop(DropReason::InvalidSender),
            "sender {spa}"
        );
    }
    let group = MacAddr([0x01, 0, 0x5e, 0, 0, 1]);
    for (eth_src, sha) in [
        (group, CLIENT),
        (CLIENT, group),
        (CLIENT, MacAddr::BROADCAST),
    ] {
        assert_eq!(
            r.handle(&arp_request(eth_src, sha, "192.0.2.1", "192.0.2.10")),
            Verdict::Drop(DropReason::InvalidSender),
            "eth src {eth_src}, sha {sha}"
        );
    }
    // The ordinary request and the RFC 5227 probe (sender 0.0.0.0) are still answered.
    let kind = |v| match v {
        Verdict::Reply { kind, .. } => kind,
        other => panic!("no reply: {other:?}"),
    };
    let ok = arp_request(CLIENT, CLIENT, "192.0.2.1", "192.0.2.10");
    assert_eq!(kind(r.handle(&ok)), ReplyKind::Arp);
    let probe = arp_request(CLIENT, CLIENT, "0.0.0.0", "192.0.2.10");
    assert_eq!(kind(r.handle(&probe)), ReplyKind::ArpProbe);
}

#[test]
fn ns_from_invalid_senders_gets_no_reply() {
    let r = responder(&["2001:db8::10"]);
    // The captured ndisc6 NS from fe80::ff:fe00:1 with SLLA 02:00:00:00:00:01.
    let ns = common::one("ndisc6_ns", 0);
    assert!(matches!(r.handle(&ns), Verdict::Reply { .. }));
    // Source link-layer option set to a group MAC: the reply would be multicast.
    let mut b = ns.clone();
    b[80] = 0x01;
    fix_checksum(&mut b, 54);
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::InvalidSender));
    // Ethernet source a group MAC.
    let mut b = ns.clone();
    b[6] = 0x03;
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::InvalidSender));
    // IPv6 source ::1 (RFC 4291 §2.5.3: never sent on a link).
    let mut b = ns.clone();
    b[22..38].copy_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    fix_checksum(&mut b, 54);
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::InvalidSender));
}

/// Recomputes the ICMPv6 checksum of an untagged IPv6 frame whose ICMPv6 message starts at
/// `icmp` (54 without extension headers).
fn fix_checksum(b: &mut [u8], icmp: usize) {
    let src = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&b[22..38]).unwrap());
    let dst = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&b[38..54]).unwrap());
    let sum = ferrolb_arp::packet::icmpv6_checksum(&src, &dst, &b[icmp..]);
    b[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn ns_behind_extension_headers_is_answered_like_the_kernel() {
    let r = responder(&["2001:db8::10"]);
    for capture in ["ns_hop_by_hop", "ns_hop_by_hop_dstopts"] {
        let f = common::frames(capture);
        match r.handle(&f[0]) {
            Verdict::Reply { frame, kind } => {
                assert_eq!(kind, ReplyKind::NaMulticastNs, "{capture}");
                assert_eq!(
                    frame.to_vec(),
                    f[1],
                    "{capture}: differs from the kernel's NA"
                );
            }
            other => panic!("{capture}: {other:?}"),
        }
    }
}

#[test]
fn extension_header_walk_is_bounded_and_strict() {
    // The captured Hop-by-Hop NS: the header sits at 54..62, ICMPv6 from 62.
    let base = common::one("ns_hop_by_hop", 0);
    // Nine Destination Options headers in a row (more than MAX_EXTENSION_HEADERS).
    let mut b = base[..54].to_vec();
    b[20] = 60;
    let icmp = base[62..].to_vec();
    for _ in 0..9 {
        b.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    let last = b.len() - 8;
    b[last] = 58;
    b.extend_from_slice(&icmp);
    let plen = (b.len() - 54) as u16;
    b[18..20].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(
        Frame::decode(&b),
        Err(DecodeError::BadExtensionHeader { next_header: 60 })
    );
    // A Hop-by-Hop header that is not the first one.
    let mut b = base.clone();
    b[20] = 60; // IPv6 next header: Destination Options ...
    b[54] = 0; // ... followed by Hop-by-Hop
    assert_eq!(
        Frame::decode(&b),
        Err(DecodeError::BadExtensionHeader { next_header: 0 })
    );
    // A header running past the payload.
    let mut b = base.clone();
    b[55] = 200;
    assert!(matches!(
        Frame::decode(&b),
        Err(DecodeError::Truncated { .. })
    ));
    // A Fragment header (RFC 6980: fragmented NDP is dropped).
    let mut b = base.clone();
    b[54] = 44;
    assert_eq!(
        responder(&["2001:db8::10"]).handle(&b),
        Verdict::Drop(DropReason::Unsupported)
    );
}
