//! Interop: our speaker against BIRD 2 in network namespaces.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_bgp::{
    CeaseReason, Family, GracefulMode, LargeCommunity, PeerConfig, PeerSelector, RouteAttrs,
    SpeakerConfig, State,
};
use ferrolb_tests::peers_bird::{Bird, BirdBgp};
use ferrolb_tests::peers_ferrolb::*;
use ferrolb_tests::{require_root, wait_until};

const T: Duration = Duration::from_secs(15);

fn peer(bird_as: u32) -> PeerConfig {
    let mut p = PeerConfig::new(ip(ROUTER_V4), 64512, bird_as);
    p.connect_time = Duration::from_secs(2);
    p.source_addr = Some(ip(NODE_V4));
    p
}

fn bird_conf(node_as: u32, bird_as: u32, extra: &str) -> String {
    Bird::bgp_protocol(&BirdBgp {
        name: "node",
        local_addr: ROUTER_V4,
        local_as: bird_as,
        neighbor: NODE_V4,
        neighbor_as: node_as,
        extra,
        ipv6: Some(""),
        ipv4: "",
    })
}

fn routes() -> BTreeMap<ipnet::IpNet, RouteAttrs> {
    let mut r = BTreeMap::new();
    r.insert(
        "203.0.113.10/32".parse().unwrap(),
        RouteAttrs {
            med: Some(5),
            communities: vec![(65000 << 16) | 100],
            large_communities: vec![LargeCommunity(64512, 1, 2)],
            ..Default::default()
        },
    );
    r.insert("203.0.113.11/32".parse().unwrap(), RouteAttrs::default());
    r.insert(
        "2001:db8:100::10/128".parse().unwrap(),
        RouteAttrs {
            next_hop: Some(ip(NODE_V6)),
            communities: vec![(65000 << 16) | 200],
            ..Default::default()
        },
    );
    r
}

#[test]
fn bird_ebgp_routes_attributes_withdraw_and_cease_reason() {
    if !require_root("bird_ebgp_routes_attributes_withdraw_and_cease_reason") {
        return;
    }
    let (r, n) = link_lab("bgpbird1");
    let bird = Bird::start(&r, ROUTER_V4, &bird_conf(64512, 64513, ""));
    let sp = Speaker::start(
        &n,
        SpeakerConfig::new(ip(NODE_V4).to_string().parse().unwrap()),
    );
    sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
    sp.speaker.add_peer(peer(64513)).unwrap();
    assert!(
        bird.wait_established("node", T),
        "{}",
        bird.protocol("node")
    );
    assert!(sp.wait_state(ip(ROUTER_V4), State::Established, T));
    let ok = wait_until(T, Duration::from_millis(50), || {
        (bird.has_route("203.0.113.10/32")
            && bird.has_route("203.0.113.11/32")
            && bird.has_route("2001:db8:100::10/128"))
        .then_some(())
    });
    assert!(
        ok.is_some(),
        "routes missing: {}",
        bird.birdc(&["show", "route", "all"])
    );
    let v4 = bird.route("203.0.113.10/32");
    assert!(v4.contains("via 192.0.2.10"), "{v4}");
    assert!(v4.contains("BGP.as_path: 64512"), "{v4}");
    assert!(v4.contains("(65000,100)"), "{v4}");
    assert!(v4.contains("(64512, 1, 2)"), "{v4}");
    assert!(v4.contains("BGP.med: 5"), "{v4}");
    let v6 = bird.route("2001:db8:100::10/128");
    assert!(v6.contains("via 2001:db8::10"), "{v6}");
    assert!(v6.contains("(65000,200)"), "{v6}");
    // Withdraw one v4 and the v6 route.
    let mut less = routes();
    less.remove(&"203.0.113.11/32".parse().unwrap());
    less.remove(&"2001:db8:100::10/128".parse().unwrap());
    sp.speaker.set_routes(PeerSelector::All, less).unwrap();
    let gone = wait_until(T, Duration::from_millis(50), || {
        (!bird.has_route("203.0.113.11/32") && !bird.has_route("2001:db8:100::10/128"))
            .then_some(())
    });
    assert!(gone.is_some(), "{}", bird.birdc(&["show", "route", "all"]));
    assert!(bird.has_route("203.0.113.10/32"));
    assert_eq!(sp.status(ip(ROUTER_V4)).unwrap().prefixes_sent, 1);
    // Remove the peer with a shutdown communication: BIRD shows it.
    sp.run(|s| async move {
        s.remove_peer(
            ip(ROUTER_V4),
            CeaseReason::admin_shutdown("ferrolb test maintenance"),
        )
        .await
    })
    .unwrap();
    let seen = wait_until(T, Duration::from_millis(50), || {
        let p = bird.protocol("node");
        (!p.contains("Established") && p.contains("ferrolb test maintenance")).then_some(p)
    });
    assert!(seen.is_some(), "{}\n{}", bird.protocol("node"), bird.log());
    assert!(!bird.has_route("203.0.113.10/32"));
    let c = sp.speaker.counters();
    assert!(
        c.messages_out[2] >= 3 && c.notifications_out[6] >= 1,
        "{c:?}"
    );
}

