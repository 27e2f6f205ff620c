//! Reconnect after a router restart with default settings (issue #15): FRR's bgpd (dynamic
//! neighbours, so only we dial) is killed by PID and started again after a long outage. The
//! connect-retry backoff is capped at the ConnectRetry time (2 s by default), so the session
//! is back a few seconds after bgpd listens again, however long it was away; the old
//! backoff (doubling to 60 s) waited 16-32 s at this point. The bound here is generous; the
//! latency itself is measured in bench/bgp/reconnect.sh.

use std::time::{Duration, Instant};

use ferrolb_bgp::{PeerConfig, PeerSelector, RouteAttrs, SpeakerConfig, State};
use ferrolb_tests::peers_ferrolb::{NODE_V4, ROUTER_V4, Speaker, ip, link_lab};
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::{require_root, run, wait_until};

/// Longer than the sum of the old backoff's first steps (1+2+4+8+16 s), so that the old
/// code's next attempt came 16-32 s after bgpd was back.
const OUTAGE: Duration = Duration::from_secs(32);
const BOUND: Duration = Duration::from_secs(10);

#[test]
fn session_is_back_within_seconds_after_a_long_router_outage() {
    if !require_root("session_is_back_within_seconds_after_a_long_router_outage") {
        return;
    }
    let (r, n) = link_lab("bgprecon");
    let conf = format!(
        "router bgp 64513\n bgp router-id {ROUTER_V4}\n no bgp ebgp-requires-policy\n \
         no bgp default ipv4-unicast\n neighbor NODES peer-group\n neighbor NODES remote-as 64512\n \
         bgp listen range 192.0.2.0/24 peer-group NODES\n address-family ipv4 unicast\n  \
         neighbor NODES activate\n exit-address-family\nexit\n"
    );
    let mut frr = Frr::start(&r, &conf, None);
    let sp = Speaker::start(&n, SpeakerConfig::new(NODE_V4.parse().unwrap()));
    let mut routes = ferrolb_bgp::RouteSet::new();
    routes.insert(
        "203.0.113.20/32".parse().unwrap(),
        RouteAttrs::default().into(),
    );
    sp.speaker.set_routes(PeerSelector::All, routes).unwrap();
    // Default ConnectRetry time: the point is the default.
    sp.speaker
        .add_peer(PeerConfig::new(ip(ROUTER_V4), 64512, 64513))
        .unwrap();
    assert!(
        frr.wait_established(NODE_V4, Duration::from_secs(20)),
        "{}",
        frr.vtysh(&["show bgp summary"])
    );

    // Kill bgpd by its PID (no NOTIFICATION, the kernel resets the connection).
    let pid_file = frr.dir().join("run/bgpd.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("bgpd pid file");
    run("kill", &["-9", pid.trim()]).expect("kill bgpd");
    let down = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        (sp.status(ip(ROUTER_V4)).unwrap().state != State::Established).then_some(())
    });
    assert!(down.is_some(), "session still up after bgpd was killed");
    std::thread::sleep(OUTAGE);
    let st = sp.status(ip(ROUTER_V4)).unwrap();
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused")),
        "{st:?}"
    );
    let _ = std::fs::remove_file(&pid_file);
    frr.start_bgpd(&r);
    let back_at = Instant::now();
    let up = wait_until(BOUND, Duration::from_millis(50), || {
        (frr.neighbor_state(NODE_V4) == "Established").then(|| back_at.elapsed())
    });
    assert!(
        up.is_some(),
        "session not back within {BOUND:?} of bgpd: {:?}\n{}",
        sp.status(ip(ROUTER_V4)),
        frr.vtysh(&["show bgp summary"])
    );
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || frr
            .has_route("203.0.113.20/32")
            .then_some(()))
        .is_some()
    );
    assert!(
        sp.status(ip(ROUTER_V4))
            .unwrap()
            .errors
            .values()
            .sum::<u64>()
            >= 2
    );
}
