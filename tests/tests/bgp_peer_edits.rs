//! BGPPeer edits against FRR with dynamic neighbours (`bgp listen range` + a peer group) and
//! BFD (bfdd), through the whole speaker (`run` with a manifests directory): edits that do
//! not need a new session (labels, advertisement communities, BFD timers, BFD off and on)
//! leave it alone (FRR 8.4 itself resets it when BFD goes AdminDown: see below); edits that do (hold time, ASN, router ID) reset it with Cease / Other
//! Configuration Change. After each edit BGP and BFD are up on the router and the route is
//! in its FIB (issue #15).
//!
//! Also: a wrong TCP MD5 password shows in the speaker's SpeakerState `lastError`, in the
//! errors metric, and goes away once the password is fixed.

use std::time::Duration;

use ferrolb_speaker::metrics::{PeerErrorLabel, PeerLabel};
use ferrolb_tests::peers_ferrolb::{NODE_V4, ROUTER_V4, link_lab};
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::speaker_run::{RunningSpeaker, WEB_SERVICE};
use ferrolb_tests::{Netns, require_root, wait_until};

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const SERVICE_IP: &str = "203.0.113.5";

const PROFILES: &str = "
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: ferrolb-system}
spec: {addresses: [203.0.113.0/28]}
---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}
---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: slow, namespace: ferrolb-system}
spec: {receiveInterval: 400, transmitInterval: 400, detectMultiplier: 5}
";

/// FRR: dynamic neighbours from 192.0.2.0/24 in a peer group with BFD, any external AS.
fn frr_conf(extra: &str) -> String {
    format!(
        "router bgp 64513\n bgp router-id {ROUTER_V4}\n bgp log-neighbor-changes\n no bgp ebgp-requires-policy\n \
         no bgp default ipv4-unicast\n neighbor NODES peer-group\n \
         neighbor NODES remote-as external\n neighbor NODES bfd\n \
         neighbor NODES bfd profile fast\n{extra} bgp listen range 192.0.2.0/24 peer-group NODES\n \
         address-family ipv4 unicast\n  neighbor NODES activate\n exit-address-family\nexit\n"
    )
}

const BFDD: &str = "bfd\n profile fast\n  receive-interval 300\n  transmit-interval 300\n  \
                    detect-multiplier 3\n exit\nexit\n";

fn start(n: &Netns, peer_and_ad: &str) -> RunningSpeaker {
    RunningSpeaker::start(
        n,
        &[
            ("web.yaml", WEB_SERVICE),
            ("profiles.yaml", PROFILES),
            ("peer.yaml", peer_and_ad),
        ],
    )
}

fn flaps(sp: &RunningSpeaker) -> u64 {
    sp.metrics
        .session_flaps
        .get_or_create(&PeerLabel {
            peer: "tor".into(),
            address: ROUTER_V4.into(),
        })
        .get()
}

fn peer_yaml(spec_extra: &str, labels: &str, communities: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\n\
         metadata: {{name: tor, namespace: ferrolb-system{labels}}}\n\
         spec: {{myASN: 64512, peerASN: 64513, peerAddress: {ROUTER_V4}, connectTime: 1s{spec_extra}}}\n---\n\
         apiVersion: ferrolb.io/v1alpha1\nkind: BGPAdvertisement\n\
         metadata: {{name: bgp, namespace: ferrolb-system}}\n\
         spec: {{ipAddressPools: [bgp-pool]{communities}}}\n"
    )
}

