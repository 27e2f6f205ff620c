//! Last-good-version semantics: an object that becomes invalid keeps its previous version.

mod common;

use common::*;
use ferrolb_crds::Config;
use ferrolb_crds::config::{Family, Kind};

#[test]
fn pool_with_a_typo_keeps_its_old_ranges() {
    let v1 = build(&pool("prod", &["192.0.2.0/28"]));
    no_errors(&v1);
    let v2 = Config::build(
        &res(&pool("prod", &["192.0.2.0/28", "192.0.2.x/28"])),
        Some(&v1.config),
    );
    let e = one_error(
        &v2,
        Kind::IPAddressPool,
        "prod",
        "spec.addresses[1]",
        Some("192.0.2.x/28"),
        "not an IP address",
    );
    assert!(e.kept_previous);
    assert!(e.to_string().ends_with("(last valid version kept)"), "{e}");
    assert_eq!(v2.config.pools["prod"], v1.config.pools["prod"]);
}

#[test]
fn new_invalid_pool_is_left_out_even_with_a_previous_config() {
    let v1 = build(&pool("a", &["192.0.2.0/28"]));
    let v2 = Config::build(
        &res(&(pool("a", &["192.0.2.0/28"]) + &pool("b", &["bad"]))),
        Some(&v1.config),
    );
    let e = one_error(
        &v2,
        Kind::IPAddressPool,
        "b",
        "spec.addresses[0]",
        Some("bad"),
        "not a CIDR",
    );
    assert!(!e.kept_previous);
    assert!(!v2.config.pools.contains_key("b"));
}

#[test]
fn pool_edit_that_would_overlap_another_keeps_its_old_version() {
    let base = pool("a", &["192.0.2.0/28"]) + &pool("b", &["198.51.100.0/28"]);
    let v1 = build(&base);
    no_errors(&v1);
    // b is edited to grab a's range; a is unchanged and must win regardless of names.
    let edited = pool("a", &["192.0.2.0/28"]) + &pool("b", &["198.51.100.0/28", "192.0.2.8/29"]);
    let v2 = Config::build(&res(&edited), Some(&v1.config));
    let e = one_error(
        &v2,
        Kind::IPAddressPool,
        "b",
        "spec.addresses[1]",
        Some("192.0.2.8/29"),
        "overlaps 192.0.2.0/28 of IPAddressPool ferrolb-system/a",
    );
    assert!(e.kept_previous);
    assert_eq!(v2.config.pools["b"], v1.config.pools["b"]);
    assert_eq!(v2.config.pools["a"], v1.config.pools["a"]);
}

#[test]
fn unchanged_pool_wins_over_a_new_overlapping_pool_with_an_earlier_name() {
    let v1 = build(&pool("zz-old", &["192.0.2.0/28"]));
    let v2 = Config::build(
        &res(&(pool("aa-new", &["192.0.2.4/30"]) + &pool("zz-old", &["192.0.2.0/28"]))),
        Some(&v1.config),
    );
    let e = one_error(
        &v2,
        Kind::IPAddressPool,
        "aa-new",
        "spec.addresses[0]",
        Some("192.0.2.4/30"),
        "overlaps",
    );
    assert!(!e.kept_previous);
    assert_eq!(v2.config.pools.keys().collect::<Vec<_>>(), ["zz-old"]);
}

#[test]
fn valid_edit_replaces_the_previous_version() {
    let v1 = build(&pool("prod", &["192.0.2.0/28"]));
    let v2 = Config::build(&res(&pool("prod", &["192.0.2.0/27"])), Some(&v1.config));
    no_errors(&v2);
    assert_eq!(v2.config.pools["prod"].size(Family::V4), 32);
}

#[test]
fn deleted_object_is_gone_even_if_it_was_valid() {
    let v1 = build(&(pool("a", &["192.0.2.0/28"]) + &pool("b", &["198.51.100.0/28"])));
    let v2 = Config::build(&res(&pool("a", &["192.0.2.0/28"])), Some(&v1.config));
    no_errors(&v2);
    assert!(!v2.config.pools.contains_key("b"));
}

#[test]
fn peer_with_a_typo_keeps_its_old_timers() {
    let good = peer(
        "tor",
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.254\n  holdTime: 30s\n",
    );
    let v1 = build(&good);
    let bad = peer(
        "tor",
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.254\n  holdTime: 30\n",
    );
    let v2 = Config::build(&res(&bad), Some(&v1.config));
    let e = one_error(
        &v2,
        Kind::BGPPeer,
        "tor",
        "spec.holdTime",
        Some("30"),
        "not a duration",
    );
    assert!(e.kept_previous);
    assert_eq!(v2.config.peers["tor"].hold_time.secs(), 30);
}

#[test]
fn advertisement_kept_at_previous_version_follows_current_pools() {
    let v1 = build(
        &(pool("a", &["192.0.2.0/28"]) + &obj("L2Advertisement", "l2", "  interfaces: [eth0]\n")),
    );
    no_errors(&v1);
    // The ad gets an invalid interface; a new pool appears. The kept version ("all pools")
    // must include the new pool.
    let yaml = pool("a", &["192.0.2.0/28"])
        + &pool("b", &["198.51.100.0/28"])
        + &obj("L2Advertisement", "l2", "  interfaces: [\"eth 0\"]\n");
    let v2 = Config::build(&res(&yaml), Some(&v1.config));
    let e = one_error(
        &v2,
        Kind::L2Advertisement,
        "l2",
        "spec.interfaces[0]",
        Some("eth 0"),
        "whitespace",
    );
    assert!(e.kept_previous);
    let ad = &v2.config.l2_advertisements["l2"];
    assert_eq!(ad.interfaces, ["eth0"]);
    assert_eq!(ad.pools.iter().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn communities_alias_typo_keeps_old_value_for_advertisements() {
    let ad = obj("BGPAdvertisement", "ad", "  communities: [gold]\n");
    let v1 = build(
        &(obj(
            "Community",
            "c",
            "  communities:\n  - {name: gold, value: \"65000:1\"}\n",
        ) + &ad),
    );
    no_errors(&v1);
    let v2 = Config::build(
        &res(&(obj(
            "Community",
            "c",
            "  communities:\n  - {name: gold, value: \"65000:x\"}\n",
        ) + &ad)),
        Some(&v1.config),
    );
    let e = one_error(
        &v2,
        Kind::Community,
        "c",
        "spec.communities[0].value",
        Some("65000:x"),
        "16-bit",
    );
    assert!(e.kept_previous);
    assert_eq!(
        v2.config.bgp_advertisements["ad"].communities,
        v1.config.bgp_advertisements["ad"].communities
    );
}
