//! BGPPeer and BFDProfile validation.

mod common;

use common::*;
use ferrolb_crds::config::{ConnectTime, HoldTime, Kind, PeerAsn};
use std::time::Duration;

const BASE: &str = "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.254\n";

#[test]
fn defaults() {
    let out = build(&peer("tor", BASE));
    no_errors(&out);
    let p = &out.config.peers["tor"];
    assert_eq!(p.peer_asn, PeerAsn::Fixed(64513));
    assert_eq!(p.port, 179);
    assert_eq!(p.hold_time, HoldTime::DEFAULT);
    assert_eq!(p.keepalive_time, Duration::from_secs(30));
    assert!(!p.is_ibgp() && !p.ebgp_multihop && !p.graceful_restart);
    assert_eq!(p.password, None);
    assert!(p.bfd.is_none());
}

#[test]
fn timers_from_duration_strings() {
    let out = build(&peer(
        "tor",
        &format!("{BASE}  holdTime: 1m30s\n  keepaliveTime: 10s\n  connectTime: 5s\n"),
    ));
    no_errors(&out);
    let p = &out.config.peers["tor"];
    assert_eq!(
        (
            p.hold_time.as_duration(),
            p.keepalive_time,
            p.connect_time.map(ConnectTime::as_duration)
        ),
        (
            Duration::from_secs(90),
            Duration::from_secs(10),
            Some(Duration::from_secs(5))
        )
    );
    let only_keepalive = build(&peer("tor", &format!("{BASE}  keepaliveTime: 20s\n")));
    assert_eq!(only_keepalive.config.peers["tor"].hold_time.secs(), 60);
    let odd = build(&peer("tor", &format!("{BASE}  holdTime: 4s\n")));
    no_errors(&odd);
    assert_eq!(
        odd.config.peers["tor"].keepalive_time,
        Duration::from_secs(1)
    );
    let zero = build(&peer("tor", &format!("{BASE}  holdTime: 0s\n")));
    no_errors(&zero);
    assert_eq!(zero.config.peers["tor"].keepalive_time, Duration::ZERO);
}

#[test]
fn hold_time_below_three_seconds() {
    let out = build(&peer("tor", &format!("{BASE}  holdTime: 2s\n")));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.holdTime",
        Some("2s"),
        "0 or at least 3s",
    );
}

#[test]
fn keepalive_not_below_hold() {
    let out = build(&peer(
        "tor",
        &format!("{BASE}  holdTime: 9s\n  keepaliveTime: 9s\n"),
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.keepaliveTime",
        Some("9s"),
        "less than holdTime",
    );
}

#[test]
fn unparseable_duration() {
    let out = build(&peer("tor", &format!("{BASE}  holdTime: ninety\n")));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.holdTime",
        Some("ninety"),
        "not a duration",
    );
}

#[test]
fn connect_time_not_whole_seconds() {
    let out = build(&peer("tor", &format!("{BASE}  connectTime: 1500ms\n")));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.connectTime",
        Some("1500ms"),
        "whole seconds",
    );
}

#[test]
fn bad_peer_address() {
    let out = build(&peer(
        "tor",
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.300\n",
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.peerAddress",
        Some("192.0.2.300"),
        "not an IP address",
    );
    assert!(out.config.peers.is_empty());
}

#[test]
fn multicast_peer_address() {
    let out = build(&peer(
        "tor",
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 224.0.0.5\n",
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.peerAddress",
        Some("224.0.0.5"),
        "unicast",
    );
}

#[test]
fn my_asn_zero() {
    let out = build(&peer(
        "tor",
        "  myASN: 0\n  peerASN: 64513\n  peerAddress: 192.0.2.254\n",
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.myASN",
        Some("0"),
        "between 1 and 4294967295",
    );
}

#[test]
fn four_byte_asns_are_fine() {
    let out = build(&peer(
        "tor",
        "  myASN: 4200000000\n  peerASN: 4294967295\n  peerAddress: 2001:db8::1\n",
    ));
    no_errors(&out);
    assert_eq!(out.config.peers["tor"].my_asn, 4_200_000_000);
}

#[test]
fn peer_asn_and_dynamic_asn_both_set() {
    let out = build(&peer("tor", &format!("{BASE}  dynamicASN: external\n")));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.dynamicASN",
        None,
        "mutually exclusive",
    );
}

#[test]
fn neither_peer_asn_nor_dynamic_asn() {
    let out = build(&peer("tor", "  myASN: 64512\n  peerAddress: 192.0.2.254\n"));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.peerASN",
        None,
        "one of peerASN and dynamicASN",
    );
}

#[test]
fn dynamic_asn_internal() {
    let out = build(&peer(
        "tor",
        "  myASN: 64512\n  dynamicASN: internal\n  peerAddress: 192.0.2.254\n",
    ));
    no_errors(&out);
    assert_eq!(out.config.peers["tor"].peer_asn, PeerAsn::Internal);
    assert!(out.config.peers["tor"].is_ibgp());
}

#[test]
fn ebgp_multihop_on_ibgp_session() {
    let out = build(&peer(
        "tor",
        "  myASN: 64512\n  peerASN: 64512\n  peerAddress: 192.0.2.254\n  ebgpMultiHop: true\n",
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.ebgpMultiHop",
        Some("true"),
        "only to eBGP",
    );
}

#[test]
fn source_address_family_mismatch() {
    let out = build(&peer(
        "tor",
        &format!("{BASE}  sourceAddress: 2001:db8::5\n"),
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.sourceAddress",
        Some("2001:db8::5"),
        "family differs",
    );
}

#[test]
fn router_id_must_be_ipv4() {
    let out = build(&peer("tor", &format!("{BASE}  routerID: 2001:db8::5\n")));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.routerID",
        Some("2001:db8::5"),
        "IPv4",
    );
}

#[test]
fn password_secret_resolved() {
    let yaml = peer(
        "tor",
        &format!("{BASE}  passwordSecret: {{name: tor-md5}}\n"),
    ) + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: tor-md5, namespace: ferrolb-system}\ntype: kubernetes.io/basic-auth\nstringData: {password: s3cret}\n";
    let out = build(&yaml);
    no_errors(&out);
    assert_eq!(out.config.peers["tor"].password.as_deref(), Some("s3cret"));
    // base64 `data` works too.
    let yaml = peer(
        "tor",
        &format!("{BASE}  passwordSecret: {{name: tor-md5}}\n"),
    ) + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: tor-md5, namespace: ferrolb-system}\ntype: kubernetes.io/basic-auth\ndata: {password: czNjcmV0}\n";
    assert_eq!(
        build(&yaml).config.peers["tor"].password.as_deref(),
        Some("s3cret")
    );
}

