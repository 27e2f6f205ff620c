//! `dynamicASN` against FRR 8.4 with dynamic neighbours (`bgp listen range`), through the whole
//! speaker (`run` with a manifests directory), issue #17:
//! - `external` with the router in another AS: the session comes up, the route is in the
//!   router's FIB and the node's SpeakerState shows the AS it learned;
//! - `external` with the router in our own AS: no session, and `lastError` names the Bad Peer
//!   AS with the AS seen;
//! - `internal` with the router in our AS: an iBGP session (LOCAL_PREF sent), learned AS shown.

use std::time::Duration;

use ferrolb_tests::peers_ferrolb::{NODE_V4, ROUTER_V4, link_lab};
use ferrolb_tests::peers_frr::Frr;
use ferrolb_tests::speaker_run::{RunningSpeaker, WEB_SERVICE};
use ferrolb_tests::{Netns, require_root, wait_until};

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const SERVICE_IP: &str = "203.0.113.5";

/// FRR in `asn`, accepting nodes from 192.0.2.0/24 with `remote-as internal|external`.
fn frr_conf(asn: u32, remote: &str) -> String {
    format!(
        "router bgp {asn}\n bgp router-id {ROUTER_V4}\n bgp log-neighbor-changes\n \
         no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n neighbor NODES peer-group\n \
         neighbor NODES remote-as {remote}\n bgp listen range 192.0.2.0/24 peer-group NODES\n \
         address-family ipv4 unicast\n  neighbor NODES activate\n exit-address-family\nexit\n"
    )
}

/// Our BGPPeer (AS 64512, `dynamicASN: mode`) and an advertisement of the Service's pool.
fn manifests(mode: &str) -> String {
    format!(
        "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\n\
         metadata: {{name: bgp-pool, namespace: ferrolb-system}}\n\
         spec: {{addresses: [203.0.113.0/28]}}\n---\n\
         apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\n\
         metadata: {{name: tor, namespace: ferrolb-system}}\n\
         spec: {{myASN: 64512, dynamicASN: {mode}, peerAddress: {ROUTER_V4}, connectTime: 1s}}\n---\n\
         apiVersion: ferrolb.io/v1alpha1\nkind: BGPAdvertisement\n\
         metadata: {{name: bgp, namespace: ferrolb-system}}\n\
         spec: {{ipAddressPools: [bgp-pool]}}\n"
    )
}

fn start(n: &Netns, mode: &str) -> RunningSpeaker {
    RunningSpeaker::start(
        n,
        &[("web.yaml", WEB_SERVICE), ("peer.yaml", &manifests(mode))],
    )
}

fn in_fib(r: &Netns) -> bool {
    !r.ip(&["-4", "route", "show", SERVICE_IP])
        .unwrap_or_default()
        .trim()
        .is_empty()
}

/// Waits until the node's SpeakerState file contains `want`; returns its text either way.
fn state_with(sp: &RunningSpeaker, want: &str) -> (bool, String) {
    let found = wait_until(WAIT, POLL, || {
        let text = std::fs::read_to_string(sp.state_path()).ok()?;
        text.contains(want).then_some(text)
    });
    match found {
        Some(text) => (true, text),
        None => (
            false,
            std::fs::read_to_string(sp.state_path()).unwrap_or_default(),
        ),
    }
}

#[test]
fn dynamic_external_learns_the_routers_as() {
    if !require_root("dynamic_external_learns_the_routers_as") {
        return;
    }
    let (r, n) = link_lab("dynext");
    let frr = Frr::start(&r, &frr_conf(64513, "external"), None);
    let sp = start(&n, "external");
    let up = wait_until(WAIT, POLL, || in_fib(&r).then_some(()));
    assert!(up.is_some(), "{}", frr.vtysh(&["show bgp summary"]));
    assert_eq!(frr.neighbor_state(NODE_V4), "Established");
    assert_eq!(frr.neighbor(NODE_V4)["remoteAs"], 64512);
    let (ok, text) = state_with(&sp, "peerASN: 64513");
    assert!(ok, "learned AS not in SpeakerState:\n{text}");
    drop(sp);
}

#[test]
fn dynamic_external_refuses_our_own_as() {
    if !require_root("dynamic_external_refuses_our_own_as") {
        return;
    }
    let (r, n) = link_lab("dynown");
    let frr = Frr::start(&r, &frr_conf(64512, "internal"), None);
    let sp = start(&n, "external");
    let (ok, text) = state_with(&sp, "Bad Peer AS");
    assert!(ok, "no Bad Peer AS lastError:\n{text}");
    assert!(text.contains("64512"), "the AS seen is named:\n{text}");
    assert_ne!(frr.neighbor_state(NODE_V4), "Established");
    assert!(!in_fib(&r), "a refused session must not carry routes");
    drop(sp);
}

#[test]
fn dynamic_internal_is_ibgp() {
    if !require_root("dynamic_internal_is_ibgp") {
        return;
    }
    let (r, n) = link_lab("dynint");
    let frr = Frr::start(&r, &frr_conf(64512, "internal"), None);
    let sp = start(&n, "internal");
    let up = wait_until(WAIT, POLL, || in_fib(&r).then_some(()));
    assert!(
        up.is_some(),
        "{}\n{}\n{}\n{:?}",
        frr.vtysh(&["show bgp summary"]),
        frr.vtysh(&["show bgp ipv4 unicast"]),
        frr.log("bgpd"),
        std::fs::read_to_string(sp.state_path())
    );
    let nb = frr.neighbor(NODE_V4);
    assert_eq!(nb["remoteAs"], 64512, "{nb}");
    assert_eq!(nb["nbrInternalLink"], true, "{nb}");
    let (ok, text) = state_with(&sp, "peerASN: 64512");
    assert!(ok, "learned AS not in SpeakerState:\n{text}");
    drop(sp);
}
