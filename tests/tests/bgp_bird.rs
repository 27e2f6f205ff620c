//! Interop: our speaker against BIRD 2 in network namespaces.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_bgp::{
    CeaseReason, Family, LargeCommunity, PeerConfig, PeerSelector, RouteAttrs, SpeakerConfig, State,
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
