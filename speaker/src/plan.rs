//! From "what is applied" and "what is desired" to the fewest driver calls (pure).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_bgp::PeerKey;
use ferrolb_crds::config::{Bfd, Peer};

use crate::decide::{Announcements, RouteMap};

/// One change to make to a driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Replace the IPs answered on an interface (empty: stop answering there).
    SetOwned {
        iface: String,
        ips: BTreeSet<IpAddr>,
    },
    /// Stop the BFD session to a peer (BFD runs for default-VRF peers only).
    RemoveBfd { peer: IpAddr },
    /// Remove a BGP peer (Cease; it drops our routes).
    RemovePeer { peer: PeerKey },
    /// Add a BGP peer.
    AddPeer(Box<Peer>),
    /// Change the session settings of a BGP peer: its session is reset (Cease / Other
    /// Configuration Change) and reconnects after the idle hold-off.
    UpdatePeer(Box<Peer>),
    /// Start a BFD session to a peer: multihop (RFC 5883) for an `ebgpMultiHop` peer, as in
    /// MetalLB, from its `sourceAddress` when set; single-hop (RFC 5881) otherwise — for an
    /// unnumbered peer over `interface`, between link-local addresses.
    AddBfd {
        peer: IpAddr,
        profile: Bfd,
        multihop: bool,
        source: Option<IpAddr>,
        interface: Option<String>,
    },
    /// Change the timers of a running BFD session in place (no flap, no BGP reset).
    SetBfdProfile { peer: IpAddr, profile: Bfd },
    /// Replace the routes advertised to a peer.
    SetRoutes { peer: PeerKey, routes: RouteMap },
}

/// What the drivers have been told so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub l2: BTreeMap<String, BTreeSet<IpAddr>>,
    /// By VRF and peer address.
    pub peers: BTreeMap<PeerKey, Peer>,
    /// By VRF and peer address; the `Arc`s of the announcements applied (shared, not copied).
    pub routes: BTreeMap<PeerKey, RouteMap>,
}

/// A peer's session key: its VRF and address (the same address in two VRFs is two peers).
pub fn peer_key(p: &Peer) -> PeerKey {
    PeerKey::new(p.vrf.as_deref(), p.address)
}

impl Applied {
    /// The state once `desired` is applied.
    pub fn from_desired(desired: &Announcements) -> Applied {
        let mut a = Applied {
            l2: desired.l2_by_interface(),
            ..Default::default()
        };
        for (name, p) in &desired.peers {
            a.peers.insert(peer_key(p), p.clone());
            a.routes.insert(
                peer_key(p),
                desired.routes.get(name).cloned().unwrap_or_default(),
            );
        }
        a
    }
}

/// Whether going from `old` to `new` needs a new BGP session. Everything the session is
/// built from does (ASNs, port, source address, router ID, timers, password, multihop,
/// graceful restart, families); the object's name, its node selectors (already applied: the
/// peer is in both states) and its BFD profile (BFD runs beside the session) do not. A field
/// added to [`Peer`] later counts as a session field until it is listed here.
pub fn needs_new_session(old: &Peer, new: &Peer) -> bool {
    let mut new = new.clone();
    new.name.clone_from(&old.name);
    new.namespace.clone_from(&old.namespace);
    new.node_selectors.clone_from(&old.node_selectors);
    new.bfd.clone_from(&old.bfd);
    *old != new
}

/// The BFD session of a peer with a BFD profile.
fn add_bfd(p: &Peer, profile: &Bfd) -> Action {
    Action::AddBfd {
        peer: p.address,
        profile: profile.clone(),
        multihop: p.ebgp_multihop,
        source: p.source_address,
        interface: p.interface.clone(),
    }
}

/// Whether the BFD session itself (not its timers) differs: hop mode, source address or
/// interface.
fn bfd_session_changed(old: &Peer, new: &Peer) -> bool {
    old.ebgp_multihop != new.ebgp_multihop
        || old.source_address != new.source_address
        || old.interface != new.interface
}

