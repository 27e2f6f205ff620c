//! Router ID fallback for nodes without IPv4 (issue #13): every IPv6-only node gets its own
//! stable identifier instead of one fixed 192.0.2.254 that collides on an iBGP router.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ferrolb_speaker::drivers::{DERIVED_ROUTER_ID_BLOCK, derived_router_id, router_id};
use ferrolb_speaker::links::Link;

fn peer(extra: &str) -> ferrolb_crds::config::Peer {
    let yaml = format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: p, namespace: ferrolb-system}}\nspec: {{myASN: 64512, peerASN: 64512, peerAddress: \"2001:db8::1\"{extra}}}\n"
    );
    let loaded = ferrolb_crds::yaml::load_str("t.yaml", &yaml);
    ferrolb_crds::from_resources(&loaded.resources).config.peers["p"].clone()
}

fn v6_only() -> Vec<Link> {
    vec![Link {
        name: "eth0".into(),
        up: true,
        loopback: false,
        addrs: vec!["2001:db8::11/64".parse().unwrap()],
    }]
}

#[test]
fn ipv6_only_nodes_get_distinct_stable_ids_in_the_documented_block() {
    let p = peer("");
    let (base, len) = DERIVED_ROUTER_ID_BLOCK;
    let mask = u32::MAX << (32 - len);
    let mut seen = BTreeSet::new();
    for i in 0..1000 {
        let node = format!("worker-{i}");
        let id = router_id(&p, &v6_only(), &node);
        assert_ne!(id, Ipv4Addr::new(192, 0, 2, 254));
        assert_eq!(id, derived_router_id(&node), "stable for {node}");
        assert_eq!(
            u32::from(id) & mask,
            u32::from(base),
            "{id} outside the block"
        );
        assert!(!id.is_multicast() && !id.is_broadcast() && !id.is_unspecified());
        seen.insert(id);
    }
    assert_eq!(seen.len(), 1000, "two of 1000 node names share an ID");
    // The same two nodes on one iBGP router: different identifiers.
    assert_ne!(
        router_id(&p, &v6_only(), "node-a"),
        router_id(&p, &v6_only(), "node-b")
    );
}

#[test]
fn configured_router_id_and_an_ipv4_address_come_first() {
    let with_id = peer(", routerID: 192.0.2.77");
    assert_eq!(
        router_id(&with_id, &v6_only(), "n1"),
        Ipv4Addr::new(192, 0, 2, 77)
    );
    let mut links = v6_only();
    links[0].addrs.push("192.0.2.11/24".parse().unwrap());
    assert_eq!(
        router_id(&peer(""), &links, "n1"),
        Ipv4Addr::new(192, 0, 2, 11)
    );
}
