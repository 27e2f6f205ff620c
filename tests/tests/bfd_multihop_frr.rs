//! BFD multihop (RFC 5883) between the speaker and FRR 8.4 `bfdd`, one or two plain Linux
//! routers apart:
//!
//! ```text
//!   node 192.0.2.10 -- 192.0.2.1 r1 [203.0.113.65 -- 203.0.113.66 r2] 198.51.100.1 -- 198.51.100.2 FRR
//! ```
//!
//! - one router: a BGPPeer with `ebgpMultiHop: true` and a `bfdProfile` runs a multihop BFD
//!   session (port 4784) beside its eBGP multihop session; FRR (`neighbor ... ebgp-multihop`,
//!   `neighbor ... bfd`) sees it Up; when our BFD packets stop (BGP's TCP untouched) and
//!   when the path through the router fails, FRR drops the BGP session (Cease / BFD Down)
//!   and our route within the BFD detection time (hold time 30 s);
//! - one router, our side as its own process (`bfd_peer --multihop`), IPv4 and IPv6: SIGSTOP,
//!   and FRR sees the session down ("control detection time expired") within the detection
//!   time;
//! - two routers: FRR's packets arrive with TTL 253, below the default `minimumTtl` 254, so
//!   the speaker drops them (`bfd_drops_total{reason="ttl_below_minimum"}`) and the session
//!   stays Down; lowering `minimumTtl` to 253 brings it Up.

use std::time::{Duration, Instant};

use ferrolb_speaker::metrics::ReasonLabel;
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::speaker_run::{RunningSpeaker, WEB_SERVICE};
use ferrolb_tests::{Netns, require_root, veth, wait_until};

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const NODE: &str = "192.0.2.10";
const FRR: &str = "198.51.100.2";
const ROUTE: &str = "203.0.113.5/32";

/// The namespaces of the chain; dropped (deleted) last, after the daemons.
struct Chain {
    node: Netns,
    frr: Netns,
    routers: Vec<Netns>,
}

/// node -- r1 [-- r2] -- frr, IPv4 and IPv6, forwarding on the routers, static routes on
/// the ends (so FRR resolves our next hop without `resolve-via-default`).
fn chain(tag: &str, two_routers: bool) -> Chain {
    let addr = |ns: &Netns, dev: &str, v4: &str, v6: &str| {
        ns.ip(&["addr", "add", v4, "dev", dev]).unwrap();
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]).unwrap();
    };
    let routes = |ns: &Netns, via: [(&str, &str); 2]| {
        for (dst, gw) in via {
            ns.ip(&["route", "add", dst, "via", gw]).unwrap();
        }
    };
    let node = Netns::new(&format!("{tag}-n"));
    let frr = Netns::new(&format!("{tag}-f"));
    let r1 = Netns::new(&format!("{tag}-r1"));
    veth(&node, "eth0", &r1, "eth0");
    addr(&node, "eth0", "192.0.2.10/24", "2001:db8:1::10/64");
    addr(&r1, "eth0", "192.0.2.1/24", "2001:db8:1::1/64");
    let mut routers = vec![r1];
    if two_routers {
        let r2 = Netns::new(&format!("{tag}-r2"));
        veth(&routers[0], "eth1", &r2, "eth0");
        addr(&routers[0], "eth1", "203.0.113.65/30", "2001:db8:3::1/64");
        addr(&r2, "eth0", "203.0.113.66/30", "2001:db8:3::2/64");
        let to_frr = [
            ("198.51.100.0/24", "203.0.113.66"),
            ("2001:db8:2::/64", "2001:db8:3::2"),
        ];
        routes(&routers[0], to_frr);
        let to_node = [
            ("192.0.2.0/24", "203.0.113.65"),
            ("2001:db8:1::/64", "2001:db8:3::1"),
        ];
        routes(&r2, to_node);
        routers.push(r2);
    }
    let last = routers.last().unwrap();
    veth(last, "eth9", &frr, "eth0");
    addr(last, "eth9", "198.51.100.1/24", "2001:db8:2::1/64");
    addr(&frr, "eth0", "198.51.100.2/24", "2001:db8:2::2/64");
    for r in &routers {
        r.sysctl("net.ipv4.ip_forward=1").unwrap();
        r.sysctl("net.ipv6.conf.all.forwarding=1").unwrap();
    }
    let to_frr = [
        ("198.51.100.0/24", "192.0.2.1"),
        ("2001:db8:2::/64", "2001:db8:1::1"),
    ];
    routes(&node, to_frr);
    let to_node = [
        ("192.0.2.0/24", "198.51.100.1"),
        ("2001:db8:1::/64", "2001:db8:2::1"),
    ];
    routes(&frr, to_node);
    Chain { node, frr, routers }
}

