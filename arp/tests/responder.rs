//! The responder's decisions on captured frames. Where the Linux kernel answered the same
//! request in the capture, our reply must be byte-identical to the kernel's.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use ferrolb_arp::packet::{Frame, NdpMessage, Payload, icmpv6_checksum};
use ferrolb_arp::{DropReason, MacAddr, ReplyKind, Responder, Verdict, announcements};
use proptest::prelude::*;

const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SERVER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn responder(ips: &[&str]) -> Responder {
    let mut r = Responder::new(SERVER);
    r.set_owned(&ips.iter().map(|s| s.parse().unwrap()).collect());
    r
}

fn reply(v: Verdict) -> (Vec<u8>, ReplyKind) {
    match v {
        Verdict::Reply { frame, kind } => (frame.to_vec(), kind),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// Recomputes the ICMPv6 checksum of an edited frame (untagged, IPv6).
fn fix_checksum(b: &mut [u8]) {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&b[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&b[38..54]).unwrap());
    let len = usize::from(u16::from_be_bytes([b[18], b[19]]));
    let sum = icmpv6_checksum(&src, &dst, &b[54..54 + len]);
    b[56..58].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn arp_request_reply_matches_kernel() {
    let r = responder(&["192.0.2.10"]);
    for capture in ["arping_req", "kernel_arp"] {
        let f = common::frames(capture);
        let (bytes, kind) = reply(r.handle(&f[0]));
        assert_eq!(kind, ReplyKind::Arp);
        assert_eq!(
            bytes, f[1],
            "{capture}: our reply differs from the kernel's"
        );
    }
}

#[test]
fn arp_probe_is_answered_like_the_kernel() {
    // RFC 5227: answering the DAD probe makes the prober back off.
    let r = responder(&["192.0.2.10"]);
    let f = common::frames("arping_probe0");
    let (bytes, kind) = reply(r.handle(&f[0]));
    assert_eq!(kind, ReplyKind::ArpProbe);
    assert_eq!(bytes, f[1]);
}

#[test]
fn unowned_and_removed_ips_are_not_answered() {
    let mut r = responder(&["192.0.2.99", "2001:db8::99"]);
    assert_eq!(
        r.handle(&common::one("arping_req", 0)),
        Verdict::Drop(DropReason::NotOwned)
    );
    assert_eq!(
        r.handle(&common::one("ndisc6_ns", 0)),
        Verdict::Drop(DropReason::NotOwned)
    );
    r.set_owned(&["192.0.2.10".parse().unwrap()].into());
    assert!(matches!(
        r.handle(&common::one("arping_req", 0)),
        Verdict::Reply { .. }
    ));
    r.set_owned(&BTreeSet::new());
    assert_eq!(
        r.handle(&common::one("arping_req", 0)),
        Verdict::Drop(DropReason::NotOwned)
    );
}

#[test]
fn unicast_arp_to_another_mac_is_not_for_us() {
    let r = responder(&["192.0.2.10"]);
    let mut b = common::one("arping_req", 0);
    b[..6].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::NotForUs));
    // Unicast to our MAC is answered (a refresh of an existing entry).
    b[..6].copy_from_slice(&SERVER.0);
    assert!(matches!(r.handle(&b), Verdict::Reply { .. }));
}

#[test]
fn multicast_ns_reply_matches_kernel() {
    let r = responder(&["2001:db8::10"]);
    for capture in ["ndisc6_ns", "kernel_ns_mcast"] {
        let f = common::frames(capture);
        let (bytes, kind) = reply(r.handle(&f[0]));
        assert_eq!(kind, ReplyKind::NaMulticastNs);
        assert_eq!(bytes, f[1], "{capture}: our NA differs from the kernel's");
    }
}

