//! L2Advertisement, BGPAdvertisement and Community validation.

mod common;

use common::*;
use ferrolb_crds::config::{CommunityValue, Kind};
use std::net::IpAddr;

fn pools() -> String {
    pool("v4", &["192.0.2.0/26"])
        + &pool("v6", &["2001:db8::/120"])
        + "---\napiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: labelled, namespace: ferrolb-system, labels: {tier: edge}}\nspec: {addresses: [\"203.0.113.10-203.0.113.20\"]}\n"
}

#[test]
fn l2_with_no_pools_applies_to_all_pools() {
    let out = build(&(pools() + &obj("L2Advertisement", "all", "  interfaces: [eth0]\n")));
    no_errors(&out);
    let ad = &out.config.l2_advertisements["all"];
    assert_eq!(
        ad.pools.iter().collect::<Vec<_>>(),
        ["labelled", "v4", "v6"]
    );
    assert_eq!(ad.interfaces, ["eth0"]);
    assert_eq!(out.config.l2_advertisements_for_pool("v6").count(), 1);
}

#[test]
fn l2_pool_selectors_match_pool_labels() {
    let out = build(
        &(pools()
            + &obj(
                "L2Advertisement",
                "edge",
                "  ipAddressPools: [v6]\n  ipAddressPoolSelectors:\n  - matchLabels: {tier: edge}\n",
            )),
    );
    no_errors(&out);
    assert_eq!(
        out.config.l2_advertisements["edge"]
            .pools
            .iter()
            .collect::<Vec<_>>(),
        ["labelled", "v6"]
    );
}

#[test]
fn l2_missing_pool() {
    let out = build(&(pools() + &obj("L2Advertisement", "ad", "  ipAddressPools: [v4, nope]\n")));
    one_error(
        &out,
        Kind::L2Advertisement,
        "ad",
        "spec.ipAddressPools[1]",
        Some("nope"),
        "no valid IPAddressPool",
    );
    assert!(out.config.l2_advertisements.is_empty());
}

#[test]
fn l2_advertisement_naming_an_invalid_pool() {
    let out = build(
        &(pool("bad", &["192.0.2.9-192.0.2.1"])
            + &obj("L2Advertisement", "ad", "  ipAddressPools: [bad]\n")),
    );
    assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
    let ad_err = out
        .errors
        .iter()
        .find(|e| e.object.kind == Kind::L2Advertisement)
        .unwrap();
    assert_eq!(ad_err.field, "spec.ipAddressPools[0]");
    assert_eq!(ad_err.value.as_deref(), Some("bad"));
}

#[test]
fn l2_bad_interface_name() {
    let out = build(
        &(pools()
            + &obj(
                "L2Advertisement",
                "ad",
                "  interfaces: [eth0, \"this-name-is-too-long0\"]\n",
            )),
    );
    one_error(
        &out,
        Kind::L2Advertisement,
        "ad",
        "spec.interfaces[1]",
        Some("this-name-is-too-long0"),
        "1 to 15 characters",
    );
}

#[test]
fn l2_preferred_node_weight_out_of_range() {
    let out = build(
        &(pools()
            + &obj(
                "L2Advertisement",
                "ad",
                "  preferredNodeSelectors:\n  - weight: 50\n    preference: {matchLabels: {zone: a}}\n  - weight: 101\n    preference: {matchLabels: {zone: b}}\n",
            )),
    );
    one_error(
        &out,
        Kind::L2Advertisement,
        "ad",
        "spec.preferredNodeSelectors[1].weight",
        Some("101"),
        "between 1 and 100",
    );
}

#[test]
fn l2_preferences_are_summed() {
    let out = build(
        &(pools()
            + &obj(
                "L2Advertisement",
                "ad",
                "  preferredNodeSelectors:\n  - weight: 50\n    preference: {matchLabels: {zone: a}}\n  - weight: 20\n    preference: {matchExpressions: [{key: ssd, operator: Exists}]}\n",
            )),
    );
    no_errors(&out);
    let ad = &out.config.l2_advertisements["ad"];
    let node = [
        ("zone".to_string(), "a".to_string()),
        ("ssd".to_string(), "1".to_string()),
    ]
    .into();
    assert_eq!(ad.preference(&node), 70);
    assert_eq!(ad.preference(&Default::default()), 0);
}