/// The changes that take `applied` to `desired`, in a safe order: L2 first (one call per
/// interface whose set changed), then BFD/BGP removals, changes of kept peers (a session
/// reset only when [`needs_new_session`]; BFD added, removed or retimed on its own),
/// additions, and route sets of peers whose routes changed (a new peer always gets its
/// routes; a reset peer keeps them in the speaker and gets them on its new session).
pub fn plan(applied: &Applied, desired: &Announcements) -> Vec<Action> {
    let want = Applied::from_desired(desired);
    let mut out = Vec::new();

    let ifaces: BTreeSet<&String> = applied.l2.keys().chain(want.l2.keys()).collect();
    for iface in ifaces {
        let old = applied.l2.get(iface).filter(|s| !s.is_empty());
        let new = want.l2.get(iface).filter(|s| !s.is_empty());
        if old != new {
            out.push(Action::SetOwned {
                iface: iface.clone(),
                ips: new.cloned().unwrap_or_default(),
            });
        }
    }

    for (key, old) in &applied.peers {
        if !want.peers.contains_key(key) {
            if old.bfd.is_some() {
                out.push(Action::RemoveBfd { peer: old.address });
            }
            out.push(Action::RemovePeer { peer: key.clone() });
        }
    }
    for (key, new) in &want.peers {
        let Some(old) = applied.peers.get(key) else {
            continue;
        };
        let addr = &new.address;
        if needs_new_session(old, new) {
            out.push(Action::UpdatePeer(Box::new(new.clone())));
        }
        match (&old.bfd, &new.bfd) {
            (Some(_), None) => out.push(Action::RemoveBfd { peer: *addr }),
            (None, Some(b)) => out.push(add_bfd(new, b)),
            // Single-hop <-> multihop, or another source: a different BFD session.
            (Some(_), Some(b)) if bfd_session_changed(old, new) => {
                out.push(Action::RemoveBfd { peer: *addr });
                out.push(add_bfd(new, b));
            }
            (Some(a), Some(b)) if a != b => out.push(Action::SetBfdProfile {
                peer: *addr,
                profile: b.clone(),
            }),
            _ => {}
        }
    }
    for (key, new) in &want.peers {
        if !applied.peers.contains_key(key) {
            out.push(Action::AddPeer(Box::new(new.clone())));
            if let Some(b) = &new.bfd {
                out.push(add_bfd(new, b));
            }
        }
    }
    for (key, routes) in &want.routes {
        let fresh = !applied.peers.contains_key(key);
        if fresh || applied.routes.get(key) != Some(routes) {
            out.push(Action::SetRoutes {
                peer: key.clone(),
                routes: routes.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{L2Claim, RouteAttrs};
    use std::sync::Arc;

    fn peer(addr: &str) -> Peer {
        let yaml = format!(
            "apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: p, namespace: ferrolb-system}}\nspec: {{myASN: 64513, peerASN: 64512, peerAddress: \"{addr}\"}}\n"
        );
        let loaded = ferrolb_crds::yaml::load_str("t.yaml", &yaml);
        ferrolb_crds::from_resources(&loaded.resources).config.peers["p"].clone()
    }

    fn announcements(l2: &[(&str, &str)], routes: &[&str]) -> Announcements {
        let mut a = Announcements::default();
        for (ip, iface) in l2 {
            a.l2.insert(
                ip.parse().unwrap(),
                L2Claim {
                    interfaces: [iface.to_string()].into(),
                    services: Default::default(),
                },
            );
        }
        a.peers.insert("p".into(), peer("192.0.2.1"));
        a.routes.insert(
            "p".into(),
            std::sync::Arc::new(
                routes
                    .iter()
                    .map(|r| (r.parse().unwrap(), Arc::new(RouteAttrs::default())))
                    .collect(),
            ),
        );
        a
    }

    #[test]
    fn first_plan_adds_everything_and_an_equal_state_plans_nothing() {
        let want = announcements(&[("192.0.2.200", "eth0")], &["203.0.113.1/32"]);
        let actions = plan(&Applied::default(), &want);
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert!(matches!(&actions[0], Action::SetOwned { iface, .. } if iface == "eth0"));
        assert!(matches!(&actions[1], Action::AddPeer(_)));
        assert!(matches!(&actions[2], Action::SetRoutes { routes, .. } if routes.len() == 1));
        assert!(plan(&Applied::from_desired(&want), &want).is_empty());
    }

    #[test]
    fn only_changed_interfaces_and_route_sets_are_touched() {
        let old = announcements(
            &[("192.0.2.200", "eth0"), ("192.0.2.201", "eth1")],
            &["203.0.113.1/32"],
        );
        let new = announcements(
            &[("192.0.2.200", "eth0")],
            &["203.0.113.1/32", "203.0.113.2/32"],
        );
        let actions = plan(&Applied::from_desired(&old), &new);
        assert_eq!(
            actions,
            vec![
                Action::SetOwned {
                    iface: "eth1".into(),
                    ips: BTreeSet::new()
                },
                Action::SetRoutes {
                    peer: "192.0.2.1".parse::<IpAddr>().unwrap().into(),
                    routes: new.routes["p"].clone()
                },
            ]
        );
    }

    #[test]
    fn a_session_field_change_updates_the_peer_in_place_and_keeps_its_routes() {
        let old = announcements(&[], &["203.0.113.1/32"]);
        let mut new = old.clone();
        new.peers.get_mut("p").unwrap().hold_time =
            ferrolb_crds::config::HoldTime::from_secs(30).unwrap();
        let actions = plan(&Applied::from_desired(&old), &new);
        assert_eq!(actions.len(), 1, "{actions:?}");
        assert!(matches!(&actions[0], Action::UpdatePeer(p) if p.hold_time.secs() == 30));
        // A removed peer is only removed.
        let mut gone = old.clone();
        gone.peers.clear();
        gone.routes.clear();
        assert_eq!(
            plan(&Applied::from_desired(&old), &gone),
            vec![Action::RemovePeer {
                peer: "192.0.2.1".parse::<IpAddr>().unwrap().into()
            }]
        );
    }

    #[test]
    fn one_address_in_two_vrfs_is_two_peers() {
        let mut want = announcements(&[], &["203.0.113.1/32"]);
        let mut red = want.peers["p"].clone();
        red.vrf = Some("red".into());
        let mut blue = red.clone();
        blue.vrf = Some("blue".into());
        want.peers = [("red".into(), red), ("blue".into(), blue)].into();
        let routes = want.routes.remove("p").unwrap();
        want.routes = [("red".into(), routes.clone()), ("blue".into(), routes)].into();
        let actions = plan(&Applied::default(), &want);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let keys: Vec<PeerKey> = actions
            .iter()
            .filter_map(|x| match x {
                Action::SetRoutes { peer, .. } => Some(peer.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            keys,
            [PeerKey::new(Some("blue"), a), PeerKey::new(Some("red"), a)]
        );
        // Removing one removes only that one.
        let applied = Applied::from_desired(&want);
        let mut less = want.clone();
        less.peers.remove("blue");
        less.routes.remove("blue");
        assert_eq!(
            plan(&applied, &less),
            vec![Action::RemovePeer {
                peer: PeerKey::new(Some("blue"), a)
            }]
        );
        // Moving a peer to another VRF is another session: the old one goes first.
        let mut moved = less.clone();
        moved.peers.get_mut("red").unwrap().vrf = Some("green".into());
        let actions = plan(&Applied::from_desired(&less), &moved);
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert_eq!(
            actions[0],
            Action::RemovePeer {
                peer: PeerKey::new(Some("red"), a)
            }
        );
        assert!(matches!(&actions[1], Action::AddPeer(p) if p.vrf.as_deref() == Some("green")));
        assert!(
            matches!(&actions[2], Action::SetRoutes { peer, .. } if *peer == PeerKey::new(Some("green"), a))
        );
    }
}