/// FRR's BFD session to the node: (status, remote detect multiplier).
fn frr_bfd(frr: &Frr) -> Option<(String, u64)> {
    let out = frr.try_vtysh(&["show bfd peers json"]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    v.as_array()?
        .iter()
        .find(|p| p["peer"] == NODE_V4)
        .map(|p| {
            (
                p["status"].as_str().unwrap_or_default().to_string(),
                p["remote-detect-multiplier"].as_u64().unwrap_or_default(),
            )
        })
}

fn in_fib(r: &Netns) -> bool {
    !r.ip(&["-4", "route", "show", SERVICE_IP])
        .unwrap_or_default()
        .trim()
        .is_empty()
}

/// BGP Established on the router, its BFD session up (with `mult` from us, if given) and
/// the Service route in its FIB.
fn all_up(frr: &Frr, r: &Netns, mult: Option<u64>) -> bool {
    frr.neighbor_state(NODE_V4) == "Established"
        && frr_bfd(frr).is_some_and(|(s, m)| s == "up" && mult.is_none_or(|x| x == m))
        && in_fib(r)
}

fn wait_all_up(what: &str, frr: &Frr, r: &Netns, mult: Option<u64>) {
    let ok = wait_until(WAIT, POLL, || all_up(frr, r, mult).then_some(()));
    assert!(
        ok.is_some(),
        "{what}: BGP {}, BFD {:?}, FIB {}\n{}",
        frr.neighbor_state(NODE_V4),
        frr_bfd(frr),
        in_fib(r),
        frr.vtysh(&["show bgp summary"])
    );
}

#[test]
fn peer_edits_touch_the_session_only_when_they_must() {
    if !require_root("peer_edits_touch_the_session_only_when_they_must") {
        return;
    }
    let (r, n) = link_lab("bgpedit");
    let frr = Frr::start(&r, &frr_conf(""), Some(BFDD));
    let bfd = ", bfdProfile: fast";
    let sp = start(&n, &peer_yaml(bfd, "", ""));
    wait_all_up("initial", &frr, &r, Some(3));
    assert_eq!(flaps(&sp), 0);

    // Edits that need no new session: the session stays, BFD stays or changes alone.
    let quiet = [
        (
            "a label",
            peer_yaml(bfd, ", labels: {rack: a}", ""),
            Some(3),
        ),
        (
            "communities",
            peer_yaml(bfd, ", labels: {rack: a}", ", communities: [\"65000:100\"]"),
            Some(3),
        ),
        (
            "BFD timers",
            peer_yaml(", bfdProfile: slow", "", ", communities: [\"65000:100\"]"),
            Some(5),
        ),
    ];
    for (what, yaml, mult) in quiet {
        sp.write("peer.yaml", &yaml);
        wait_all_up(what, &frr, &r, mult);
        // Give a (wrong) reset time to happen before checking that none did.
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(flaps(&sp), 0, "{what} reset the BGP session");
        wait_all_up(what, &frr, &r, mult);
    }
    let route = frr.route(&format!("{SERVICE_IP}/32")).to_string();
    assert!(route.contains("65000:100"), "{route}");
    // BFD off: our side sends AdminDown and leaves BGP alone (RFC 5882 §3.2). FRR 8.4 still
    // resets the session on a remote AdminDown ("Cease/BFD Down"; later FRR versions do
    // not), so what we check is that no NOTIFICATION came from us and that BGP and the
    // route are back.
    sp.write("peer.yaml", &peer_yaml("", "", ""));
    let off = wait_until(WAIT, POLL, || {
        frr_bfd(&frr).filter(|(s, _)| s != "up").map(|_| ())
    });
    assert!(off.is_some(), "BFD still up: {:?}", frr_bfd(&frr));
    let back = wait_until(WAIT, POLL, || {
        (frr.neighbor_state(NODE_V4) == "Established" && in_fib(&r)).then_some(())
    });
    assert!(back.is_some(), "{}", frr.vtysh(&["show bgp summary"]));
    sp.write("peer.yaml", &peer_yaml(bfd, "", ""));
    wait_all_up("BFD on again", &frr, &r, Some(3));
    let log = frr.log("bgpd");
    assert!(
        !log.contains("NOTIFICATION: received from neighbor"),
        "we reset the session for a BFD edit:\n{log}"
    );

    // Edits that need a new session: Cease 6, an idle hold-off, then all up again.
    let hold = peer_yaml(", holdTime: 30s, bfdProfile: fast", "", "");
    let asn = hold.replace("myASN: 64512", "myASN: 64514");
    let rid = peer_yaml(
        ", holdTime: 30s, routerID: 192.0.2.99, bfdProfile: fast",
        "",
        "",
    )
    .replace("myASN: 64512", "myASN: 64514");
    let base = flaps(&sp);
    for (i, (what, yaml)) in [("hold time", hold), ("ASN", asn), ("router ID", rid)]
        .into_iter()
        .enumerate()
    {
        let i = base + i as u64;
        sp.write("peer.yaml", &yaml);
        let reset = wait_until(WAIT, POLL, || (flaps(&sp) > i).then_some(()));
        assert!(reset.is_some(), "{what}: no session reset");
        wait_all_up(what, &frr, &r, Some(3));
        assert_eq!(flaps(&sp), i + 1, "{what}: more than one reset");
    }
    let nb = frr.neighbor(NODE_V4);
    assert_eq!(nb["remoteAs"], 64514, "{nb}");
    assert_eq!(nb["remoteRouterId"], "192.0.2.99", "{nb}");
    assert_eq!(nb["bgpTimerHoldTimeMsecs"], 30000, "{nb}");
    let log = frr.log("bgpd");
    assert!(
        log.contains("received from neighbor 192.0.2.10 6/6"),
        "FRR did not log Cease 6/6:\n{log}"
    );
    drop(sp);
}

#[test]
fn md5_mismatch_is_reported_in_speaker_state_and_metrics() {
    if !require_root("md5_mismatch_is_reported_in_speaker_state_and_metrics") {
        return;
    }
    let (r, n) = link_lab("bgpmd5");
    let frr = Frr::start(&r, &frr_conf(" neighbor NODES password s3cret-key\n"), None);
    let sp = start(&n, &peer_yaml(", password: wrong-key", "", ""));
    let want = "no answer from peer; with TCP MD5 a password mismatch looks exactly like this";
    let reported = wait_until(WAIT, POLL, || {
        let text = std::fs::read_to_string(sp.state_path()).ok()?;
        text.contains(want).then_some(text)
    });
    assert!(
        reported.is_some(),
        "no lastError in {}: {:?}",
        sp.state_path().display(),
        std::fs::read_to_string(sp.state_path())
    );
    // The metrics follow the session board on the speaker's next poll (100 ms here).
    let errors = || {
        sp.metrics
            .session_errors
            .get_or_create(&PeerErrorLabel {
                peer: "tor".into(),
                address: ROUTER_V4.into(),
                kind: "no_answer".into(),
            })
            .get()
    };
    let counted = wait_until(WAIT, POLL, || (errors() >= 1).then_some(()));
    assert!(counted.is_some(), "no_answer errors: {}", errors());
    assert_ne!(frr.neighbor_state(NODE_V4), "Established");
    // The right password: the session comes up with the same peer object.
    sp.write("peer.yaml", &peer_yaml(", password: s3cret-key", "", ""));
    let up = wait_until(WAIT, POLL, || in_fib(&r).then_some(()));
    assert!(up.is_some(), "{}", frr.vtysh(&["show bgp summary"]));
}