#[test]
fn unicast_ns_is_answered_with_override_and_tlla() {
    // The kernel answers a unicast NS with O=0 and no TLLA; RFC 4861 §7.2.4 lets us include
    // the TLLA, and then O SHOULD be 1. We do, so a stale entry is refreshed to our MAC.
    let r = responder(&["2001:db8::10"]);
    let ns = common::one("kernel_ns_unicast", 0);
    let (bytes, kind) = reply(r.handle(&ns));
    assert_eq!(kind, ReplyKind::NaUnicastNs);
    let f = Frame::decode(&bytes).unwrap();
    assert_eq!(f.eth.dst, CLIENT);
    assert_eq!(f.eth.src, SERVER);
    let Payload::Ndp { ip, msg } = f.payload else {
        panic!()
    };
    assert_eq!(ip.src, "2001:db8::10".parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip.dst, "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(ip.hop_limit, 255);
    let NdpMessage::NeighborAdvert {
        flags,
        target,
        options,
    } = msg
    else {
        panic!()
    };
    assert!(flags.solicited && flags.override_ && !flags.router);
    assert_eq!(target, ip.src);
    assert_eq!(options.target_lla, Some(SERVER));
    // Unicast to another MAC: not ours to answer.
    let mut other = ns.clone();
    other[..6].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    assert_eq!(r.handle(&other), Verdict::Drop(DropReason::NotForUs));
}

#[test]
fn dad_probe_for_owned_ip_is_defended_to_all_nodes() {
    // Kernel DAD NS for 2001:db8::2 (from ::). If we own it, RFC 4861 §7.2.4: NA to
    // ff02::1, S=0, O=1.
    let r = responder(&["2001:db8::2"]);
    let (bytes, kind) = reply(r.handle(&common::one("kernel_dad_ns", 0)));
    assert_eq!(kind, ReplyKind::NaDad);
    let f = Frame::decode(&bytes).unwrap();
    assert_eq!(f.eth.dst, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    let Payload::Ndp { ip, msg } = f.payload else {
        panic!()
    };
    assert_eq!(ip.dst, "ff02::1".parse::<Ipv6Addr>().unwrap());
    let NdpMessage::NeighborAdvert { flags, .. } = msg else {
        panic!()
    };
    assert!(!flags.solicited && flags.override_ && !flags.router);
}

#[test]
fn invalid_ndp_is_dropped() {
    let r = responder(&["2001:db8::10"]);
    // Hop limit 254: forwarded, must be ignored (not in the checksum).
    let mut b = common::one("ndisc6_ns", 0);
    b[21] = 254;
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::InvalidNdp));
    // ICMP code 1.
    let mut b = common::one("ndisc6_ns", 0);
    b[55] = 1;
    fix_checksum(&mut b);
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::InvalidNdp));
    // DAD probe with a source link-layer option: build it from the ndisc6 NS with src ::.
    let mut b = common::one("ndisc6_ns", 0);
    b[22..38].fill(0);
    fix_checksum(&mut b);
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::InvalidNdp));
    // Bad checksum.
    let mut b = common::one("ndisc6_ns", 0);
    b[57] ^= 0xff;
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::BadChecksum));
    // Zero-length option.
    let mut b = common::one("ndisc6_ns", 0);
    b[79] = 0;
    fix_checksum(&mut b);
    assert_eq!(r.handle(&b), Verdict::Drop(DropReason::BadOption));
}

#[test]
fn vlan_tagged_request_is_dropped_by_name() {
    let r = responder(&["192.0.2.11"]);
    assert_eq!(
        r.handle(&common::one("vlan_arp", 0)),
        Verdict::Drop(DropReason::VlanTagged)
    );
}

#[test]
fn truncated_frames_are_dropped() {
    let r = responder(&["192.0.2.10", "2001:db8::10"]);
    for name in ["arping_req", "ndisc6_ns", "kernel_ns_unicast"] {
        let b = common::one(name, 0);
        for n in 0..b.len() {
            let v = r.handle(&b[..n]);
            if n < 42 || name != "arping_req" {
                assert!(
                    matches!(v, Verdict::Drop(DropReason::Truncated)),
                    "{name}[..{n}]: {v:?}"
                );
            }
        }
    }
}

