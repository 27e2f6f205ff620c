//! The outcome does not depend on the order objects arrive in (watch order is arbitrary).

mod common;

use common::*;
use ferrolb_crds::{ClusterResources, Config};

fn reversed(r: &ClusterResources) -> ClusterResources {
    let mut r = r.clone();
    r.pools.reverse();
    r.l2_advertisements.reverse();
    r.bgp_advertisements.reverse();
    r.bgp_peers.reverse();
    r.communities.reverse();
    r.bfd_profiles.reverse();
    r.nodes.reverse();
    r
}

fn sorted_errors(r: &ClusterResources) -> Vec<String> {
    let mut v: Vec<String> = Config::build(r, None)
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn input_order_does_not_change_the_outcome() {
    let yaml = pool("a", &["192.0.2.0/28"])
        + &pool("b", &["192.0.2.8/29"])
        + &pool("c", &["198.51.100.0/28"])
        + &pool("d", &["bad"])
        + &peer(
            "p1",
            "  myASN: 1\n  peerASN: 2\n  peerAddress: 192.0.2.254\n",
        )
        + &peer(
            "p2",
            "  myASN: 1\n  peerASN: 3\n  peerAddress: 192.0.2.254\n",
        )
        + &obj(
            "Community",
            "c1",
            "  communities:\n  - {name: x, value: \"1:1\"}\n",
        )
        + &obj(
            "Community",
            "c2",
            "  communities:\n  - {name: x, value: \"1:2\"}\n",
        )
        + &obj(
            "BGPAdvertisement",
            "ad1",
            "  ipAddressPools: [a]\n  localPref: 1\n  communities: [x]\n",
        )
        + &obj(
            "BGPAdvertisement",
            "ad2",
            "  ipAddressPools: [a]\n  localPref: 2\n",
        )
        + &obj("L2Advertisement", "l2", "  ipAddressPools: [c, d]\n");
    let r = res(&yaml);
    let forward = Config::build(&r, None);
    let backward = Config::build(&reversed(&r), None);
    assert_eq!(forward.config, backward.config);
    assert_eq!(sorted_errors(&r), sorted_errors(&reversed(&r)));
    // b loses to a, p2 to p1, c2's alias to c1, ad2 to ad1, and l2 names invalid pool d.
    assert_eq!(forward.errors.len(), 6, "{:#?}", forward.errors);
    assert_eq!(forward.config.pools.keys().collect::<Vec<_>>(), ["a", "c"]);
}
