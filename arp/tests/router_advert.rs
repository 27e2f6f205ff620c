//! Router Advertisements for unnumbered BGP (RFC 4861 §4.2, §6.1.2): what we send decodes
//! back with its checksum, hop limit 255 and router lifetime 0; invalid RAs are refused; our
//! own RAs never name a neighbour. The FRR interop test (tests/tests/bgp_unnumbered_frr.rs)
//! checks both directions against a real FRR 8.4 zebra.

use std::net::Ipv6Addr;

use ferrolb_arp::packet::{MacAddr, RouterAdvert, router_advert_source};
use ferrolb_arp::unnumbered::{RaConfig, is_neighbour};

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
