//! Unnumbered BGP peers (`BGPPeer.spec.interface`): which interfaces need neighbour
//! discovery, and the pure step that gives each such peer the address found on its link.
//!
//! Discovery itself is `ferrolb_arp::NeighbourDiscovery` (Router Advertisements sent and
//! heard on the interface; see that module for why RAs). A peer whose neighbour is not known
//! yet is left out of the announcements (no session, no routes) and listed as waiting; once
//! the neighbour's link-local address is known the peer runs with it as its address, and a
//! new address (another router on the link, once the first has been silent for a while)
//! replaces the session like an address edit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use ferrolb_arp::{L2Handle, NeighbourDiscovery, RaConfig};
use ferrolb_bgp::{BgpSpeaker, Listener};
use tracing::{debug, info, warn};

use crate::decide::Announcements;

/// The interfaces of the unnumbered peers this node runs.
pub fn interfaces(ann: &Announcements) -> BTreeSet<String> {
    ann.peers
        .values()
        .filter_map(|p| p.interface.clone())
        .collect()
}

/// Sets the address of every unnumbered peer of `ann` to the neighbour found on its
/// interface; peers without one are removed (with their routes) and returned by name.
pub fn resolve(ann: &mut Announcements, neighbours: &BTreeMap<String, Ipv6Addr>) -> Vec<String> {
    let mut waiting = Vec::new();
    for (name, p) in ann.peers.iter_mut() {
        let Some(iface) = &p.interface else { continue };
        match neighbours.get(iface) {
            Some(ll) => p.address = IpAddr::V6(*ll),
            None => waiting.push(name.clone()),
        }
    }
    for name in &waiting {
        ann.peers.remove(name);
        ann.routes.remove(name);
    }
    waiting
}

/// Our IPv6 link-local address on the interface `name`, if it has one and is usable.
pub fn link_local_on(links: &[crate::links::Link], name: &str) -> Option<IpAddr> {
    links
        .iter()
        .filter(|l| l.name == name && l.usable())
        .flat_map(|l| l.addrs.iter())
        .find_map(|n| match n.addr() {
            IpAddr::V6(a) if a.is_unicast_link_local() => Some(IpAddr::V6(a)),
            _ => None,
        })
}

/// Discovery on the interfaces that need it, and a BGP listener on our link-local address
/// on each (so the router's own connection is accepted too, not only ours).
#[derive(Default)]
pub struct Discovery {
    running: BTreeMap<String, NeighbourDiscovery>,
    listeners: BTreeMap<String, Listener>,
}

impl Discovery {
    /// Runs discovery on exactly `ifaces` (started and stopped as needed); listeners of
    /// interfaces no longer in `ifaces` are closed.
    pub fn track(&mut self, ifaces: &BTreeSet<String>) {
        self.listeners.retain(|name, _| ifaces.contains(name));
        self.running.retain(|name, _| {
            let keep = ifaces.contains(name);
            if !keep {
                info!(iface = %name, "unnumbered neighbour discovery stopped");
            }
            keep
        });
        for name in ifaces {
            if self.running.contains_key(name) {
                continue;
            }
            match NeighbourDiscovery::start(name, RaConfig::default()) {
                Ok(d) => {
                    info!(iface = %name, "unnumbered neighbour discovery started (router advertisements)");
                    self.running.insert(name.clone(), d);
                }
                Err(error) => warn!(iface = %name, %error, "cannot start neighbour discovery"),
            }
        }
    }

    /// Accepts BGP connections on `[our link-local address%iface]:port` (kept until the
    /// interface has no unnumbered peer; re-bound when the address or interface changes).
    /// A failed bind (another BGP daemon on the port, no link-local address yet) is logged:
    /// the session then runs on our own connection only.
    pub fn listen(&mut self, bgp: &BgpSpeaker, l2: &L2Handle, iface: &str, port: u16) {
        let links = l2.links();
        let Some(link) = links.get(iface) else { return };
        let Some(ll) = link.addresses.iter().find_map(|n| match n.addr() {
            IpAddr::V6(a) if a.is_unicast_link_local() => Some(a),
            _ => None,
        }) else {
            return;
        };
        let addr = SocketAddr::V6(SocketAddrV6::new(ll, port, 0, link.ifindex));
        if self.listeners.get(iface).map(Listener::local_addr) == Some(addr) {
            return;
        }
        self.listeners.remove(iface);
        match bgp.add_listener(addr) {
            Ok(l) => {
                debug!(%iface, %addr, "accepting BGP connections on the unnumbered link");
                self.listeners.insert(iface.to_string(), l);
            }
            Err(error) => {
                warn!(%iface, %error, "not accepting BGP connections on the unnumbered link; connecting out only")
            }
        }
    }

    /// The neighbour found on each interface so far.
    pub fn neighbours(&self) -> BTreeMap<String, Ipv6Addr> {
        self.running
            .iter()
            .filter_map(|(name, d)| Some((name.clone(), d.neighbour()?.addr)))
            .collect()
    }
}