#[test]
fn other_hosts_claiming_our_ips_are_conflicts() {
    // arping -U -P / -U from CLIENT for 192.0.2.1: if we own 192.0.2.1, that is a conflict.
    let r = responder(&["192.0.2.1", "2001:db8::2"]);
    for cap in ["arping_garp_reply", "arping_garp_req"] {
        assert_eq!(
            r.handle(&common::one(cap, 0)),
            Verdict::Conflict {
                ip: "192.0.2.1".parse().unwrap(),
                other_mac: CLIENT
            },
            "{cap}"
        );
    }
    // The kernel's unsolicited NA for 2001:db8::2 from CLIENT.
    assert_eq!(
        r.handle(&common::one("kernel_unsol_na", 0)),
        Verdict::Conflict {
            ip: "2001:db8::2".parse().unwrap(),
            other_mac: CLIENT
        }
    );
    // A solicitation sent from one of our IPv6 addresses by another host (kernel NS from
    // 2001:db8::1).
    let r6 = responder(&["2001:db8::1", "2001:db8::10"]);
    assert_eq!(
        r6.handle(&common::one("kernel_ns_mcast", 0)),
        Verdict::Conflict {
            ip: "2001:db8::1".parse().unwrap(),
            other_mac: CLIENT
        }
    );
    // The same frames from our own MAC are our own announcements, not conflicts.
    let own = {
        let mut r = Responder::new(CLIENT);
        r.set_owned(&["192.0.2.1".parse().unwrap()].into());
        r
    };
    assert_eq!(
        own.handle(&common::one("arping_garp_reply", 0)),
        Verdict::Drop(DropReason::OwnFrame)
    );
    // A reply for an IP we do not own is just dropped.
    let other = responder(&["192.0.2.10"]);
    assert_eq!(
        other.handle(&common::one("arping_garp_reply", 0)),
        Verdict::Drop(DropReason::NotARequest)
    );
}

#[test]
fn announcements_match_kernel_and_rfc5227() {
    // IPv6: byte-identical to the kernel's unsolicited NA (ndisc_notify) for the same MAC/IP.
    let na = announcements(CLIENT, "2001:db8::2".parse().unwrap());
    assert_eq!(na.len(), 1);
    assert_eq!(na[0].to_vec(), common::one("kernel_unsol_na", 0));
    // IPv4: request form (RFC 5227 announcement, target MAC zero) and reply form, broadcast.
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let garps = announcements(CLIENT, ip);
    assert_eq!(garps.len(), 2);
    let req = Frame::decode(&garps[0]).unwrap();
    let Payload::Arp(a) = req.payload else {
        panic!()
    };
    assert_eq!(req.eth.dst, MacAddr::BROADCAST);
    assert!(a.is_gratuitous() && a.sha == CLIENT && a.tha == MacAddr::ZERO);
    // The reply form is byte-identical to arping -U -P (minus its Ethernet padding).
    assert_eq!(
        garps[1].to_vec(),
        common::one("arping_garp_reply", 0)[..42].to_vec()
    );
}

fn vectors() -> Vec<Vec<u8>> {
    [
        "arping_req",
        "arping_probe0",
        "ndisc6_ns",
        "kernel_ns_unicast",
        "kernel_dad_ns",
        "vlan_arp",
    ]
    .iter()
    .flat_map(|n| common::frames(n))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes never panic the decoder or the responder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let r = responder(&["192.0.2.10", "2001:db8::10"]);
        let _ = Frame::decode(&bytes);
        let _ = r.handle(&bytes);
    }

    /// Captured frames with random bytes changed never panic, and anything we answer decodes.
    #[test]
    fn mutated_vectors_never_panic(
        which in 0usize..11,
        edits in proptest::collection::vec((0usize..90, any::<u8>()), 1..6),
        cut in 0usize..90,
    ) {
        let r = responder(&["192.0.2.10", "2001:db8::10", "2001:db8::2"]);
        let all = vectors();
        let mut b = all[which % all.len()].clone();
        for (at, v) in edits {
            if at < b.len() {
                b[at] = v;
            }
        }
        b.truncate(b.len().saturating_sub(cut % 8));
        if let Verdict::Reply { frame, .. } = r.handle(&b) {
            prop_assert!(Frame::decode(&frame).is_ok());
        }
    }
}
