//! IPAddressPool validation: every error names the pool, the field and the bad value.

mod common;

use common::*;
use ferrolb_crds::config::{Family, Kind};
use std::net::IpAddr;

#[test]
fn valid_pool_has_ranges_per_family_and_defaults() {
    let out = build(&pool(
        "prod",
        &[
            "192.0.2.0/28",
            "198.51.100.10-198.51.100.20",
            "2001:db8::/120",
        ],
    ));
    no_errors(&out);
    let p = &out.config.pools["prod"];
    assert!(p.auto_assign);
    assert!(!p.avoid_buggy_ips);
    assert_eq!(
        p.intervals(Family::V4),
        vec![(0xC000_0200, 0xC000_020F), (0xC633_640A, 0xC633_6414)]
    );
    assert_eq!(p.size(Family::V4), 16 + 11);
    assert_eq!(p.size(Family::V6), 256);
    assert!(p.contains("198.51.100.20".parse::<IpAddr>().unwrap()));
    assert!(!p.contains("198.51.100.21".parse::<IpAddr>().unwrap()));
}

#[test]
fn range_start_after_end() {
    let out = build(&pool(
        "prod",
        &["192.0.2.0/28", "203.0.113.1/32", "192.0.2.5-192.0.2.1"],
    ));
    let e = one_error(
        &out,
        Kind::IPAddressPool,
        "prod",
        "spec.addresses[2]",
        Some("192.0.2.5-192.0.2.1"),
        "range start after end",
    );
    assert_eq!(
        e.to_string(),
        "IPAddressPool ferrolb-system/prod: spec.addresses[2] \"192.0.2.5-192.0.2.1\": range start after end"
    );
    assert!(
        out.config.pools.is_empty(),
        "an invalid new pool is left out"
    );
}

#[test]
fn range_mixing_families() {
    let out = build(&pool("mixed", &["192.0.2.1-2001:db8::1"]));
    one_error(
        &out,
        Kind::IPAddressPool,
        "mixed",
        "spec.addresses[0]",
        Some("192.0.2.1-2001:db8::1"),
        "mixes families",
    );
}

#[test]
fn bad_cidr_prefix_length() {
    let out = build(&pool("p", &["192.0.2.0/33"]));
    one_error(
        &out,
        Kind::IPAddressPool,
        "p",
        "spec.addresses[0]",
        Some("192.0.2.0/33"),
        "too long",
    );
}

#[test]
fn garbage_address() {
    let out = build(&pool("p", &["192.0.2.0/28", "not-an-ip"]));
    one_error(
        &out,
        Kind::IPAddressPool,
        "p",
        "spec.addresses[1]",
        Some("not-an-ip"),
        "is not an IP address",
    );
}

#[test]
fn single_address_without_prefix_suggests_slash_32() {
    let out = build(&pool("p", &["192.0.2.7"]));
    one_error(
        &out,
        Kind::IPAddressPool,
        "p",
        "spec.addresses[0]",
        Some("192.0.2.7"),
        "192.0.2.7/32",
    );
}

#[test]
fn empty_addresses() {
    let out = build(&obj("IPAddressPool", "empty", "  addresses: []\n"));
    one_error(
        &out,
        Kind::IPAddressPool,
        "empty",
        "spec.addresses",
        None,
        "at least one address",
    );
}

#[test]
fn overlap_within_a_pool() {
    let out = build(&pool(
        "p",
        &["192.0.2.0/28", "198.51.100.0/24", "192.0.2.8-192.0.2.20"],
    ));
    one_error(
        &out,
        Kind::IPAddressPool,
        "p",
        "spec.addresses[2]",
        Some("192.0.2.8-192.0.2.20"),
        "overlaps spec.addresses[0] \"192.0.2.0/28\"",
    );
}

#[test]
fn overlap_within_a_pool_ipv6() {
    let out = build(&pool(
        "p",
        &["2001:db8::/120", "2001:db8::80-2001:db8::1ff"],
    ));
    one_error(
        &out,
        Kind::IPAddressPool,
        "p",
        "spec.addresses[1]",
        Some("2001:db8::80-2001:db8::1ff"),
        "overlaps",
    );
}