#[test]
fn l2_invalid_node_selector() {
    let out = build(
        &(pools()
            + &obj(
                "L2Advertisement",
                "ad",
                "  nodeSelectors:\n  - matchExpressions: [{key: zone, operator: In}]\n",
            )),
    );
    one_error(
        &out,
        Kind::L2Advertisement,
        "ad",
        "spec.nodeSelectors[0].matchExpressions[0].values",
        Some(""),
        "needs at least one value",
    );
}

#[test]
fn bgp_defaults_and_prefixes() {
    let out = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "ad",
                "  ipAddressPools: [v4, v6]\n  localPref: 100\n",
            )),
    );
    no_errors(&out);
    let ad = &out.config.bgp_advertisements["ad"];
    assert_eq!((ad.aggregation_length, ad.aggregation_length_v6), (32, 128));
    assert_eq!(ad.local_pref, Some(100));
    assert_eq!(
        ad.prefix_for("192.0.2.5".parse::<IpAddr>().unwrap())
            .to_string(),
        "192.0.2.5/32"
    );
    assert!(ad.applies_to_peer("anything"), "empty peers = all peers");
}

#[test]
fn bgp_aggregation_shorter_than_pool_prefix() {
    let out = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "agg",
                "  ipAddressPools: [v4]\n  aggregationLength: 24\n",
            )),
    );
    let e = one_error(
        &out,
        Kind::BGPAdvertisement,
        "agg",
        "spec.aggregationLength",
        Some("24"),
        "shorter than prefix /26 of IPAddressPool v4",
    );
    assert!(
        e.message.contains("spec.addresses[0] \"192.0.2.0/26\""),
        "{e}"
    );
}

#[test]
fn bgp_aggregation_equal_to_pool_prefix_is_fine() {
    let out = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "agg",
                "  ipAddressPools: [v4]\n  aggregationLength: 26\n",
            )),
    );
    no_errors(&out);
    let ad = &out.config.bgp_advertisements["agg"];
    assert_eq!(
        ad.prefix_for("192.0.2.33".parse::<IpAddr>().unwrap())
            .to_string(),
        "192.0.2.0/26"
    );
}

#[test]
fn bgp_aggregation_v6_out_of_range() {
    let out = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "agg",
                "  ipAddressPools: [v6]\n  aggregationLengthV6: 129\n",
            )),
    );
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "agg",
        "spec.aggregationLengthV6",
        Some("129"),
        "between 1 and 128",
    );
}

#[test]
fn bgp_aggregation_checked_against_ranges() {
    // 203.0.113.10-20 summarizes to .10/31, .12/30, .16/30, .20/32: widest is /30.
    let out = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "agg",
                "  ipAddressPools: [labelled]\n  aggregationLength: 29\n",
            )),
    );
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "agg",
        "spec.aggregationLength",
        Some("29"),
        "shorter than prefix /30",
    );
    let ok = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "agg",
                "  ipAddressPools: [labelled]\n  aggregationLength: 30\n",
            )),
    );
    no_errors(&ok);
}

#[test]
fn bgp_communities_standard_large_wellknown_and_alias() {
    let yaml = pools()
        + &obj(
            "Community",
            "aliases",
            "  communities:\n  - {name: transit, value: \"65000:300\"}\n  - {name: big, value: \"large:1:2:3\"}\n",
        )
        + &obj(
            "BGPAdvertisement",
            "ad",
            "  communities: [\"65000:100\", \"large:64512:1:2\", no-export, transit, big]\n",
        );
    let out = build(&yaml);
    no_errors(&out);
    let got: Vec<String> = out.config.bgp_advertisements["ad"]
        .communities
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "65000:100",
            "65000:300",
            "65535:65281",
            "large:1:2:3",
            "large:64512:1:2"
        ]
    );
    assert_eq!(
        out.config.community_aliases()["transit"],
        CommunityValue::Standard(65000 << 16 | 300)
    );
}

#[test]
fn bgp_unknown_community_alias() {
    let out = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "ad",
                "  communities: [\"65000:100\", gold]\n",
            )),
    );
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "ad",
        "spec.communities[1]",
        Some("gold"),
        "Community alias",
    );
}

