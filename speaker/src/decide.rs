//! The decision: what this node announces, as a pure function of config, cluster state,
//! live members and links. No I/O; the driver makes the world match the result.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use ferrolb_crds::Config;
use ferrolb_crds::config::{CommunityValue, L2Adv, Peer};

use crate::cluster::{ClusterView, EndpointView, NodeView, ServiceView};
use crate::election::{self, NodeCandidate};
use crate::links::LinkMap;

/// An IP this node answers ARP/NDP for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct L2Claim {
    /// Interfaces to answer on.
    pub interfaces: BTreeSet<String>,
    /// Services using the IP (`namespace/name`).
    pub services: BTreeSet<String>,
}

/// Path attributes of one announced prefix (merged over every matching `BGPAdvertisement`:
/// communities are united, the highest local-pref wins).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAttrs {
    pub local_pref: Option<u32>,
    pub communities: BTreeSet<CommunityValue>,
}

/// Prefixes announced to one peer. Peers that cannot differ (the same advertisements apply,
/// the same address family) share one map: with 10,000 Services and 4 peers this is one map,
/// not four, and [`crate::plan::Applied`] keeps the same `Arc`s instead of copies.
pub type RouteMap = Arc<RouteMapInner>;

/// What a [`RouteMap`] shares. Routes with equal attributes share one `Arc` (usually all of
/// a map's routes have the same ones).
pub type RouteMapInner = BTreeMap<IpNet, Arc<RouteAttrs>>;

/// The elected L2 owner of one Service IP (any node, not only this one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Owner {
    pub node: Option<String>,
    /// Interfaces, known only when the owner is this node.
    pub interfaces: BTreeSet<String>,
}

/// What this node should announce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Announcements {
    /// IPs this node owns on L2.
    pub l2: BTreeMap<IpAddr, L2Claim>,
    /// For every Service with an L2 advertisement: the owner of each of its IPs.
    pub l2_owners: BTreeMap<String, BTreeMap<IpAddr, L2Owner>>,
    /// BGP sessions this node keeps, by `BGPPeer` name.
    pub peers: BTreeMap<String, Peer>,
    /// Prefixes per peer name (every peer of `peers` has an entry, maybe empty).
    pub routes: BTreeMap<String, RouteMap>,
}

impl Announcements {
    /// Owned L2 IPs grouped by interface: what the ARP/NDP responder is given.
    pub fn l2_by_interface(&self) -> BTreeMap<String, BTreeSet<IpAddr>> {
        let mut out: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
        for (ip, claim) in &self.l2 {
            for i in &claim.interfaces {
                out.entry(i.clone()).or_default().insert(*ip);
            }
        }
        out
    }

    /// Distinct prefixes announced to any peer.
    pub fn prefix_count(&self) -> usize {
        self.routes
            .values()
            .flat_map(|r| r.keys())
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// The decision. `live` are the live members (this node included when it runs); `links`
/// what is known about each node's interfaces (a node absent from it is assumed able to
/// answer any subnet; this node's own entry should always be present).
pub fn desired(
    config: &Config,
    cluster: &ClusterView,
    live: &BTreeSet<String>,
    links: &LinkMap,
    me: &str,
) -> Announcements {
    let mut out = Announcements::default();
    let no_node = NodeView::default();
    let ctx = Inputs {
        config,
        cluster,
        live,
        links,
        me,
        me_view: cluster.nodes.get(me).unwrap_or(&no_node),
        no_node: &no_node,
    };

    for p in config.peers.values() {
        if p.node_selectors.matches(&ctx.me_view.labels) {
            out.peers.insert(p.name.clone(), p.clone());
        }
    }
    let mut groups = PeerGroup::of(config, &out.peers);

    for svc in &cluster.services {
        let Some(&key) = svc.ips.first() else {
            continue;
        };
        let eps = cluster.endpoints.get(svc.key.as_str());
        for &ip in &svc.ips {
            let Some(pool) = config.pool_for_ip(ip) else {
                continue;
            };
            ctx.elect_l2(svc, eps, &pool.name, ip, key, &mut out);
            ctx.add_routes(svc, eps, &pool.name, ip, &mut groups);
        }
    }
    for g in groups {
        // Re-collected in order: full B-tree nodes, about half the memory of the map built
        // by inserts in Service order (it lives as long as the decision).
        let routes: RouteMap = Arc::new(ferrolb_bgp::share_values(g.routes));
        for name in g.peers {
            out.routes.insert(name, routes.clone());
        }
    }
    out
}

/// What one decision reads, for its parts.
struct Inputs<'a> {
    config: &'a Config,
    cluster: &'a ClusterView,
    live: &'a BTreeSet<String>,
    links: &'a LinkMap,
    me: &'a str,
    me_view: &'a NodeView,
    no_node: &'a NodeView,
}

/// Whether `node` may announce `svc`: with `externalTrafficPolicy: Local` only with a ready
/// endpoint on it, otherwise with any serving endpoint.
fn has_endpoint(svc: &ServiceView, eps: Option<&EndpointView>, node: &str) -> bool {
    match eps {
        None => false,
        Some(e) if svc.local => e.ready_on(node),
        Some(e) => e.any_serving(),
    }
}

impl Inputs<'_> {
    /// L2: elects `ip`'s owner among every eligible live member (`key`: the Service's first
    /// IP, so all its IPs go to one node); records the owner, and the claim when it is us.
    fn elect_l2(
        &self,
        svc: &ServiceView,
        eps: Option<&EndpointView>,
        pool: &str,
        ip: IpAddr,
        key: IpAddr,
        out: &mut Announcements,
    ) {
        let me = self.me;
        let l2_ads: Vec<&L2Adv> = self
            .config
            .l2_advertisements_for_pool(pool)
            .filter(|a| a.selects_service(&svc.labels))
            .collect();
        if l2_ads.is_empty() {
            return;
        }
        let mut candidates = Vec::new();
        let mut my_ifaces = BTreeSet::new();
        for node in self.live {
            let view = self.cluster.nodes.get(node).unwrap_or(self.no_node);
            if view.excluded || !has_endpoint(svc, eps, node) {
                continue;
            }
            let ads: Vec<&L2Adv> = l2_ads
                .iter()
                .copied()
                .filter(|a| a.selects_node(&view.labels))
                .collect();
            if ads.is_empty() {
                continue;
            }
            match self.links.get(node) {
                Some(l) if node == me => {
                    my_ifaces = eligible_interfaces(l, &ads, ip);
                    if my_ifaces.is_empty() {
                        continue;
                    }
                }
                Some(l) if !is_eligible(l, &ads, ip) => continue,
                _ => {} // eligible, or unknown: assumed symmetric
            }
            let weight: u32 = ads.iter().map(|a| a.preference(&view.labels)).sum();
            candidates.push(NodeCandidate::new(node.clone(), weight));
        }
        let owner = election::owner(&candidates, key).map(str::to_string);
        let mine = owner.as_deref() == Some(me) && !my_ifaces.is_empty();
        if mine {
            let claim = out.l2.entry(ip).or_default();
            claim.interfaces.extend(my_ifaces.iter().cloned());
            claim.services.insert(svc.key.clone());
        }
        out.l2_owners.entry(svc.key.clone()).or_default().insert(
            ip,
            L2Owner {
                node: owner,
                interfaces: if mine { my_ifaces } else { BTreeSet::new() },
            },
        );
    }

