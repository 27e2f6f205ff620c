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
use std::net::{IpAddr, Ipv6Addr};

use ferrolb_arp::{NeighbourDiscovery, RaConfig};
use tracing::{info, warn};

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

/// Discovery on the interfaces that need it.
#[derive(Default)]
pub struct Discovery {
    running: BTreeMap<String, NeighbourDiscovery>,
}

impl Discovery {
    /// Runs discovery on exactly `ifaces` (started and stopped as needed).
    pub fn track(&mut self, ifaces: &BTreeSet<String>) {
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

    /// The neighbour found on each interface so far.
    pub fn neighbours(&self) -> BTreeMap<String, Ipv6Addr> {
        self.running
            .iter()
            .filter_map(|(name, d)| Some((name.clone(), d.neighbour()?.addr)))
            .collect()
    }
}
