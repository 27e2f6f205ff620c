//! Codec tests against frames captured from the Linux kernel, Habets arping 2.23 and ndisc6
//! (tcpdump -xx, see tests/vectors/capture.sh): decode to the values the capture shows, and
//! encode back to the same bytes.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_arp::MacAddr;
use ferrolb_arp::packet::{
    ArpOp, ArpPacket, DecodeError, Frame, NaFlags, NdpMessage, Payload, icmpv6_checksum,
    solicited_node, solicited_node_mac,
};

const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SERVER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn arp(f: &Frame) -> ArpPacket {
    match &f.payload {
        Payload::Arp(a) => *a,
        other => panic!("not ARP: {other:?}"),
    }
}

fn ndp(f: &Frame) -> NdpMessage {
    match &f.payload {
        Payload::Ndp { msg, .. } => *msg,
        other => panic!("not NDP: {other:?}"),
    }
}

#[test]
fn arping_request_and_kernel_reply() {
    // Source: arping 2.23 `arping -c 1 -i eth0 192.0.2.10` (60-byte frame with 18 bytes of
    // padding as libnet sends it) and the Linux kernel's reply (42 bytes).
    let frames = common::frames("arping_req");
    let req = Frame::decode(&frames[0]).unwrap();
    assert_eq!(req.eth.dst, MacAddr::BROADCAST);
    assert_eq!(req.eth.src, CLIENT);
    assert_eq!(req.eth.vlan, None);
    assert_eq!(
        arp(&req),
        ArpPacket {
            op: ArpOp::Request,
            sha: CLIENT,
            spa: Ipv4Addr::new(192, 0, 2, 1),
            tha: MacAddr::ZERO,
            tpa: Ipv4Addr::new(192, 0, 2, 10),
        }
    );
    // Encoding gives the frame without the Ethernet padding.
    assert_eq!(&req.to_bytes()[..], &frames[0][..42]);

    let reply = Frame::decode(&frames[1]).unwrap();
    assert_eq!(reply.eth.dst, CLIENT);
    assert_eq!(
        arp(&reply),
        ArpPacket {
            op: ArpOp::Reply,
            sha: SERVER,
            spa: Ipv4Addr::new(192, 0, 2, 10),
            tha: CLIENT,
            tpa: Ipv4Addr::new(192, 0, 2, 1),
        }
    );
    assert_eq!(&reply.to_bytes()[..], &frames[1][..]);
}

#[test]
fn arp_probe_and_gratuitous_forms() {
    // Source: arping 2.23 `-0` (sender 0.0.0.0, an RFC 5227 probe), `-U` (gratuitous request,
    // target MAC ff:ff:ff:ff:ff:ff) and `-U -P` (gratuitous reply).
    let probe = arp(&Frame::decode(&common::one("arping_probe0", 0)).unwrap());
    assert!(probe.is_probe());
    assert_eq!(probe.spa, Ipv4Addr::UNSPECIFIED);
    let garp = arp(&Frame::decode(&common::one("arping_garp_req", 0)).unwrap());
    assert!(garp.is_gratuitous() && garp.op == ArpOp::Request);
    assert_eq!(garp.tha, MacAddr::BROADCAST);
    let garp_reply = arp(&Frame::decode(&common::one("arping_garp_reply", 0)).unwrap());
    assert!(garp_reply.is_gratuitous() && garp_reply.op == ArpOp::Reply);
}

#[test]
fn vlan_tagged_arp_request() {
    // Source: arping 2.23 `-V 100` (tag built by arping; tcpdump shows it as received).
    let bytes = common::one("vlan_arp", 0);
    let f = Frame::decode(&bytes).unwrap();
    let tag = f.eth.vlan.expect("tagged");
    assert_eq!((tag.vid, tag.pcp, tag.dei), (100, 0, false));
    assert_eq!(arp(&f).tpa, Ipv4Addr::new(192, 0, 2, 11));
    assert_eq!(&f.to_bytes()[..], &bytes[..46]);
}

#[test]
fn ndisc6_solicitation_and_kernel_advertisement() {
    // Source: ndisc6 `ndisc6 -1 2001:db8::10 eth0` (link-local source, flow label set) and the
    // Linux kernel's solicited NA (S=1, O=1, target link-layer option).
    let frames = common::frames("ndisc6_ns");
    let ns = Frame::decode(&frames[0]).unwrap();
    assert_eq!(ns.eth.dst, solicited_node_mac(&v6("2001:db8::10")));
    let Payload::Ndp { ip, msg } = &ns.payload else {
        panic!()
    };
    assert_eq!(ip.src, v6("fe80::ff:fe00:1"));
    assert_eq!(ip.dst, solicited_node(&v6("2001:db8::10")));
    assert_eq!(ip.dst, v6("ff02::1:ff00:10"));
    assert_eq!(ip.hop_limit, 255);
    assert_eq!(ip.flow_label, 0xbf1d7);
    let NdpMessage::NeighborSolicit { target, options } = msg else {
        panic!()
    };
    assert_eq!(*target, v6("2001:db8::10"));
    assert_eq!(options.source_lla, Some(CLIENT));
    assert_eq!(&ns.to_bytes()[..], &frames[0][..]);

    let na = Frame::decode(&frames[1]).unwrap();
    let NdpMessage::NeighborAdvert {
        flags,
        target,
        options,
    } = ndp(&na)
    else {
        panic!()
    };
    assert_eq!(
        flags,
        NaFlags {
            router: false,
            solicited: true,
            override_: true
        }
    );
    assert_eq!(target, v6("2001:db8::10"));
    assert_eq!(options.target_lla, Some(SERVER));
    assert_eq!(&na.to_bytes()[..], &frames[1][..]);
}