#[test]
fn bird_ibgp_sees_local_pref() {
    if !require_root("bird_ibgp_sees_local_pref") {
        return;
    }
    let (r, n) = link_lab("bgpbird2");
    let bird = Bird::start(&r, ROUTER_V4, &bird_conf(64512, 64512, "direct;"));
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    let mut rs = BTreeMap::new();
    rs.insert(
        "203.0.113.20/32".parse().unwrap(),
        RouteAttrs {
            local_pref: Some(250),
            ..Default::default()
        },
    );
    sp.speaker.add_peer(peer(64512)).unwrap();
    sp.speaker.set_routes(PeerSelector::All, rs).unwrap();
    let ok = wait_until(T, Duration::from_millis(50), || {
        bird.has_route("203.0.113.20/32").then_some(())
    });
    assert!(ok.is_some(), "{}", bird.protocol("node"));
    let out = bird.route("203.0.113.20/32");
    assert!(out.contains("BGP.local_pref: 250"), "{out}");
}

#[test]
fn bird_restart_hold_expiry_and_reconnect() {
    if !require_root("bird_restart_hold_expiry_and_reconnect") {
        return;
    }
    let (r, n) = link_lab("bgpbird3");
    let conf = bird_conf(64512, 64513, "hold time 3; keepalive time 1;");
    let mut bird = Bird::start(&r, ROUTER_V4, &conf);
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    let mut p = peer(64513);
    p.hold_time = 3;
    p.keepalive = 1;
    p.families = vec![Family::Ipv4Unicast];
    sp.speaker.add_peer(p).unwrap();
    sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
    assert!(bird.wait_established("node", T));
    assert!(
        wait_until(T, Duration::from_millis(50), || bird
            .has_route("203.0.113.10/32")
            .then_some(()))
        .is_some()
    );
    // A hung router (SIGSTOP): our hold timer drops the session with NOTIFICATION 4/0.
    bird.signal("STOP");
    let dropped = wait_until(T, Duration::from_millis(50), || {
        let s = sp.status(ip(ROUTER_V4)).unwrap();
        (s.state != State::Established
            && s.last_error.as_deref().is_some_and(|e| e.contains("4/0")))
        .then_some(s)
    });
    bird.signal("CONT");
    let s = dropped.expect("hold timer did not drop the silent peer");
    assert_eq!(s.flaps, 1);
    // The router restarts: we reconnect and announce again.
    bird.stop();
    drop(bird);
    let bird = Bird::start(&r, ROUTER_V4, &conf);
    assert!(
        bird.wait_established("node", T),
        "{}",
        bird.protocol("node")
    );
    assert!(
        wait_until(T, Duration::from_millis(50), || bird
            .has_route("203.0.113.10/32")
            .then_some(()))
        .is_some()
    );
    assert!(sp.status(ip(ROUTER_V4)).unwrap().flaps >= 1);
}

#[test]
fn bird_over_ipv6_session_gets_v6_next_hop_and_explicit_v4_next_hop() {
    if !require_root("bird_over_ipv6_session_gets_v6_next_hop_and_explicit_v4_next_hop") {
        return;
    }
    let (r, n) = link_lab("bgpbird4");
    let conf = Bird::bgp_protocol(&BirdBgp {
        name: "node6",
        local_addr: ROUTER_V6,
        local_as: 64513,
        neighbor: NODE_V6,
        neighbor_as: 64512,
        extra: "",
        ipv6: Some(""),
        ipv4: "",
    });
    let bird = Bird::start(&r, ROUTER_V4, &conf);
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    let mut rs = BTreeMap::new();
    // Over an IPv6 session the IPv6 route takes the session address; IPv4 needs its own.
    rs.insert(
        "2001:db8:100::20/128".parse().unwrap(),
        RouteAttrs::default(),
    );
    rs.insert(
        "203.0.113.30/32".parse().unwrap(),
        RouteAttrs {
            next_hop: Some(ip(NODE_V4)),
            ..Default::default()
        },
    );
    rs.insert("203.0.113.31/32".parse().unwrap(), RouteAttrs::default());
    let mut p = PeerConfig::new(ip(ROUTER_V6), 64512, 64513);
    p.connect_time = Duration::from_secs(2);
    sp.speaker.add_peer(p).unwrap();
    sp.speaker.set_routes(PeerSelector::All, rs).unwrap();
    assert!(
        bird.wait_established("node6", T),
        "{}",
        bird.protocol("node6")
    );
    let ok = wait_until(T, Duration::from_millis(50), || {
        (bird.has_route("2001:db8:100::20/128") && bird.has_route("203.0.113.30/32")).then_some(())
    });
    assert!(ok.is_some(), "{}", bird.birdc(&["show", "route", "all"]));
    assert!(
        bird.route("2001:db8:100::20/128")
            .contains("via 2001:db8::10")
    );
    assert!(bird.route("203.0.113.30/32").contains("via 192.0.2.10"));
    // The IPv4 route without a next hop of its family is held back and counted.
    assert!(!bird.has_route("203.0.113.31/32"));
    assert_eq!(sp.status(ip(ROUTER_V6)).unwrap().unresolved_next_hop, 1);
}