#[test]
fn overlap_across_pools_rejects_the_later_pool_only() {
    let yaml =
        pool("a", &["192.0.2.0/28"]) + &pool("b", &["198.51.100.0/28", "192.0.2.15-192.0.2.16"]);
    let out = build(&yaml);
    one_error(
        &out,
        Kind::IPAddressPool,
        "b",
        "spec.addresses[1]",
        Some("192.0.2.15-192.0.2.16"),
        "overlaps 192.0.2.0/28 of IPAddressPool ferrolb-system/a",
    );
    assert!(out.config.pools.contains_key("a"));
    assert!(!out.config.pools.contains_key("b"));
}

#[test]
fn adjacent_pools_do_not_overlap() {
    let out = build(&(pool("a", &["192.0.2.0/28"]) + &pool("b", &["192.0.2.16/28"])));
    no_errors(&out);
    assert_eq!(out.config.pools.len(), 2);
}

#[test]
fn an_invalid_pool_does_not_discard_valid_ones() {
    let yaml = pool("good", &["192.0.2.0/28"])
        + &pool("bad", &["192.0.2.99-192.0.2.3"])
        + &pool("also-good", &["2001:db8::/64"]);
    let out = build(&yaml);
    one_error(
        &out,
        Kind::IPAddressPool,
        "bad",
        "spec.addresses[0]",
        Some("192.0.2.99-192.0.2.3"),
        "start after end",
    );
    assert_eq!(
        out.config.pools.keys().collect::<Vec<_>>(),
        ["also-good", "good"]
    );
}

#[test]
fn duplicate_namespace_in_service_allocation() {
    let out = build(&obj(
        "IPAddressPool",
        "p",
        "  addresses: [192.0.2.0/28]\n  serviceAllocation:\n    namespaces: [web, db, web]\n",
    ));
    one_error(
        &out,
        Kind::IPAddressPool,
        "p",
        "spec.serviceAllocation.namespaces[2]",
        Some("web"),
        "duplicate namespace",
    );
}

#[test]
fn invalid_service_selector_operator() {
    let out = build(&obj(
        "IPAddressPool",
        "p",
        "  addresses: [192.0.2.0/28]\n  serviceAllocation:\n    serviceSelectors:\n    - matchExpressions: [{key: app, operator: Equals, values: [web]}]\n",
    ));
    one_error(
        &out,
        Kind::IPAddressPool,
        "p",
        "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].operator",
        Some("Equals"),
        "operator must be one of",
    );
}

#[test]
fn namespace_selectors_resolve_to_namespace_names() {
    let yaml = obj(
        "IPAddressPool",
        "team",
        "  addresses: [192.0.2.0/28]\n  autoAssign: false\n  avoidBuggyIPs: true\n  serviceAllocation:\n    priority: 10\n    namespaces: [extra]\n    namespaceSelectors:\n    - matchLabels: {team: blue}\n    serviceSelectors:\n    - matchLabels: {expose: \"yes\"}\n",
    ) + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: blue-1, labels: {team: blue}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: red-1, labels: {team: red}}\n";
    let out = build(&yaml);
    no_errors(&out);
    let p = &out.config.pools["team"];
    assert!(!p.auto_assign && p.avoid_buggy_ips);
    let a = p.allocation.as_ref().unwrap();
    assert_eq!(a.priority, Some(10));
    assert_eq!(a.namespaces.iter().collect::<Vec<_>>(), ["blue-1", "extra"]);
    let expose = [("expose".to_string(), "yes".to_string())].into();
    assert!(p.allows("blue-1", &expose));
    assert!(!p.allows("red-1", &expose));
    assert!(!p.allows("blue-1", &Default::default()));
}

#[test]
fn duplicate_pool_names_across_namespaces() {
    let yaml = pool("p", &["192.0.2.0/28"])
        + "---\napiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p, namespace: other}\nspec: {addresses: [198.51.100.0/28]}\n";
    let out = Config::build(&res(&yaml), None);
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    let e = &out.errors[0];
    assert_eq!(
        (e.object.namespace.as_str(), e.field.as_str()),
        ("other", "metadata.name")
    );
    assert!(e.message.contains("names must be unique"));
    assert_eq!(out.config.pools["p"].namespace, "ferrolb-system");
}

use ferrolb_crds::Config;