    /// BGP: this node announces `ip` (or its aggregate) to each peer group an advertisement
    /// of `pool` applies to, when it is eligible itself.
    fn add_routes(
        &self,
        svc: &ServiceView,
        eps: Option<&EndpointView>,
        pool: &str,
        ip: IpAddr,
        groups: &mut [PeerGroup],
    ) {
        if self.me_view.excluded || !has_endpoint(svc, eps, self.me) {
            return;
        }
        for ad in self
            .config
            .bgp_advertisements_for_pool(pool)
            .filter(|a| a.selects_service(&svc.labels) && a.selects_node(&self.me_view.labels))
        {
            let prefix = ad.prefix_for(ip);
            for g in groups.iter_mut() {
                if !ad.applies_to_peer(&g.peers[0]) || !g.carries(ip) {
                    continue;
                }
                let attrs = g.routes.entry(prefix).or_default();
                attrs.local_pref = attrs.local_pref.max(ad.local_pref);
                attrs.communities.extend(ad.communities.iter().copied());
            }
        }
    }
}

/// Peers whose routes are the same by construction: every `BGPAdvertisement` applies to all
/// or none of them and they carry the same address families. The routes are decided once
/// per group.
struct PeerGroup {
    /// Peer names (at least one; the first stands for the group).
    peers: Vec<String>,
    ipv4: bool,
    dual_stack: bool,
    routes: BTreeMap<IpNet, RouteAttrs>,
}

impl PeerGroup {
    fn of(config: &Config, peers: &BTreeMap<String, Peer>) -> Vec<PeerGroup> {
        let mut groups: BTreeMap<(Vec<bool>, bool, bool), PeerGroup> = BTreeMap::new();
        for (name, peer) in peers {
            let ipv4 = peer.address.is_ipv4();
            // Unnumbered sessions carry both families (IPv4 with IPv6 next hops, RFC 8950).
            let dual_stack = peer.dual_stack_address_family || peer.interface.is_some();
            let ads: Vec<bool> = config
                .bgp_advertisements
                .values()
                .map(|a| a.applies_to_peer(name))
                .collect();
            groups
                .entry((ads, ipv4, dual_stack))
                .or_insert_with(|| PeerGroup {
                    peers: Vec::new(),
                    ipv4,
                    dual_stack,
                    routes: BTreeMap::new(),
                })
                .peers
                .push(name.clone());
        }
        groups.into_values().collect()
    }

    /// Whether the group's sessions carry `ip`'s family.
    fn carries(&self, ip: IpAddr) -> bool {
        self.dual_stack || self.ipv4 == ip.is_ipv4()
    }
}

fn is_eligible(links: &[crate::links::Link], ads: &[&L2Adv], ip: IpAddr) -> bool {
    ads.iter().any(|ad| {
        links.iter().any(|l| {
            if ad.interfaces.is_empty() {
                l.serves(ip)
            } else {
                l.usable() && ad.interfaces.contains(&l.name)
            }
        })
    })
}

/// Interfaces of a node usable for `ip` under the advertisements that select the node: an
/// advertisement with `interfaces` allows those (when up), one without allows every up
/// interface with a subnet holding `ip`.
fn eligible_interfaces(
    links: &[crate::links::Link],
    ads: &[&L2Adv],
    ip: IpAddr,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for ad in ads {
        for l in links {
            let ok = if ad.interfaces.is_empty() {
                l.serves(ip)
            } else {
                l.usable() && ad.interfaces.contains(&l.name)
            };
            if ok {
                out.insert(l.name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
