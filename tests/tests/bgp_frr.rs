//! Interop: our speaker against FRR 8.4 bgpd in network namespaces.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_bgp::{
    CeaseReason, GracefulMode, LargeCommunity, PeerConfig, PeerSelector, RouteAttrs, SpeakerConfig,
    State,
};
use ferrolb_tests::peers_ferrolb::*;
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::{Netns, require_root, wait_until};

const T: Duration = Duration::from_secs(20);

fn bgpd_conf(extra_neighbor: &str) -> String {
    bgpd_conf_as(64512, extra_neighbor)
}

fn bgpd_conf_as(node_as: u32, extra_neighbor: &str) -> String {
    format!(
        "hostname r\n\
         router bgp 64513\n\
         \x20bgp router-id {ROUTER_V4}\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20no bgp default ipv4-unicast\n\
         \x20neighbor {NODE_V4} remote-as {node_as}\n\
         \x20neighbor {NODE_V4} timers connect 1\n\
         {extra_neighbor}\
         \x20address-family ipv4 unicast\n\
         \x20 neighbor {NODE_V4} activate\n\
         \x20exit-address-family\n\
         \x20address-family ipv6 unicast\n\
         \x20 neighbor {NODE_V4} activate\n\
         \x20exit-address-family\n"
    )
}

fn start_frr(r: &Netns, extra: &str) -> Frr {
    let log = format!(" neighbor {NODE_V4} description ferrolb-node\n{extra}");
    Frr::start(r, &bgpd_conf(&log), None)
}

fn peer() -> PeerConfig {
    let mut p = PeerConfig::new(ip(ROUTER_V4), 64512, 64513);
    p.connect_time = Duration::from_secs(2);
    p
}

fn routes() -> BTreeMap<ipnet::IpNet, RouteAttrs> {
    let mut r = BTreeMap::new();
    r.insert(
        "203.0.113.10/32".parse().unwrap(),
        RouteAttrs {
            med: Some(7),
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
            ..Default::default()
        },
    );
    r
}

fn wait_route(frr: &Frr, prefix: &str, present: bool) -> bool {
    wait_until(T, Duration::from_millis(100), || {
        (frr.has_route(prefix) == present).then_some(())
    })
    .is_some()
}

#[test]
fn frr_routes_attributes_refresh_withdraw_and_cease_reason() {
    if !require_root("frr_routes_attributes_refresh_withdraw_and_cease_reason") {
        return;
    }
    let (r, n) = link_lab("bgpfrr1");
    let frr = start_frr(&r, "");
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
    sp.speaker.add_peer(peer()).unwrap();
    assert!(
        frr.wait_established(NODE_V4, T),
        "{}",
        frr.vtysh(&["show bgp summary"])
    );
    for p in ["203.0.113.10/32", "203.0.113.11/32", "2001:db8:100::10/128"] {
        assert!(
            wait_route(&frr, p, true),
            "{p} missing: {}",
            frr.vtysh(&["show bgp all"])
        );
    }
    let v4 = frr.route("203.0.113.10/32");
    let path = &v4["paths"][0];
    assert_eq!(path["nexthops"][0]["ip"], NODE_V4, "{v4}");
    assert_eq!(path["community"]["string"], "65000:100", "{v4}");
    assert_eq!(path["largeCommunity"]["string"], "64512:1:2", "{v4}");
    assert_eq!(path["metric"], 7, "{v4}");
    assert_eq!(path["aspath"]["string"], "64512", "{v4}");
    let v6 = frr.route("2001:db8:100::10/128");
    assert_eq!(v6["paths"][0]["nexthops"][0]["ip"], NODE_V6, "{v6}");
    // Route refresh from FRR: we replay the Adj-RIB-Out.
    let before = sp.speaker.counters();
    frr.vtysh(&[&format!("clear bgp ipv4 unicast {NODE_V4} soft in")]);
    let after = wait_until(T, Duration::from_millis(50), || {
        let c = sp.speaker.counters();
        (c.messages_in[5] > before.messages_in[5] && c.messages_out[2] > before.messages_out[2])
            .then_some(c)
    });
    assert!(
        after.is_some(),
        "no ROUTE-REFRESH answered: {:?}",
        sp.speaker.counters()
    );
    assert!(frr.has_route("203.0.113.10/32"));
    // Withdraw.
    let mut less = routes();
    less.remove(&"203.0.113.11/32".parse().unwrap());
    less.remove(&"2001:db8:100::10/128".parse().unwrap());
    sp.speaker.set_routes(PeerSelector::All, less).unwrap();
    assert!(wait_route(&frr, "203.0.113.11/32", false));
    assert!(wait_route(&frr, "2001:db8:100::10/128", false));
    assert!(frr.has_route("203.0.113.10/32"));
    // Cease with a shutdown communication.
    sp.run(|s| async move {
        s.remove_peer(
            ip(ROUTER_V4),
            CeaseReason::admin_shutdown("frr maintenance test"),
        )
        .await
    })
    .unwrap();
    let seen = wait_until(T, Duration::from_millis(100), || {
        let nb = frr.neighbor(NODE_V4).to_string();
        let log = frr.log("bgpd");
        (nb.contains("frr maintenance test") || log.contains("frr maintenance test")).then_some(())
    });
    assert!(
        seen.is_some(),
        "{}\n{}",
        frr.neighbor(NODE_V4),
        frr.log("bgpd")
    );
    assert!(wait_route(&frr, "203.0.113.10/32", false));
}

