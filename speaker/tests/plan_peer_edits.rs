//! BGPPeer edits change only what changed (issue #15): each kind of edit of a peer, from
//! YAML through the config builder, gives exactly the driver actions it needs. BFD, routes,
//! names and selectors never touch the session; session fields give one in-place update
//! (Cease / Other Configuration Change in the BGP crate), never a remove and re-add.

use std::collections::BTreeMap;

use ferrolb_crds::config::Peer;
use ferrolb_speaker::decide::{Announcements, RouteAttrs};
use ferrolb_speaker::plan::{Action, Applied, needs_new_session, plan};

const BFD: &str = "
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: fast, namespace: ferrolb-system}
spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}
---
apiVersion: ferrolb.io/v1alpha1
kind: BFDProfile
metadata: {name: slow, namespace: ferrolb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 5}
";

/// The peer built from a BGPPeer `spec` (flow YAML) the way the speaker builds it.
fn peer(spec: &str) -> Peer {
    let yaml = format!(
        "{BFD}---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: tor, namespace: ferrolb-system}}\nspec: {spec}\n"
    );
    let loaded = ferrolb_crds::yaml::load_str("t.yaml", &yaml);
    let out = ferrolb_crds::from_resources(&loaded.resources);
    out.config
        .peers
        .get("tor")
        .cloned()
        .unwrap_or_else(|| panic!("peer not valid: {spec}: {:?}", out.errors))
}

const BASE: &str = "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast}";

fn state(p: Peer, routes: &[&str]) -> Announcements {
    let mut a = Announcements::default();
    let r: BTreeMap<ipnet::IpNet, std::sync::Arc<RouteAttrs>> = routes
        .iter()
        .map(|r| (r.parse().unwrap(), RouteAttrs::default().into()))
        .collect();
    a.routes.insert(p.name.clone(), std::sync::Arc::new(r));
    a.peers.insert(p.name.clone(), p);
    a
}

/// The kind of each action, in order.
fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::SetOwned { .. } => "SetOwned",
            Action::RemoveBfd { .. } => "RemoveBfd",
            Action::RemovePeer { .. } => "RemovePeer",
            Action::AddPeer(_) => "AddPeer",
            Action::UpdatePeer(_) => "UpdatePeer",
            Action::AddBfd { .. } => "AddBfd",
            Action::SetBfdProfile { .. } => "SetBfdProfile",
            Action::SetRoutes { .. } => "SetRoutes",
        })
        .collect()
}

fn actions_for(new_spec: &str) -> Vec<Action> {
    let old = state(peer(BASE), &["203.0.113.1/32"]);
    let new = state(peer(new_spec), &["203.0.113.1/32"]);
    plan(&Applied::from_desired(&old), &new)
}

#[test]
fn session_fields_update_the_peer_in_place() {
    for spec in [
        "{myASN: 64514, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast}",
        "{myASN: 64512, peerASN: 64515, peerAddress: 192.0.2.1, bfdProfile: fast}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, holdTime: 30s}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, keepaliveTime: 10s}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, connectTime: 1s}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, password: s3cret}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, peerPort: 1179}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, routerID: 192.0.2.99}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, sourceAddress: 192.0.2.10}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, ebgpMultiHop: true}",
    ] {
        // Without BFD: the two fields below only touch the session.
        let spec_old = if spec.contains("bfdProfile") {
            BASE
        } else {
            "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1}"
        };
        let old = state(peer(spec_old), &["203.0.113.1/32"]);
        let new = state(peer(spec), &["203.0.113.1/32"]);
        let a = plan(&Applied::from_desired(&old), &new);
        assert_eq!(a.len(), 1, "{spec}: {a:?}");
        assert!(matches!(&a[0], Action::UpdatePeer(_)), "{spec}: {a:?}");
    }
}