#[test]
fn kernel_unicast_ns_and_dad_ns() {
    // Source: Linux kernel NUD probe (unicast NS to the cached MAC, link-local source, SLLA)
    // and the kernel's reply to it (S=1, O=0, no target link-layer option).
    let frames = common::frames("kernel_ns_unicast");
    let ns = Frame::decode(&frames[0]).unwrap();
    assert_eq!(ns.eth.dst, SERVER);
    let Payload::Ndp { ip, .. } = &ns.payload else {
        panic!()
    };
    assert_eq!(ip.dst, v6("2001:db8::10"));
    assert_eq!(&ns.to_bytes()[..], &frames[0][..]);
    let na = Frame::decode(&frames[1]).unwrap();
    let NdpMessage::NeighborAdvert { flags, options, .. } = ndp(&na) else {
        panic!()
    };
    assert!(flags.solicited && !flags.override_ && !flags.router);
    assert_eq!(options.target_lla, None);
    assert_eq!(&na.to_bytes()[..], &frames[1][..]);

    // Source: Linux kernel DAD for 2001:db8::2: from ::, to the solicited-node group, with an
    // RFC 7527 nonce option and no SLLA.
    let dad = common::one("kernel_dad_ns", 0);
    let f = Frame::decode(&dad).unwrap();
    let Payload::Ndp { ip, msg } = &f.payload else {
        panic!()
    };
    assert!(ip.src.is_unspecified());
    assert_eq!(msg.options().source_lla, None);
    assert_eq!(
        msg.options().nonce,
        Some([0x42, 0xef, 0x66, 0xb8, 0x46, 0x2b])
    );
    assert_eq!(&f.to_bytes()[..], &dad[..]);
}

#[test]
fn kernel_unsolicited_na() {
    // Source: Linux kernel with ndisc_notify=1: NA to ff02::1, O=1, S=0, TLLA.
    let bytes = common::one("kernel_unsol_na", 0);
    let f = Frame::decode(&bytes).unwrap();
    let NdpMessage::NeighborAdvert { flags, options, .. } = ndp(&f) else {
        panic!()
    };
    assert!(flags.override_ && !flags.solicited && !flags.router);
    assert_eq!(options.target_lla, Some(CLIENT));
    assert_eq!(&f.to_bytes()[..], &bytes[..]);
}

#[test]
fn checksum_matches_captured_frames() {
    for (name, i) in [("ndisc6_ns", 0), ("ndisc6_ns", 1), ("kernel_dad_ns", 0)] {
        let b = common::one(name, i);
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&b[22..38]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&b[38..54]).unwrap());
        let want = u16::from_be_bytes([b[56], b[57]]);
        assert_eq!(icmpv6_checksum(&src, &dst, &b[54..]), want, "{name}[{i}]");
    }
}

#[test]
fn malformed_frames_are_errors_not_panics() {
    let ns = common::one("ndisc6_ns", 0);
    // Every truncation of every vector fails cleanly.
    for name in [
        "arping_req",
        "ndisc6_ns",
        "kernel_dad_ns",
        "vlan_arp",
        "kernel_ns_unicast",
    ] {
        for b in common::frames(name) {
            for n in 0..b.len() {
                let _ = Frame::decode(&b[..n]);
            }
        }
    }
    assert!(matches!(
        Frame::decode(&ns[..13]),
        Err(DecodeError::Truncated { .. })
    ));
    // IPv6 payload length larger than the frame.
    let mut long = ns.clone();
    long[19] = 0x40;
    assert!(matches!(
        Frame::decode(&long),
        Err(DecodeError::Truncated { .. })
    ));
    // A flipped bit in the target address breaks the checksum.
    let mut bad = ns.clone();
    bad[70] ^= 1;
    assert!(matches!(
        Frame::decode(&bad),
        Err(DecodeError::BadChecksum { .. })
    ));
    // ARP with a hardware length of 8.
    let mut arp = common::one("arping_req", 0);
    arp[18] = 8;
    assert!(matches!(
        Frame::decode(&arp),
        Err(DecodeError::UnsupportedArp { hlen: 8, .. })
    ));
    // ARP operation 3 (RARP request).
    let mut arp = common::one("arping_req", 0);
    arp[21] = 3;
    assert_eq!(Frame::decode(&arp), Err(DecodeError::UnsupportedArpOp(3)));
}

#[test]
fn zero_length_option_is_rejected() {
    // Rebuild the ndisc6 NS with its option length set to 0 and a correct checksum, so only
    // the option is wrong.
    let mut b = common::one("ndisc6_ns", 0);
    b[79] = 0;
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&b[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&b[38..54]).unwrap());
    let sum = icmpv6_checksum(&src, &dst, &b[54..]);
    b[56..58].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        Frame::decode(&b),
        Err(DecodeError::BadOptionLength { ty: 1 })
    );
}