fn manifests(min_ttl: Option<u8>) -> String {
    let ttl = min_ttl
        .map(|t| format!(", minimumTtl: {t}"))
        .unwrap_or_default();
    format!(
        "apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {{name: bgp-pool, namespace: ferrolb-system}}
spec: {{addresses: [203.0.113.0/28]}}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {{name: bgp, namespace: ferrolb-system}}
spec: {{ipAddressPools: [bgp-pool]}}
---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {{name: mh, namespace: ferrolb-system}}
spec: {{receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3{ttl}}}
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {{name: tor, namespace: ferrolb-system}}
spec: {{myASN: 64512, peerASN: 64513, peerAddress: {FRR}, holdTime: 30s, connectTime: 1s, ebgpMultiHop: true, bfdProfile: mh}}
"
    )
}

fn bgpd_conf() -> String {
    format!(
        "hostname frr\n\
         router bgp 64513\n\
         \x20bgp router-id {FRR}\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20neighbor {NODE} remote-as 64512\n\
         \x20neighbor {NODE} timers connect 1\n\
         \x20neighbor {NODE} ebgp-multihop\n\
         \x20neighbor {NODE} bfd\n\
         \x20neighbor {NODE} bfd profile mh\n"
    )
}

/// `profile mh` (100 ms x 3) and a configured multihop peer (node, local address) for each
/// of `peers`, with minimum TTL `min_ttl`.
fn bfdd_conf(peers: &[(&str, &str)], min_ttl: u8) -> String {
    let mut c = String::from(
        "bfd\n profile mh\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n exit\n",
    );
    for (node, local) in peers {
        c.push_str(&format!(
            " peer {node} multihop local-address {local}\n  profile mh\n  minimum-ttl {min_ttl}\n exit\n"
        ));
    }
    c.push_str("exit\n");
    c
}

/// FRR's view of its BFD session with the node: (status, multihop).
fn frr_bfd(frr: &Frr) -> Option<(String, bool)> {
    let out = frr.try_vtysh(&["show bfd peers json"]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    v.as_array()?.iter().find(|p| p["peer"] == NODE).map(|p| {
        (
            p["status"].as_str().unwrap_or_default().to_string(),
            p["multihop"].as_bool().unwrap_or(false),
        )
    })
}

fn our_bfd(speaker: &RunningSpeaker) -> String {
    std::fs::read_to_string(speaker.state_path()).unwrap_or_default()
}

/// Waits (bounded) until the node's SpeakerState shows the BFD session Up.
fn our_bfd_up(speaker: &RunningSpeaker) -> bool {
    wait_until(WAIT, POLL, || {
        our_bfd(speaker).contains("bfd: Up").then_some(())
    })
    .is_some()
}

fn ttl_drops(speaker: &RunningSpeaker) -> u64 {
    speaker
        .metrics
        .bfd_drops
        .get_or_create(&ReasonLabel {
            reason: "ttl_below_minimum".into(),
        })
        .get()
}

/// Waits (10 s) until FRR leaves Established after `what`, checks that BFD did it (FRR 8.4
/// sends Cease / BFD Down, RFC 9384) and that the route and the BFD session went with it;
/// returns how long it took.
fn bgp_down_by_bfd(frr: &Frr, what: &str, diag: &dyn Fn(&Frr) -> String) -> Duration {
    let t0 = Instant::now();
    let gone = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        (frr.neighbor_state(NODE) != "Established").then(|| t0.elapsed())
    });
    let Some(after) = gone else {
        panic!("FRR kept the BGP session 10 s after {what}: {}", diag(frr));
    };
    // Who wrote the reason is a race, both BFD's doing: FRR's own BFD ("BFD down
    // received", or its Cease / BFD Down NOTIFICATION, RFC 9384), or the speaker's
    // Administrative Reset sent when FRR's Down packet took our session down. Shown, not
    // asserted; what proves BFD did it is the time (hold time 30 s, TCP untouched in the
    // silent case) and FRR's BFD session being down.
    let n = frr.neighbor(NODE);
    let reason = format!("{} / {}", n["lastResetDueTo"], n["lastNotificationReason"]);
    eprintln!("FRR dropped the BGP session {after:?} after {what} ({reason})");
    assert!(
        wait_until(Duration::from_secs(5), POLL, || (!frr.has_route(ROUTE))
            .then_some(()))
        .is_some(),
        "{what}: route still at FRR: {}",
        diag(frr)
    );
    assert!(
        frr_bfd(frr).is_some_and(|(s, _)| s == "down"),
        "{what}: {}",
        diag(frr)
    );
    after
}