#[test]
fn frr_md5_mismatch_fails_and_match_establishes() {
    if !require_root("frr_md5_mismatch_fails_and_match_establishes") {
        return;
    }
    let (r, n) = link_lab("bgpfrr2");
    let frr = start_frr(&r, &format!(" neighbor {NODE_V4} password s3cret-key\n"));
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    let mut p = peer();
    p.md5_password = Some("wrong-key".into());
    sp.speaker.add_peer(p.clone()).unwrap();
    // The kernel drops segments with a bad signature: no session for a few retries.
    let up = wait_until(Duration::from_secs(4), Duration::from_millis(100), || {
        (frr.neighbor_state(NODE_V4) == "Established").then_some(())
    });
    assert!(up.is_none(), "session came up with a wrong MD5 key");
    assert_ne!(sp.status(ip(ROUTER_V4)).unwrap().state, State::Established);
    sp.run(|s| async move {
        s.remove_peer(ip(ROUTER_V4), CeaseReason::peer_deconfigured())
            .await
    })
    .unwrap();
    p.md5_password = Some("s3cret-key".into());
    sp.speaker.add_peer(p).unwrap();
    sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
    assert!(
        frr.wait_established(NODE_V4, T),
        "{}",
        frr.neighbor(NODE_V4)
    );
    assert!(wait_route(&frr, "203.0.113.10/32", true));
}

#[test]
fn frr_keeps_routes_across_graceful_restart() {
    if !require_root("frr_keeps_routes_across_graceful_restart") {
        return;
    }
    let (r, n) = link_lab("bgpfrr3");
    let frr = start_frr(&r, "");
    let mut p = peer();
    p.graceful_restart = true;
    p.restart_time = 60;
    {
        let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
        sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
        sp.speaker.add_peer(p.clone()).unwrap();
        assert!(frr.wait_established(NODE_V4, T));
        assert!(wait_route(&frr, "203.0.113.10/32", true));
        let nb = frr.neighbor(NODE_V4).to_string();
        assert!(nb.contains("gracefulRestart"), "{nb}");
        sp.run(|s| async move { s.shutdown(GracefulMode::KeepForGracefulRestart).await });
    }
    // The session is gone but FRR (GR helper) keeps our routes, marked stale.
    let down = wait_until(T, Duration::from_millis(100), || {
        (frr.neighbor_state(NODE_V4) != "Established").then_some(())
    });
    assert!(down.is_some());
    let stale = frr.route("203.0.113.10/32");
    assert!(
        frr.has_route("203.0.113.10/32"),
        "route dropped: {stale}\n{}\n{}",
        frr.neighbor(NODE_V4),
        frr.log("bgpd")
    );
    assert!(stale.to_string().contains("stale"), "{stale}");
    // The speaker comes back: same routes, End-of-RIB, no longer stale.
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    sp.speaker.set_routes(PeerSelector::All, routes()).unwrap();
    sp.speaker.add_peer(p).unwrap();
    assert!(frr.wait_established(NODE_V4, T));
    let fresh = wait_until(T, Duration::from_millis(100), || {
        let r = frr.route("203.0.113.10/32");
        (frr.has_route("203.0.113.10/32") && !r.to_string().contains("stale")).then_some(())
    });
    assert!(fresh.is_some(), "{}", frr.route("203.0.113.10/32"));
    // A clean shutdown (Cease + withdraw) removes them.
    sp.run(|s| async move { s.shutdown(GracefulMode::CeaseAndWithdraw).await });
    assert!(wait_route(&frr, "203.0.113.10/32", false));
}

#[test]
fn frr_ibgp_sees_local_pref_and_peer_restart_reconnects() {
    if !require_root("frr_ibgp_sees_local_pref_and_peer_restart_reconnects") {
        return;
    }
    let (r, n) = link_lab("bgpfrr4");
    let conf = bgpd_conf_as(64513, "");
    let mut frr = Frr::start(&r, &conf, None);
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    let mut rs = BTreeMap::new();
    rs.insert(
        "203.0.113.40/32".parse().unwrap(),
        RouteAttrs {
            local_pref: Some(250),
            ..Default::default()
        },
    );
    sp.speaker.set_routes(PeerSelector::All, rs).unwrap();
    sp.speaker
        .add_peer(PeerConfig {
            local_asn: 64513,
            ..peer()
        })
        .unwrap();
    assert!(wait_route(&frr, "203.0.113.40/32", true));
    let v = frr.route("203.0.113.40/32");
    assert_eq!(v["paths"][0]["locPrf"], 250, "{v}");
    // bgpd restarts: we notice, back off, reconnect and announce again.
    frr.stop_bgpd();
    let down = wait_until(T, Duration::from_millis(50), || {
        (sp.status(ip(ROUTER_V4)).unwrap().state != State::Established).then_some(())
    });
    assert!(down.is_some());
    frr.start_bgpd(&r);
    assert!(
        frr.wait_established(NODE_V4, T),
        "{}",
        frr.neighbor(NODE_V4)
    );
    assert!(wait_route(&frr, "203.0.113.40/32", true));
    assert_eq!(sp.status(ip(ROUTER_V4)).unwrap().flaps, 1);
}