#[test]
fn bfd_follows_the_hop_mode_and_source_of_the_peer() {
    // MetalLB's rule: BFD on an ebgpMultiHop peer is multihop (RFC 5883), from its
    // sourceAddress when set.
    let mh = "{myASN: 64512, peerASN: 64513, peerAddress: 198.51.100.6, bfdProfile: fast, ebgpMultiHop: true, sourceAddress: 192.0.2.10}";
    let fresh = plan(&Applied::default(), &state(peer(mh), &[]));
    assert!(
        fresh.iter().any(|a| matches!(a, Action::AddBfd { multihop: true, source: Some(s), .. } if s.to_string() == "192.0.2.10")),
        "{fresh:?}"
    );
    let single = plan(&Applied::default(), &state(peer(BASE), &[]));
    assert!(
        single.iter().any(|a| matches!(
            a,
            Action::AddBfd {
                multihop: false,
                source: None,
                ..
            }
        )),
        "{single:?}"
    );
    // Switching the hop mode or the source replaces the BFD session (another port, another
    // local address), besides the BGP session update.
    for spec in [
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, ebgpMultiHop: true}",
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, sourceAddress: 192.0.2.10}",
    ] {
        let a = actions_for(spec);
        assert_eq!(
            kinds(&a),
            ["UpdatePeer", "RemoveBfd", "AddBfd"],
            "{spec}: {a:?}"
        );
    }
}

#[test]
fn an_unnumbered_peer_gets_single_hop_bfd_on_its_interface() {
    // The speaker fills in the neighbour's link-local address before planning.
    let mut p = peer("{myASN: 64512, peerASN: 64513, interface: eth1, bfdProfile: fast}");
    p.address = "fe80::1".parse().unwrap();
    let a = plan(&Applied::default(), &state(p, &[]));
    assert!(
        a.iter().any(|a| matches!(
            a,
            Action::AddBfd { peer, multihop: false, source: None, interface: Some(i), .. }
                if i == "eth1" && peer.to_string() == "fe80::1"
        )),
        "{a:?}"
    );
}

#[test]
fn bfd_edits_never_touch_the_session() {
    let off = actions_for("{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1}");
    assert_eq!(
        off,
        vec![Action::RemoveBfd {
            peer: "192.0.2.1".parse().unwrap()
        }]
    );
    let retimed =
        actions_for("{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: slow}");
    assert_eq!(retimed.len(), 1, "{retimed:?}");
    assert!(
        matches!(&retimed[0], Action::SetBfdProfile { profile, .. } if profile.detect_multiplier == 5)
    );
    // BFD switched on.
    let old = state(
        peer("{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1}"),
        &[],
    );
    let on = plan(&Applied::from_desired(&old), &state(peer(BASE), &[]));
    assert!(
        matches!(on.as_slice(), [Action::AddBfd { profile, .. }] if profile.name == "fast"),
        "{on:?}"
    );
}

#[test]
fn routes_and_non_session_fields_only_set_routes() {
    let old = state(peer(BASE), &["203.0.113.1/32"]);
    let new = state(peer(BASE), &["203.0.113.1/32", "203.0.113.2/32"]);
    let a = plan(&Applied::from_desired(&old), &new);
    assert!(matches!(a.as_slice(), [Action::SetRoutes { .. }]), "{a:?}");
    // Node selectors (the peer still applies to this node) and the object name are not
    // session fields.
    let sel = peer(
        "{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, bfdProfile: fast, nodeSelectors: [{matchLabels: {rack: a}}]}",
    );
    assert!(!needs_new_session(&peer(BASE), &sel));
    let mut renamed = peer(BASE);
    renamed.name = "tor-renamed".into();
    assert!(!needs_new_session(&peer(BASE), &renamed));
}

#[test]
fn an_address_change_removes_the_old_peer_and_adds_the_new_one() {
    let a = actions_for("{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.2, bfdProfile: fast}");
    assert_eq!(
        kinds(&a),
        ["RemoveBfd", "RemovePeer", "AddPeer", "AddBfd", "SetRoutes"]
    );
}
