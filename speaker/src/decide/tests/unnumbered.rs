//! Unnumbered peers (`interface`): both families go to them (IPv4 with IPv6 next hops), and
//! `unnumbered::resolve` runs them at the neighbour's link-local address or holds them back.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use super::*;
use crate::unnumbered::{interfaces, resolve};

fn world() -> World {
    let mut w = World::new(1);
    w.config = config(&[
        POOLS,
        &peer(
            "leaf",
            "{myASN: 64513, dynamicASN: external, interface: eth1}",
        ),
        &peer(
            "tor",
            "{myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1}",
        ),
        &bgp_ad("bgp", "{ipAddressPools: [bgp, big]}"),
    ]);
    w.service(
        "default/a",
        &["203.0.113.6", "2001:db8:2::6"],
        false,
        &["node-0"],
    );
    w
}

#[test]
fn unnumbered_peer_gets_both_families_and_its_neighbours_address() {
    let mut ann = world().decide("node-0");
    assert_eq!(interfaces(&ann), ["eth1".to_string()].into());
    // IPv4 and IPv6 routes for the unnumbered session; IPv4 only for the IPv4 session.
    assert_eq!(ann.routes["leaf"].len(), 2);
    assert_eq!(ann.routes["tor"].len(), 1);
    let ll: Ipv6Addr = "fe80::4cb:3cff:fea1:cf6e".parse().unwrap();
    let waiting = resolve(&mut ann, &BTreeMap::from([("eth1".to_string(), ll)]));
    assert!(waiting.is_empty());
    assert_eq!(ann.peers["leaf"].address, IpAddr::V6(ll));
    assert_eq!(ann.peers["tor"].address, ip("192.0.2.1"));
}

#[test]
fn unnumbered_peer_without_a_neighbour_waits_without_routes() {
    let mut ann = world().decide("node-0");
    let other_link = BTreeMap::from([("eth2".to_string(), "fe80::1".parse().unwrap())]);
    assert_eq!(resolve(&mut ann, &other_link), ["leaf".to_string()]);
    assert!(!ann.peers.contains_key("leaf") && !ann.routes.contains_key("leaf"));
    assert!(
        ann.peers.contains_key("tor"),
        "numbered peers are not affected"
    );
}