#[test]
fn password_secret_missing() {
    let out = build(&peer(
        "tor",
        &format!("{BASE}  passwordSecret: {{name: nope}}\n"),
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.passwordSecret",
        Some("ferrolb-system/nope"),
        "Secret not found",
    );
}

#[test]
fn password_secret_wrong_type() {
    let yaml = peer("tor", &format!("{BASE}  passwordSecret: {{name: s}}\n"))
        + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ferrolb-system}\ntype: Opaque\nstringData: {password: x}\n";
    let out = build(&yaml);
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.passwordSecret",
        Some("ferrolb-system/s"),
        "kubernetes.io/basic-auth",
    );
}

#[test]
fn password_and_secret_both_set() {
    let out = build(&peer(
        "tor",
        &format!("{BASE}  password: x\n  passwordSecret: {{name: s}}\n"),
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.passwordSecret",
        None,
        "mutually exclusive",
    );
}

#[test]
fn bfd_profile_resolved_with_defaults() {
    let yaml = peer("tor", &format!("{BASE}  bfdProfile: fast\n"))
        + &obj(
            "BFDProfile",
            "fast",
            "  receiveInterval: 100\n  transmitInterval: 100\n",
        );
    let out = build(&yaml);
    no_errors(&out);
    let bfd = out.config.peers["tor"].bfd.as_ref().unwrap();
    assert_eq!(
        (
            bfd.name.as_str(),
            bfd.receive_interval_ms,
            bfd.transmit_interval_ms,
            bfd.detect_multiplier,
            bfd.echo_interval_ms,
            bfd.minimum_ttl
        ),
        ("fast", 100, 100, 3, 50, 254)
    );
}

#[test]
fn bfd_profile_missing() {
    let out = build(&peer("tor", &format!("{BASE}  bfdProfile: fast\n")));
    one_error(
        &out,
        Kind::BGPPeer,
        "tor",
        "spec.bfdProfile",
        Some("fast"),
        "no valid BFDProfile",
    );
}

#[test]
fn bfd_profile_out_of_range() {
    let out = build(&obj("BFDProfile", "fast", "  detectMultiplier: 1\n"));
    one_error(
        &out,
        Kind::BFDProfile,
        "fast",
        "spec.detectMultiplier",
        Some("1"),
        "between 2 and 255",
    );
}

#[test]
fn bfd_minimum_ttl_is_1_to_254_and_kept_for_multihop_peers() {
    for bad in ["0", "255"] {
        let out = build(&obj("BFDProfile", "mh", &format!("  minimumTtl: {bad}\n")));
        one_error(
            &out,
            Kind::BFDProfile,
            "mh",
            "spec.minimumTtl",
            Some(bad),
            "between 1 and 254",
        );
    }
    // A multihop peer keeps its profile's minimum (the speaker runs RFC 5883 BFD for it).
    let yaml = obj("BFDProfile", "mh", "  minimumTtl: 253\n")
        + &peer(
            "tor",
            &format!("{BASE}  ebgpMultiHop: true\n  bfdProfile: mh\n"),
        );
    let out = build(&yaml);
    no_errors(&out);
    let p = &out.config.peers["tor"];
    assert!(p.ebgp_multihop);
    assert_eq!(p.bfd.as_ref().map(|b| b.minimum_ttl), Some(253));
}

#[test]
fn duplicate_peer_on_same_nodes() {
    let yaml = peer("a", BASE) + &peer("b", BASE);
    let out = build(&yaml);
    one_error(
        &out,
        Kind::BGPPeer,
        "b",
        "spec.peerAddress",
        Some("192.0.2.254"),
        "BGPPeer a already peers",
    );
    assert!(out.config.peers.contains_key("a"));
}

#[test]
fn peers_in_vrfs_keep_their_vrf_and_one_address_may_be_in_two_vrfs() {
    let red = "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  vrf: red\n";
    let blue = "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 198.51.100.1\n  vrf: blue\n";
    let out = build(&(peer("red", red) + &peer("blue", blue) + &peer("plain", BASE)));
    no_errors(&out);
    assert_eq!(out.config.peers["red"].vrf.as_deref(), Some("red"));
    assert_eq!(out.config.peers["blue"].vrf.as_deref(), Some("blue"));
    assert_eq!(out.config.peers["plain"].vrf, None);
    // The same address in another VRF is another router (overlapping address plans); in
    // the same VRF it is a duplicate.
    let green = red.replace("red", "green");
    let out = build(&(peer("red", red) + &peer("green", &green) + &peer("red2", red)));
    one_error(
        &out,
        Kind::BGPPeer,
        "red2",
        "spec.peerAddress",
        Some("192.0.2.1"),
        "BGPPeer red already peers with 192.0.2.1 port 179 on the same nodes in vrf red",
    );
    assert_eq!(out.config.peers["green"].vrf.as_deref(), Some("green"));
    assert_eq!(
        out.config.peers["green"].address,
        out.config.peers["red"].address
    );
}

#[test]
fn same_peer_address_on_disjoint_nodes_is_fine() {
    let yaml = peer(
        "a",
        &format!("{BASE}  nodeSelectors: [{{matchLabels: {{rack: r1}}}}]\n"),
    ) + &peer(
        "b",
        &format!("{BASE}  nodeSelectors: [{{matchLabels: {{rack: r2}}}}]\n"),
    ) + "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {rack: r1}}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {rack: r2}}\n";
    let out = build(&yaml);
    no_errors(&out);
    let r1 = [("rack".to_string(), "r1".to_string())].into();
    let names: Vec<&str> = out
        .config
        .peers_for_node(&r1)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["a"]);
}

