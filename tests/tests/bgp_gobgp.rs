//! Interop: our speaker against GoBGP 3.x (gobgpd) in network namespaces.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_bgp::{
    CeaseReason, LargeCommunity, PeerConfig, PeerSelector, RouteAttrs, SpeakerConfig,
};
use ferrolb_tests::peers_ferrolb::*;
use ferrolb_tests::peers_gobgp::Gobgp;
use ferrolb_tests::{require_root, wait_until};

const T: Duration = Duration::from_secs(20);

fn gobgp_toml() -> String {
    format!(
        r#"[global.config]
  as = 64513
  router-id = "{ROUTER_V4}"
  local-address-list = ["{ROUTER_V4}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{NODE_V4}"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#
    )
}

#[test]
fn gobgp_receives_routes_withdrawals_and_cease() {
    if !require_root("gobgp_receives_routes_withdrawals_and_cease") {
        return;
    }
    let (r, n) = link_lab("bgpgobgp");
    let mut gobgp = Gobgp::start(&r, &gobgp_toml());
    let sp = Speaker::start(&n, SpeakerConfig::new("192.0.2.10".parse().unwrap()));
    let mut routes = BTreeMap::new();
    routes.insert(
        "203.0.113.10/32".parse().unwrap(),
        RouteAttrs {
            communities: vec![(65000 << 16) | 100],
            large_communities: vec![LargeCommunity(64512, 1, 2)],
            med: Some(9),
            ..Default::default()
        },
    );
    routes.insert(
        "2001:db8:100::10/128".parse().unwrap(),
        RouteAttrs {
            next_hop: Some(ip(NODE_V6)),
            ..Default::default()
        },
    );
    sp.speaker
        .set_routes(PeerSelector::All, routes.clone())
        .unwrap();
    let mut p = PeerConfig::new(ip(ROUTER_V4), 64512, 64513);
    p.connect_time = Duration::from_secs(2);
    sp.speaker.add_peer(p).unwrap();
    assert!(
        gobgp.wait_established(NODE_V4, T),
        "{}",
        gobgp.cli(&["neighbor"])
    );
    let got = wait_until(T, Duration::from_millis(100), || {
        (gobgp.has_route("203.0.113.10/32") && gobgp.has_route("2001:db8:100::10/128"))
            .then_some(())
    });
    assert!(
        got.is_some(),
        "{}",
        gobgp.cli(&["global", "rib", "-a", "ipv4"])
    );
    let v4 = gobgp.route("203.0.113.10/32").to_string();
    assert!(v4.contains(NODE_V4), "{v4}");
    assert!(v4.contains(&((65000u32 << 16) | 100).to_string()), "{v4}");
    assert!(
        v4.contains(r#""ASN":64512,"LocalData1":1,"LocalData2":2"#),
        "{v4}"
    );
    assert!(v4.contains(r#""metric":9"#), "{v4}");
    let v6 = gobgp.route("2001:db8:100::10/128").to_string();
    assert!(v6.contains(NODE_V6), "{v6}");
    routes.remove(&"2001:db8:100::10/128".parse().unwrap());
    sp.speaker.set_routes(PeerSelector::All, routes).unwrap();
    let gone = wait_until(T, Duration::from_millis(100), || {
        (!gobgp.has_route("2001:db8:100::10/128")).then_some(())
    });
    assert!(gone.is_some());
    assert!(gobgp.has_route("203.0.113.10/32"));
    sp.run(|s| async move {
        s.remove_peer(
            ip(ROUTER_V4),
            CeaseReason::admin_shutdown("gobgp maintenance test"),
        )
        .await
    })
    .unwrap();
    let down = wait_until(T, Duration::from_millis(100), || {
        (!gobgp.is_established(NODE_V4) && !gobgp.has_route("203.0.113.10/32")).then_some(())
    });
    assert!(down.is_some());
    let log = gobgp.stop();
    assert!(
        log.contains("gobgp maintenance test") || log.contains("administrative shutdown"),
        "{log}"
    );
}
