//! Decision rules, one test each, plus spread and stability of the L2 election.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::Config;
use ferrolb_crds::config::CommunityValue;

use super::*;
use crate::cluster::{EndpointView, ServiceView, SliceRecord};
use crate::links::Link;

mod unnumbered;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const POOLS: &str = "
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: l2, namespace: ferrolb-system}
spec: {addresses: [192.0.2.200-192.0.2.210, 2001:db8:1::100-2001:db8:1::1ff], autoAssign: false}
---
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp, namespace: ferrolb-system}
spec: {addresses: [203.0.113.0/28]}
---
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: big, namespace: ferrolb-system}
spec: {addresses: [2001:db8:2::/64]}
---
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bare, namespace: ferrolb-system}
spec: {addresses: [2001:db8:ff::/64]}
";

const TOR: &str = "
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec: {myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.1}
";

fn l2_ad(spec: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: L2Advertisement\nmetadata: {{name: l2, namespace: ferrolb-system}}\nspec: {spec}\n"
    )
}

fn bgp_ad(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: BGPAdvertisement\nmetadata: {{name: {name}, namespace: ferrolb-system}}\nspec: {spec}\n"
    )
}

fn peer(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: ferrolb-system}}\nspec: {spec}\n"
    )
}

/// Validated config from YAML documents (which must all be valid).
fn config(docs: &[&str]) -> Config {
    let text = docs.join("\n---\n");
    let loaded = ferrolb_crds::yaml::load_str("test.yaml", &text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let outcome = ferrolb_crds::from_resources(&loaded.resources);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    outcome.config
}

fn default_config() -> Config {
    config(&[
        POOLS,
        &l2_ad("{ipAddressPools: [l2, big]}"),
        &bgp_ad("bgp", "{ipAddressPools: [bgp]}"),
        TOR,
    ])
}

fn eth0(addr: &str) -> Vec<Link> {
    vec![Link {
        name: "eth0".into(),
        up: true,
        loopback: false,
        addrs: vec![addr.parse().unwrap()],
    }]
}

/// A lab-like world: `n` nodes node-0.. on 192.0.2.0/24 (eth0 up), an L2 pool and a BGP pool.
struct World {
    config: Config,
    cluster: ClusterView,
    live: BTreeSet<String>,
    links: LinkMap,
}

impl World {
    fn new(n: usize) -> World {
        let mut cluster = ClusterView::default();
        let mut live = BTreeSet::new();
        let mut links = LinkMap::new();
        for i in 0..n {
            let name = format!("node-{i}");
            cluster.nodes.insert(
                name.clone(),
                NodeView {
                    labels: [(
                        "zone".to_string(),
                        if i % 2 == 0 { "a" } else { "b" }.to_string(),
                    )]
                    .into(),
                    excluded: false,
                },
            );
            live.insert(name.clone());
            links.insert(name, eth0(&format!("192.0.2.{}/24", 10 + i % 200)));
        }
        let config = default_config();
        World {
            config,
            cluster,
            live,
            links,
        }
    }

    /// Adds a Service with endpoints on `ready` nodes.
    fn service(&mut self, key: &str, ips: &[&str], local: bool, ready: &[&str]) {
        self.cluster.services.push(Arc::new(ServiceView {
            key: key.into(),
            labels: [(
                "app".to_string(),
                key.rsplit('/').next().unwrap().to_string(),
            )]
            .into(),
            ips: ips.iter().map(|s| ip(s)).collect(),
            local,
        }));
        let slice = SliceRecord {
            key: format!("{key}-1"),
            service: Some(key.into()),
            ready_nodes: ready.iter().map(|s| s.to_string()).collect(),
            any_serving: !ready.is_empty(),
        };
        self.cluster.endpoints.insert(
            key.into(),
            EndpointView {
                slices: vec![Arc::new(slice)],
            },
        );
    }

    fn decide(&self, me: &str) -> Announcements {
        desired(&self.config, &self.cluster, &self.live, &self.links, me)
    }

    fn owner(&self, svc: &str, addr: &str) -> Option<String> {
        self.decide("node-0").l2_owners[svc][&ip(addr)].node.clone()
    }

    /// Every node's own view of who owns `addr`: exactly the nodes that claim it.
    fn claimants(&self, addr: &str) -> Vec<String> {
        self.live
            .iter()
            .filter(|n| self.decide(n).l2.contains_key(&ip(addr)))
            .cloned()
            .collect()
    }
}

#[test]
fn exactly_one_node_claims_an_l2_ip_and_every_node_agrees_which() {
    let mut w = World::new(3);
    w.service(
        "default/web",
        &["192.0.2.200"],
        false,
        &["node-0", "node-1", "node-2"],
    );
    let claimants = w.claimants("192.0.2.200");
    assert_eq!(claimants.len(), 1);
    for n in &w.live {
        assert_eq!(
            w.decide(n).l2_owners["default/web"][&ip("192.0.2.200")]
                .node
                .as_ref(),
            Some(&claimants[0])
        );
    }
    let owner = w.decide(&claimants[0]);
    assert_eq!(
        owner.l2[&ip("192.0.2.200")].interfaces,
        ["eth0".to_string()].into()
    );
    assert_eq!(owner.l2_by_interface()["eth0"], [ip("192.0.2.200")].into());
}

#[test]
fn etp_local_elects_only_among_nodes_with_a_ready_endpoint() {
    let mut w = World::new(10);
    for i in 0..20 {
        let key = format!("default/s{i}");
        let a = format!("192.0.2.{}", 200 + i % 11);
        w.service(&key, &[&a], true, &["node-7"]);
    }
    for i in 0..20 {
        let a = format!("192.0.2.{}", 200 + i % 11);
        assert_eq!(
            w.owner(&format!("default/s{i}"), &a).as_deref(),
            Some("node-7")
        );
    }
    // BGP: only node-7 announces.
    w.service("default/b", &["203.0.113.3"], true, &["node-7"]);
    assert!(w.decide("node-7").routes["tor"].contains_key(&"203.0.113.3/32".parse().unwrap()));
    assert!(w.decide("node-3").routes["tor"].is_empty());
}

#[test]
fn etp_cluster_needs_a_serving_endpoint_somewhere() {
    let mut w = World::new(3);
    w.service("default/none", &["192.0.2.201"], false, &[]);
    w.service("default/b", &["203.0.113.4"], false, &[]);
    assert_eq!(w.owner("default/none", "192.0.2.201"), None);
    assert!(w.claimants("192.0.2.201").is_empty());
    assert!(w.decide("node-1").routes["tor"].is_empty());
    // One endpoint on node-2 is enough for every node under Cluster policy.
    let serving = SliceRecord {
        key: "default/b-2".into(),
        service: Some("default/b".into()),
        ready_nodes: vec![],
        any_serving: true,
    };
    let eps = w.cluster.endpoints.get_mut("default/b").unwrap();
    eps.slices.push(Arc::new(serving));
    for n in ["node-0", "node-1", "node-2"] {
        assert_eq!(w.decide(n).routes["tor"].len(), 1, "{n}");
    }
}

#[test]
fn node_selectors_exclusion_label_and_network_unavailable_remove_candidates() {
    let mut w = World::new(4);
    w.config = config(&[
        POOLS,
        &l2_ad("{ipAddressPools: [l2], nodeSelectors: [{matchLabels: {zone: b}}]}"), // node-1, node-3
        &bgp_ad(
            "bgp",
            "{ipAddressPools: [bgp], nodeSelectors: [{matchLabels: {zone: a}}]}",
        ),
        TOR,
    ]);
    w.service("default/web", &["192.0.2.202"], false, &["node-0"]);
    let owner = w.owner("default/web", "192.0.2.202").unwrap();
    assert!(owner == "node-1" || owner == "node-3");
    w.cluster.nodes.get_mut("node-1").unwrap().excluded = true;
    w.cluster.nodes.get_mut("node-3").unwrap().excluded = true;
    assert_eq!(w.owner("default/web", "192.0.2.202"), None);

    // BGP node selectors: only zone=a nodes announce.
    w.service("default/b", &["203.0.113.5"], false, &["node-0"]);
    assert_eq!(w.decide("node-2").routes["tor"].len(), 1);
    assert!(w.decide("node-1").routes["tor"].is_empty());
    // An excluded node keeps its sessions but announces nothing.
    w.cluster.nodes.get_mut("node-2").unwrap().excluded = true;
    let d = w.decide("node-2");
    assert!(d.peers.contains_key("tor"));
    assert!(d.routes["tor"].is_empty());
}

#[test]
fn service_and_pool_selectors_pick_the_advertisement() {
    let mut w = World::new(3);
    w.config = config(&[
        POOLS,
        &l2_ad("{ipAddressPools: [l2], serviceSelectors: [{matchLabels: {app: wanted}}]}"),
        TOR,
    ]);
    w.service("default/wanted", &["192.0.2.203"], false, &["node-0"]);
    w.service("default/no", &["192.0.2.204"], false, &["node-0"]);
    assert!(w.owner("default/wanted", "192.0.2.203").is_some());
    assert!(!w.decide("node-0").l2_owners.contains_key("default/no"));
    // An IP outside every pool is never announced.
    w.service("default/stray", &["198.51.100.9"], false, &["node-0"]);
    assert!(!w.decide("node-0").l2_owners.contains_key("default/stray"));
    // A pool without an advertisement: no L2, no BGP.
    w.service("default/v6", &["2001:db8:ff::1"], false, &["node-0"]);
    let d = w.decide("node-0");
    assert!(!d.l2_owners.contains_key("default/v6"));
    assert!(d.routes["tor"].is_empty());
}

#[test]
fn link_down_or_subnet_mismatch_makes_a_node_ineligible() {
    let mut w = World::new(3);
    w.service(
        "default/web",
        &["192.0.2.205"],
        false,
        &["node-0", "node-1", "node-2"],
    );
    let first = w.owner("default/web", "192.0.2.205").unwrap();
    // The owner's digest loses eth0 (link down): another node takes over.
    w.links.insert(first.clone(), vec![]);
    let second = w.owner("default/web", "192.0.2.205").unwrap();
    assert_ne!(first, second);
    // The new owner's interface is in another subnet: the third node.
    w.links.insert(second.clone(), eth0("198.51.100.7/24"));
    let third = w.owner("default/web", "192.0.2.205").unwrap();
    assert!(third != first && third != second);
    assert_eq!(w.claimants("192.0.2.205"), vec![third.clone()]);
    // A down interface on the node itself: it does not claim.
    w.links.get_mut(&third).unwrap()[0].up = false;
    assert_eq!(w.owner("default/web", "192.0.2.205"), None);
    assert!(w.claimants("192.0.2.205").is_empty());
}

#[test]
fn advertisement_interfaces_allow_a_named_interface_outside_the_subnet() {
    let mut w = World::new(1);
    w.links.insert(
        "node-0".into(),
        vec![
            Link {
                name: "eth0".into(),
                up: true,
                loopback: false,
                addrs: vec!["198.51.100.7/24".parse().unwrap()],
            },
            Link {
                name: "vlan5".into(),
                up: true,
                loopback: false,
                addrs: vec![],
            },
        ],
    );
    w.service("default/web", &["192.0.2.206"], false, &["node-0"]);
    assert!(
        w.decide("node-0").l2.is_empty(),
        "no interface in 192.0.2.0/24"
    );
    w.config = config(&[POOLS, &l2_ad("{ipAddressPools: [l2], interfaces: [vlan5]}")]);
    assert_eq!(
        w.decide("node-0").l2[&ip("192.0.2.206")].interfaces,
        ["vlan5".to_string()].into()
    );
}

#[test]
fn unknown_links_of_another_node_count_as_eligible() {
    let mut w = World::new(3);
    w.service("default/web", &["192.0.2.207"], false, &["node-0"]);
    let owner = w.owner("default/web", "192.0.2.207").unwrap();
    w.links.remove(&owner);
    assert_eq!(w.owner("default/web", "192.0.2.207"), Some(owner));
}

#[test]
fn dual_stack_and_shared_ips_stay_on_the_first_ips_owner() {
    let mut w = World::new(10);
    for l in w.links.values_mut() {
        l[0].addrs.push("2001:db8:1::5/64".parse().unwrap());
    }
    let all: Vec<String> = (0..10).map(|i| format!("node-{i}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    for i in 0..11 {
        let v4 = format!("192.0.2.{}", 200 + i);
        let v6 = format!("2001:db8:1::1{i:02x}");
        w.service(&format!("default/ds{i}"), &[&v4, &v6], false, &all);
    }
    let d = w.decide("node-0");
    for i in 0..11 {
        let owners: BTreeSet<_> = d.l2_owners[&format!("default/ds{i}")]
            .values()
            .map(|o| o.node.clone())
            .collect();
        assert_eq!(owners.len(), 1, "ds{i} split across {owners:?}");
    }
}

#[test]
fn preferred_node_selectors_win_over_the_hash() {
    let mut w = World::new(10);
    w.config = config(&[
        POOLS,
        &l2_ad("{preferredNodeSelectors: [{weight: 50, preference: {matchLabels: {zone: b}}}]}"),
    ]);
    let all: Vec<String> = (0..10).map(|i| format!("node-{i}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    for i in 0..11 {
        w.service(
            &format!("default/p{i}"),
            &[&format!("192.0.2.{}", 200 + i)],
            false,
            &all,
        );
    }
    for (_, owners) in w.decide("node-0").l2_owners {
        for o in owners.values() {
            let n: usize = o.node.as_ref().unwrap()["node-".len()..].parse().unwrap();
            assert_eq!(n % 2, 1, "zone b (odd nodes) preferred");
        }
    }
}

#[test]
fn bgp_attributes_aggregation_and_peer_selection() {
    let mut w = World::new(2);
    w.config = config(&[
        POOLS,
        TOR,
        &peer(
            "tor-b",
            "{myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.2, nodeSelectors: [{matchLabels: {zone: b}}]}",
        ),
        &peer(
            "tor6",
            "{myASN: 64513, peerASN: 64512, peerAddress: \"2001:db8::1\"}",
        ),
        &bgp_ad(
            "agg",
            "{ipAddressPools: [bgp], aggregationLength: 30, localPref: 100, communities: [\"65000:1\"]}",
        ),
        &bgp_ad(
            "host",
            "{ipAddressPools: [bgp], peers: [tor], localPref: 200, communities: [\"large:1:2:3\"]}",
        ),
    ]);
    w.service("default/b", &["203.0.113.6"], false, &["node-0"]);
    let d0 = w.decide("node-0");
    assert_eq!(
        d0.peers.keys().collect::<Vec<_>>(),
        ["tor", "tor6"],
        "tor-b selects zone b only"
    );
    let tor = &d0.routes["tor"];
    assert_eq!(tor.len(), 2);
    assert_eq!(
        tor[&"203.0.113.4/30".parse().unwrap()].local_pref,
        Some(100)
    );
    let host = &tor[&"203.0.113.6/32".parse().unwrap()];
    assert_eq!(host.local_pref, Some(200));
    assert_eq!(host.communities, [CommunityValue::Large(1, 2, 3)].into());
    assert!(
        d0.routes["tor6"].is_empty(),
        "IPv4 route not sent on an IPv6 session without dualStack"
    );
    assert_eq!(d0.prefix_count(), 2);
    let d1 = w.decide("node-1");
    assert_eq!(
        d1.routes["tor-b"].keys().collect::<Vec<_>>(),
        [&"203.0.113.4/30".parse::<IpNet>().unwrap()]
    );
}

#[test]
fn peers_that_cannot_differ_share_one_route_map() {
    let mut w = World::new(1);
    let ads = |restricted: &str| {
        vec![
            POOLS.to_string(),
            TOR.to_string(),
            peer(
                "tor-2",
                "{myASN: 64513, peerASN: 64512, peerAddress: 192.0.2.2}",
            ),
            peer(
                "tor6",
                "{myASN: 64513, peerASN: 64512, peerAddress: \"2001:db8::1\"}",
            ),
            bgp_ad("all", "{ipAddressPools: [bgp]}"),
            bgp_ad(
                "one",
                &format!(
                    "{{ipAddressPools: [bgp], peers: [{restricted}], communities: [\"65000:7\"]}}"
                ),
            ),
        ]
    };
    w.service("default/a", &["203.0.113.6"], false, &["node-0"]);

    // "one" applies to both IPv4 peers: tor and tor-2 cannot differ.
    let cfg = ads("tor, tor-2");
    w.config = config(&cfg.iter().map(String::as_str).collect::<Vec<_>>());
    let d = w.decide("node-0");
    assert!(Arc::ptr_eq(&d.routes["tor"], &d.routes["tor-2"]), "one map");
    assert_eq!(d.routes["tor"].len(), 1);
    assert!(d.routes["tor6"].is_empty(), "another family: its own map");
    let net: IpNet = "203.0.113.6/32".parse().unwrap();
    let tagged = [CommunityValue::Standard((65000 << 16) | 7)].into();
    assert_eq!(d.routes["tor"][&net].communities, tagged);

    // "one" applies to tor only: tor-2 gets the route without its community.
    let cfg = ads("tor");
    w.config = config(&cfg.iter().map(String::as_str).collect::<Vec<_>>());
    let d = w.decide("node-0");
    assert!(!Arc::ptr_eq(&d.routes["tor"], &d.routes["tor-2"]));
    assert_eq!(d.routes["tor"][&net].communities, tagged);
    assert!(d.routes["tor-2"][&net].communities.is_empty());
}

/// Many Services over `n` nodes: every node's count within ±20% of even.
fn spread(n: usize, per_node: usize) {
    let mut w = World::new(n);
    for l in w.links.values_mut() {
        l[0].addrs.push("2001:db8:2::1/64".parse().unwrap());
    }
    let total = n * per_node;
    for i in 0..total {
        let a = format!("2001:db8:2::{:x}:{:x}", i >> 16, i & 0xffff);
        w.service(&format!("default/s{i}"), &[&a], false, &["node-0"]);
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for owners in w.decide("node-0").l2_owners.values() {
        for o in owners.values() {
            *counts.entry(o.node.clone().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), n);
    let even = per_node as f64;
    for (node, c) in counts {
        let dev = (c as f64 - even).abs() / even;
        assert!(dev <= 0.20, "{n} nodes: {node} owns {c}, even is {even}");
    }
}

#[test]
fn spread_over_3_nodes() {
    spread(3, 400);
}

#[test]
fn spread_over_10_nodes() {
    spread(10, 400);
}

#[test]
fn spread_over_100_nodes() {
    // 300 per node on average: ±20% is about 3.5 standard deviations.
    spread(100, 300);
}

#[test]
fn losing_a_member_moves_only_its_ips() {
    let mut w = World::new(10);
    for l in w.links.values_mut() {
        l[0].addrs.push("2001:db8:2::1/64".parse().unwrap());
    }
    for i in 0..1000 {
        w.service(
            &format!("default/s{i}"),
            &[&format!("2001:db8:2::{i:x}")],
            false,
            &["node-0"],
        );
    }
    let before = w.decide("node-0").l2_owners;
    w.live.remove("node-4");
    let after = w.decide("node-0").l2_owners;
    let mut moved = 0;
    for (svc, owners) in &before {
        for (a, o) in owners {
            let now = &after[svc][a];
            if o.node.as_deref() == Some("node-4") {
                assert_ne!(now.node.as_deref(), Some("node-4"));
                moved += 1;
            } else {
                assert_eq!(now.node, o.node, "{svc} moved though its owner stayed");
            }
        }
    }
    assert!(moved > 0);
    // And a node coming back takes back exactly those.
    w.live.insert("node-4".into());
    assert_eq!(w.decide("node-0").l2_owners, before);
}