#[test]
fn bfd_echo_mode_only_for_ipv4_single_hop_peers() {
    let echo = obj(
        "BFDProfile",
        "echo",
        "  echoMode: true\n  echoInterval: 100\n",
    );
    // IPv4 single-hop: accepted with its interval.
    let out = build(&(echo.clone() + &peer("tor", &format!("{BASE}  bfdProfile: echo\n"))));
    no_errors(&out);
    let b = out.config.peers["tor"].bfd.clone().unwrap();
    assert!(b.echo_mode);
    assert_eq!(b.echo_interval_ms, 100);
    // Multihop (RFC 5883 §3) and IPv6: refused on the peer, naming the profile and echoMode.
    let multihop = peer(
        "mh",
        &format!("{BASE}  ebgpMultiHop: true\n  bfdProfile: echo\n"),
    );
    let v6 = peer(
        "v6",
        "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 2001:db8::1\n  bfdProfile: echo\n",
    );
    let unnumbered = peer(
        "ll",
        "  myASN: 64512\n  peerASN: 64513\n  interface: eth0\n  bfdProfile: echo\n",
    );
    for (name, yaml, why) in [
        ("mh", multihop, "echoMode: true, which RFC 5883 forbids"),
        (
            "v6",
            v6,
            "echoMode: true, which ferrolb supports for IPv4 peers only",
        ),
        (
            "ll",
            unnumbered,
            "echoMode: true, which ferrolb supports for IPv4 peers only",
        ),
    ] {
        let out = build(&(echo.clone() + &yaml));
        one_error(
            &out,
            Kind::BGPPeer,
            name,
            "spec.bfdProfile",
            Some("echo"),
            why,
        );
    }
}

#[test]
fn bfd_on_an_unnumbered_peer() {
    let fast = obj("BFDProfile", "fast", "  receiveInterval: 100\n");
    let out = build(
        &(fast
            + &peer(
                "ll",
                "  myASN: 64512\n  peerASN: 64513\n  interface: eth0\n  bfdProfile: fast\n",
            )),
    );
    no_errors(&out);
    let p = &out.config.peers["ll"];
    assert_eq!(p.interface.as_deref(), Some("eth0"));
    assert_eq!(p.bfd.as_ref().map(|b| b.receive_interval_ms), Some(100));
    // A profile that does not exist is named, as for any peer.
    let out = build(&peer(
        "ll",
        "  myASN: 64512\n  peerASN: 64513\n  interface: eth0\n  bfdProfile: nope\n",
    ));
    one_error(
        &out,
        Kind::BGPPeer,
        "ll",
        "spec.bfdProfile",
        Some("nope"),
        "no valid BFDProfile with this name",
    );
}