#[test]
fn multihop_bfd_with_frr_takes_bgp_down_when_the_path_fails() {
    if !require_root("multihop_bfd_with_frr_takes_bgp_down_when_the_path_fails") {
        return;
    }
    let lab = chain("bfdmh1", false);
    let frr = Frr::start(&lab.frr, &bgpd_conf(), Some(&bfdd_conf(&[], 254)));
    let speaker = RunningSpeaker::start(
        &lab.node,
        &[("all.yaml", &manifests(None)), ("web.yaml", WEB_SERVICE)],
    );
    let diag = |frr: &Frr| {
        format!(
            "frr bfd: {:?}\nbgp: {}\nours:\n{}\nbfdd log:\n{}",
            frr_bfd(frr),
            frr.neighbor_state(NODE),
            our_bfd(&speaker),
            frr.log("bfdd")
        )
    };
    assert!(
        wait_until(WAIT, POLL, || frr.has_route(ROUTE).then_some(())).is_some(),
        "route never reached FRR over eBGP multihop: {}",
        diag(&frr)
    );
    let up = wait_until(WAIT, POLL, || frr_bfd(&frr).filter(|(s, _)| s == "up"));
    let Some((_, multihop)) = up else {
        panic!("FRR's BFD session never came up: {}", diag(&frr));
    };
    assert!(multihop, "FRR runs the session single-hop: {}", diag(&frr));
    assert!(
        our_bfd_up(&speaker),
        "our side never showed bfd: Up: {}",
        diag(&frr)
    );
    assert_eq!(ttl_drops(&speaker), 0, "one router: TTL 254 is enough");

    // 1. Our BFD falls silent (its packets to 4784 dropped on the node; BGP's TCP untouched,
    //    as with a hung BFD task): FRR must drop BGP by BFD alone, within 3 x 100 ms (hold
    //    time 30 s).
    let silence = ["OUTPUT", "-p", "udp", "--dport", "4784", "-j", "DROP"];
    let iptables = |op: &str| {
        let mut args = vec![op];
        args.extend(silence);
        lab.node.exec("iptables", &args).unwrap();
    };
    iptables("-A");
    let after = bgp_down_by_bfd(&frr, "our BFD fell silent", &diag);
    assert!(
        after < Duration::from_secs(3),
        "BGP went down only {after:?} after our BFD fell silent: {}",
        diag(&frr)
    );
    // Back: BFD Up, BGP Established, the route again.
    iptables("-D");
    assert!(
        wait_until(WAIT, POLL, || (frr_bfd(&frr)
            .is_some_and(|(s, _)| s == "up")
            && frr.has_route(ROUTE))
        .then_some(()))
        .is_some(),
        "no BFD session and route after our BFD came back: {}",
        diag(&frr)
    );

    // 2. The path through the router fails (its node-side link goes down): again only BFD
    //    can tell before the hold time.
    lab.routers[0].ip(&["link", "set", "eth0", "down"]).unwrap();
    let after = bgp_down_by_bfd(&frr, "the path failed", &diag);
    assert!(
        after < Duration::from_secs(3),
        "BGP went down only {after:?} after the path failed: {}",
        diag(&frr)
    );
    drop(speaker);
    drop(frr);
}