#[test]
fn bgp_malformed_community() {
    let out = build(&(pools() + &obj("BGPAdvertisement", "ad", "  communities: [\"70000:1\"]\n")));
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "ad",
        "spec.communities[0]",
        Some("70000:1"),
        "16-bit",
    );
}

#[test]
fn bgp_duplicate_community_through_alias() {
    let yaml = pools()
        + &obj(
            "Community",
            "c",
            "  communities:\n  - {name: noexp, value: \"65535:65281\"}\n",
        )
        + &obj(
            "BGPAdvertisement",
            "ad",
            "  communities: [no-export, noexp]\n",
        );
    let out = build(&yaml);
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "ad",
        "spec.communities[1]",
        Some("noexp"),
        "listed twice",
    );
}

#[test]
fn bgp_unknown_peer() {
    let yaml = pools()
        + &peer(
            "tor",
            "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.254\n",
        )
        + &obj("BGPAdvertisement", "ad", "  peers: [tor, tor2]\n");
    let out = build(&yaml);
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "ad",
        "spec.peers[1]",
        Some("tor2"),
        "no valid BGPPeer",
    );
}

#[test]
fn bgp_service_selectors_with_aggregation() {
    let out = build(
        &(pools()
            + &obj(
                "BGPAdvertisement",
                "ad",
                "  ipAddressPools: [v4]\n  aggregationLength: 26\n  serviceSelectors:\n  - matchLabels: {app: web}\n",
            )),
    );
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "ad",
        "spec.serviceSelectors",
        None,
        "aggregation length",
    );
}

#[test]
fn community_alias_defined_twice_across_objects() {
    let yaml = obj(
        "Community",
        "a",
        "  communities:\n  - {name: gold, value: \"65000:1\"}\n",
    ) + &obj(
        "Community",
        "b",
        "  communities:\n  - {name: silver, value: \"65000:2\"}\n  - {name: gold, value: \"65000:3\"}\n",
    );
    let out = build(&yaml);
    one_error(
        &out,
        Kind::Community,
        "b",
        "spec.communities[1].name",
        Some("gold"),
        "already defined by Community a",
    );
    assert_eq!(
        out.config.community_aliases()["gold"],
        CommunityValue::Standard(65000 << 16 | 1)
    );
}

#[test]
fn community_bad_value() {
    let out = build(&obj(
        "Community",
        "a",
        "  communities:\n  - {name: gold, value: \"large:1:2\"}\n",
    ));
    one_error(
        &out,
        Kind::Community,
        "a",
        "spec.communities[0].value",
        Some("large:1:2"),
        "large:GLOBAL:LOCAL1:LOCAL2",
    );
}

#[test]
fn bgp_local_pref_conflict_on_same_pool_peers_and_nodes() {
    let yaml = pools()
        + &obj(
            "BGPAdvertisement",
            "a",
            "  ipAddressPools: [v4]\n  localPref: 100\n",
        )
        + &obj(
            "BGPAdvertisement",
            "b",
            "  ipAddressPools: [v4]\n  localPref: 200\n",
        );
    let out = build(&yaml);
    one_error(
        &out,
        Kind::BGPAdvertisement,
        "b",
        "spec.localPref",
        Some("200"),
        "BGPAdvertisement a announces IPAddressPool v4 with localPref 100",
    );
    assert!(out.config.bgp_advertisements.contains_key("a"));
}

#[test]
fn bgp_local_pref_differs_with_disjoint_peers_is_fine() {
    let yaml = pools()
        + &peer(
            "p1",
            "  myASN: 64512\n  peerASN: 64512\n  peerAddress: 192.0.2.251\n",
        )
        + &peer(
            "p2",
            "  myASN: 64512\n  peerASN: 64512\n  peerAddress: 192.0.2.252\n",
        )
        + &obj(
            "BGPAdvertisement",
            "a",
            "  ipAddressPools: [v4]\n  localPref: 100\n  peers: [p1]\n",
        )
        + &obj(
            "BGPAdvertisement",
            "b",
            "  ipAddressPools: [v4]\n  localPref: 200\n  peers: [p2]\n",
        )
        + &obj(
            "BGPAdvertisement",
            "c",
            "  ipAddressPools: [v4]\n  localPref: 300\n  aggregationLength: 26\n",
        );
    no_errors(&build(&yaml));
}
