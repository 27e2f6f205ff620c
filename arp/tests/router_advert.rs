//! Router Advertisements for unnumbered BGP (RFC 4861 §4.2, §6.1.2): what we send decodes
//! back with its checksum, hop limit 255 and router lifetime 0; invalid RAs are refused; our
//! own RAs never name a neighbour; an RA captured from FRR 8.4 decodes, and its ICMPv6 message
//! re-encodes to the same bytes. The FRR interop test (tests/tests/bgp_unnumbered_frr.rs)
//! checks both directions against a real FRR 8.4 zebra.

use std::net::Ipv6Addr;

use bytes::BytesMut;
use ferrolb_arp::packet::{Ipv6Header, MacAddr, RouterAdvert, router_advert_source};
use std::time::{Duration, Instant};

use ferrolb_arp::unnumbered::{NeighbourChoice, RaConfig, is_neighbour};

const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);

fn ll() -> Ipv6Addr {
    "fe80::11".parse().unwrap()
}

#[test]
fn our_router_advert_is_valid_and_not_a_default_router() {
    let frame = RouterAdvert::unnumbered(MAC).frame(MAC, ll());
    // Ethernet to 33:33:00:00:00:01, IPv6 hop limit 255, to ff02::1.
    assert_eq!(&frame[..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);
    assert_eq!(frame[14 + 7], 255);
    assert_eq!(frame.len(), 14 + 40 + 16 + 8);
    let (src, ra) = router_advert_source(&frame).expect("valid RA");
    assert_eq!(src, ll());
    assert_eq!(ra.router_lifetime, 0);
    assert_eq!(ra.source_mac, Some(MAC));
}

#[test]
fn invalid_router_adverts_are_refused() {
    let good = RouterAdvert::unnumbered(MAC).frame(MAC, ll());
    // Hop limit below 255: not from this link.
    let mut f = good.clone();
    f[14 + 7] = 64;
    assert!(router_advert_source(&f).is_err());
    // Corrupted checksum.
    let mut f = good.clone();
    f[14 + 40 + 2] ^= 0xff;
    assert!(router_advert_source(&f).is_err());
    // Global source address (checksum follows the address, so rebuild).
    let f = RouterAdvert::unnumbered(MAC).frame(MAC, "2001:db8::11".parse().unwrap());
    assert!(router_advert_source(&f).is_err());
    // Option of length zero.
    let mut f = good.clone();
    let opt = 14 + 40 + 16;
    f[opt + 1] = 0;
    assert!(router_advert_source(&f).is_err());
    // Truncated.
    assert!(router_advert_source(&good[..14 + 40 + 8]).is_err());
}

#[test]
fn own_and_global_sources_are_not_neighbours() {
    assert!(is_neighbour("fe80::1".parse().unwrap(), &[ll()]));
    assert!(!is_neighbour(ll(), &[ll()]));
    assert!(!is_neighbour("2001:db8::1".parse().unwrap(), &[ll()]));
}

#[test]
fn three_fast_router_adverts_then_the_slow_interval() {
    let c = RaConfig::default();
    let waits: Vec<_> = (1..=5).map(|n| c.after(n).as_secs()).collect();
    assert_eq!(waits, vec![1, 1, 10, 10, 10]);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Captured with `tcpdump -s0 -w` on the node side of a veth, 2026-12-05: FRR 8.4.4 (Debian 12)
/// zebra, RAs enabled by bgpd for `neighbor u1 interface remote-as external`.
const FRR_RA: &str = "33330000000106cb3ca1cf6e86dd600c219100183afffe8000000000000004cb3cfffea1cf6eff020000000000000000000000000001860018534000001e0000000000000000010106cb3ca1cf6e";

#[test]
fn router_advert_captured_from_frr() {
    let frame = hex(FRR_RA);
    let (src, ra) = router_advert_source(&frame).expect("FRR's RA is valid");
    let frr_mac = MacAddr([0x06, 0xcb, 0x3c, 0xa1, 0xcf, 0x6e]);
    assert_eq!(src, "fe80::4cb:3cff:fea1:cf6e".parse::<Ipv6Addr>().unwrap());
    assert!(is_neighbour(src, &[ll()]));
    assert_eq!(
        ra,
        RouterAdvert {
            cur_hop_limit: 64,
            flags: 0,
            router_lifetime: 30,
            reachable_time: 0,
            retrans_timer: 0,
            source_mac: Some(frr_mac),
        }
    );
    // The ICMPv6 message (checksum included) re-encodes byte for byte.
    let ip = Ipv6Header {
        traffic_class: 0,
        flow_label: 0,
        next_header: 58,
        hop_limit: 255,
        src,
        dst: "ff02::1".parse().unwrap(),
    };
    let mut out = BytesMut::new();
    ra.encode(&ip, &mut out);
    assert_eq!(&out[..], &frame[14 + 40..]);
}

#[test]
fn a_second_sender_does_not_replace_a_live_neighbour() {
    let keep = Duration::from_secs(60);
    let a: Ipv6Addr = "fe80::a".parse().unwrap();
    let b: Ipv6Addr = "fe80::b".parse().unwrap();
    let t0 = Instant::now();
    let mut c = NeighbourChoice::default();
    assert_eq!(
        c.heard(a, t0, keep),
        Some(a),
        "the first sender is the neighbour"
    );
    assert_eq!(c.heard(a, t0 + Duration::from_secs(10), keep), None);
    assert_eq!(
        c.heard(b, t0 + Duration::from_secs(20), keep),
        None,
        "a is still live"
    );
    assert_eq!(c.heard(a, t0 + Duration::from_secs(30), keep), None);
    // a silent for the whole keep time: b takes over.
    assert_eq!(c.heard(b, t0 + Duration::from_secs(91), keep), Some(b));
    assert_eq!(c.heard(a, t0 + Duration::from_secs(92), keep), None);
}
