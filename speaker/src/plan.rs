//! From "what is applied" and "what is desired" to the fewest driver calls (pure).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::config::{Bfd, Peer};
use ipnet::IpNet;

use crate::decide::{Announcements, RouteAttrs};

/// One change to make to a driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Replace the IPs answered on an interface (empty: stop answering there).
    SetOwned {
        iface: String,
        ips: BTreeSet<IpAddr>,
    },
    /// Stop the BFD session to a peer.
    RemoveBfd { peer: IpAddr },
    /// Remove a BGP peer (Cease; it drops our routes).
    RemovePeer { peer: IpAddr },
    /// Add a BGP peer.
    AddPeer(Box<Peer>),
    /// Start a BFD session to a peer.
    AddBfd { peer: IpAddr, profile: Bfd },
    /// Replace the routes advertised to a peer.
    SetRoutes {
        peer: IpAddr,
        routes: BTreeMap<IpNet, RouteAttrs>,
    },
}

/// What the drivers have been told so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub l2: BTreeMap<String, BTreeSet<IpAddr>>,
    /// By peer address.
    pub peers: BTreeMap<IpAddr, Peer>,
    pub routes: BTreeMap<IpAddr, BTreeMap<IpNet, RouteAttrs>>,
}

impl Applied {
    /// The state once `desired` is applied.
    pub fn from_desired(desired: &Announcements) -> Applied {
        let mut a = Applied {
            l2: desired.l2_by_interface(),
            ..Default::default()
        };
        for (name, p) in &desired.peers {
            a.peers.insert(p.address, p.clone());
            a.routes.insert(
                p.address,
                desired.routes.get(name).cloned().unwrap_or_default(),
            );
        }
        a
    }
}

/// The changes that take `applied` to `desired`, in a safe order: L2 first (one call per
/// interface whose set changed), then BFD/BGP removals, additions, and route sets of peers
/// whose routes changed (a re-added peer always gets its routes).
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

    let mut readd = BTreeSet::new();
    for (addr, old) in &applied.peers {
        match want.peers.get(addr) {
            Some(new) if new == old => {}
            other => {
                if old.bfd.is_some() {
                    out.push(Action::RemoveBfd { peer: *addr });
                }
                out.push(Action::RemovePeer { peer: *addr });
                if other.is_some() {
                    readd.insert(*addr);
                }
            }
        }
    }
    for (addr, new) in &want.peers {
        if readd.contains(addr) || !applied.peers.contains_key(addr) {
            out.push(Action::AddPeer(Box::new(new.clone())));
            if let Some(b) = &new.bfd {
                out.push(Action::AddBfd {
                    peer: *addr,
                    profile: b.clone(),
                });
            }
        }
    }
    for (addr, routes) in &want.routes {
        let fresh = readd.contains(addr) || !applied.peers.contains_key(addr);
        if fresh || applied.routes.get(addr) != Some(routes) {
            out.push(Action::SetRoutes {
                peer: *addr,
                routes: routes.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::L2Claim;

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
            routes
                .iter()
                .map(|r| (r.parse().unwrap(), RouteAttrs::default()))
                .collect(),
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
                    peer: "192.0.2.1".parse().unwrap(),
                    routes: new.routes["p"].clone()
                },
            ]
        );
    }

    #[test]
    fn a_changed_peer_is_replaced_and_gets_its_routes_again() {
        let old = announcements(&[], &["203.0.113.1/32"]);
        let mut new = old.clone();
        new.peers.get_mut("p").unwrap().hold_time =
            ferrolb_crds::config::HoldTime::from_secs(30).unwrap();
        let actions = plan(&Applied::from_desired(&old), &new);
        assert!(matches!(actions[0], Action::RemovePeer { .. }));
        assert!(matches!(actions[1], Action::AddPeer(_)));
        assert!(matches!(actions[2], Action::SetRoutes { .. }));
        // A removed peer is only removed.
        let mut gone = old.clone();
        gone.peers.clear();
        gone.routes.clear();
        assert_eq!(
            plan(&Applied::from_desired(&old), &gone),
            vec![Action::RemovePeer {
                peer: "192.0.2.1".parse().unwrap()
            }]
        );
    }
}