#[test]
fn bird_keeps_routes_across_graceful_restart() {
    if !require_root("bird_keeps_routes_across_graceful_restart") {
        return;
    }
    let (r, n) = link_lab("bgpbird5");
    // BIRD's default "graceful restart aware" makes it a helper for a restarting peer.
    let bird = Bird::start(&r, ROUTER_V4, &bird_conf(64512, 64513, ""));
    let mut p = peer(64513);
    p.graceful_restart = true;
    p.restart_time = 60;
    {
        let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
        sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
        sp.speaker.add_peer(p.clone()).unwrap();
        assert!(bird.wait_established("node", T));
        assert!(
            wait_until(T, Duration::from_millis(50), || bird
                .has_route("203.0.113.10/32")
                .then_some(()))
            .is_some()
        );
        sp.run(|s| async move { s.shutdown(GracefulMode::KeepForGracefulRestart).await });
    }
    let down = wait_until(T, Duration::from_millis(50), || {
        (!bird.is_established("node")).then_some(())
    });
    assert!(down.is_some());
    // Kept while we are away: BIRD runs the restart timer we advertised.
    let kept = bird.route("203.0.113.10/32");
    assert!(
        bird.has_route("203.0.113.10/32"),
        "{kept}\n{}",
        bird.protocol("node")
    );
    let proto = bird.protocol("node");
    assert!(
        proto.contains("Neighbor graceful restart active"),
        "{proto}"
    );
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
    sp.speaker.add_peer(p).unwrap();
    assert!(bird.wait_established("node", T));
    let fresh = wait_until(T, Duration::from_millis(50), || {
        let r = bird.route("203.0.113.10/32");
        let proto = bird.protocol("node");
        (bird.has_route("203.0.113.10/32")
            && !r.contains("stale")
            && !proto.contains("graceful restart active"))
        .then_some(())
    });
    assert!(fresh.is_some(), "{}", bird.route("203.0.113.10/32"));
}

#[test]
fn ebgp_multihop_sets_ttl_for_a_router_two_hops_away() {
    if !require_root("ebgp_multihop_sets_ttl_for_a_router_two_hops_away") {
        return;
    }
    // node (192.0.2.10) -- mid (192.0.2.1 | 198.51.100.1, forwarding) -- router (198.51.100.2)
    let node = ferrolb_tests::Netns::new("bgpbird6-n");
    let mid = ferrolb_tests::Netns::new("bgpbird6-m");
    let router = ferrolb_tests::Netns::new("bgpbird6-r");
    ferrolb_tests::veth(&node, "eth0", &mid, "eth0");
    ferrolb_tests::veth(&mid, "eth1", &router, "eth0");
    node.ip(&["addr", "add", "192.0.2.10/24", "dev", "eth0"])
        .unwrap();
    mid.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"])
        .unwrap();
    mid.ip(&["addr", "add", "198.51.100.1/24", "dev", "eth1"])
        .unwrap();
    router
        .ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"])
        .unwrap();
    node.ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.1"])
        .unwrap();
    router
        .ip(&["route", "add", "192.0.2.0/24", "via", "198.51.100.1"])
        .unwrap();
    mid.sysctl("net.ipv4.ip_forward=1").unwrap();
    let conf = Bird::bgp_protocol(&BirdBgp {
        name: "node",
        local_addr: "198.51.100.2",
        local_as: 64513,
        neighbor: NODE_V4,
        neighbor_as: 64512,
        extra: "multihop 2;",
        ipv6: None,
        ipv4: "",
    });
    let bird = Bird::start(&router, "198.51.100.2", &conf);
    let sp = Speaker::start(&node, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    let mut p = PeerConfig::new(ip("198.51.100.2"), 64512, 64513);
    p.connect_time = Duration::from_secs(1);
    p.families = vec![Family::Ipv4Unicast];
    // Without multihop our packets leave with TTL 1 and die at `mid`.
    sp.speaker.add_peer(p.clone()).unwrap();
    let up = wait_until(Duration::from_secs(3), Duration::from_millis(100), || {
        bird.is_established("node").then_some(())
    });
    assert!(
        up.is_none(),
        "eBGP session came up through a router with TTL 1"
    );
    sp.run(|s| async move {
        s.remove_peer(ip("198.51.100.2"), CeaseReason::peer_deconfigured())
            .await
    })
    .unwrap();
    p.ebgp_multihop = Some(2);
    sp.speaker.add_peer(p).unwrap();
    let mut rs = BTreeMap::new();
    rs.insert("203.0.113.50/32".parse().unwrap(), RouteAttrs::default());
    sp.speaker.set_routes(PeerSelector::All, rs).unwrap();
    assert!(
        bird.wait_established("node", T),
        "{}",
        bird.protocol("node")
    );
    let got = wait_until(T, Duration::from_millis(50), || {
        bird.has_route("203.0.113.50/32").then_some(())
    });
    assert!(got.is_some(), "{}", bird.birdc(&["show", "route", "all"]));
}