#[test]
fn multihop_bfd_drops_packets_below_minimum_ttl() {
    if !require_root("multihop_bfd_drops_packets_below_minimum_ttl") {
        return;
    }
    // Two routers: packets arrive with TTL 253 both ways. FRR is told to take 250 and up;
    // the speaker keeps MetalLB's default 254.
    let lab = chain("bfdmh2", true);
    let frr = ferrolb_tests::bfd_peers::FrrBfdd::start(&lab.frr, &bfdd_conf(&[(NODE, FRR)], 250));
    let speaker = RunningSpeaker::start(
        &lab.node,
        &[("all.yaml", &manifests(None)), ("web.yaml", WEB_SERVICE)],
    );
    let diag = |frr: &ferrolb_tests::bfd_peers::FrrBfdd| {
        format!(
            "frr: {:?}\nours:\n{}\nbfdd log:\n{}",
            frr.peer(NODE),
            our_bfd(&speaker),
            frr.log()
        )
    };
    // FRR hears us (it goes Init on our Down packets), we drop every answer.
    let dropped = wait_until(WAIT, POLL, || (ttl_drops(&speaker) >= 10).then_some(()));
    assert!(
        dropped.is_some(),
        "no ttl_below_minimum drops: {}",
        diag(&frr)
    );
    let p = frr.peer(NODE).expect("FRR has the session");
    assert_ne!(p.status, "up", "{}", diag(&frr));
    assert!(
        our_bfd(&speaker).contains("bfd: Down"),
        "our session left Down on TTL 253 packets: {}",
        diag(&frr)
    );

    // minimumTtl 253 admits the two routers: Up on both sides, and no more drops.
    speaker.write("all.yaml", &manifests(Some(253)));
    assert!(
        frr.wait_status(NODE, "up", WAIT).is_some(),
        "FRR never saw the session up after minimumTtl 253: {}",
        diag(&frr)
    );
    assert!(
        our_bfd_up(&speaker),
        "our side never showed bfd: Up: {}",
        diag(&frr)
    );
    let settled = ttl_drops(&speaker);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ttl_drops(&speaker), settled, "drops after minimumTtl 253");
    drop(speaker);
    drop(frr);
}

#[test]
fn frr_sees_our_frozen_multihop_peer_down_within_the_detection_time() {
    if !require_root("frr_sees_our_frozen_multihop_peer_down_within_the_detection_time") {
        return;
    }
    // Our side as its own process (the `bfd_peer` example, multihop), so it can be frozen;
    // over IPv4 and over IPv6 (hop limit, IPV6_PKTINFO).
    let lab = chain("bfdmh3", false);
    let pairs = [(NODE, FRR), ("2001:db8:1::10", "2001:db8:2::2")];
    let frr = ferrolb_tests::bfd_peers::FrrBfdd::start(&lab.frr, &bfdd_conf(&pairs, 254));
    for (node, far) in pairs {
        let ours = ferrolb_tests::bfd_peers::OurBfdPeer::spawn(
            &lab.node,
            node,
            far,
            &["--multihop", "--rx", "100", "--tx", "100", "--mult", "3"],
        );
        frr.wait_status(node, "up", WAIT).unwrap_or_else(|| {
            panic!(
                "not up: {:?} ours: {}\n{}",
                frr.peer(node),
                ours.output(),
                frr.log()
            )
        });
        assert!(ours.wait_event("new=Up", WAIT), "{}", ours.output());
        let t0 = Instant::now();
        ours.signal("STOP");
        let p = frr
            .wait_status(node, "down", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("FRR did not see {node} down: {:?}", frr.peer(node)));
        let after = t0.elapsed();
        eprintln!("FRR saw our frozen multihop peer {node} down after {after:?}");
        assert_eq!(p.diagnostic, "control detection time expired", "{p:?}");
        assert!(
            after < Duration::from_secs(2),
            "{after:?} (detection 300 ms)"
        );
        ours.signal("CONT");
        frr.wait_status(node, "up", WAIT)
            .unwrap_or_else(|| panic!("no recovery after SIGCONT: {:?}", frr.peer(node)));
    }
}
