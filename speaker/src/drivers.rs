//! The protocol drivers the speaker steers (ARP/NDP responder, BGP speaker, BFD manager),
//! and the translation of [`Action`]s into their calls. No policy here.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_arp::L2Handle;
use ferrolb_bfd::BfdManager;
use ferrolb_bgp::{
    BgpSpeaker, CeaseReason, DynamicAsn, Family, GracefulMode, LargeCommunity, PeerConfig, PeerKey,
    RouteSet,
};
use ferrolb_crds::config::{CommunityValue, Peer, PeerAsn};
use tracing::{info, warn};

use crate::Error;
use crate::decide::{RouteAttrs, RouteMap, RouteMapInner};
use crate::links::Link;
use crate::plan::Action;
use crate::retry::Failed;

mod bfd;
use bfd::BfdAt;

/// RFC 8326 GRACEFUL_SHUTDOWN (65535:0).
pub const GRACEFUL_SHUTDOWN: u32 = 0xFFFF_0000;

/// The running protocol drivers.
pub struct Drivers {
    pub l2: L2Handle,
    /// Started when the first peer is added (its router ID is known then).
    pub bgp: Option<BgpSpeaker>,
    /// Started when the first peer with a BFD profile is added.
    pub bfd: Option<BfdManager>,
    /// Peers with graceful restart (kept on shutdown), by VRF and address.
    graceful: BTreeMap<PeerKey, bool>,
    /// This node's name (for its derived router ID).
    node: String,
    /// Neighbour discovery for unnumbered (`interface`) peers.
    pub unnumbered: crate::unnumbered::Discovery,
}

/// The interfaces as the L2 responder last polled them.
pub fn links_of(l2: &L2Handle) -> Vec<Link> {
    l2.links()
        .into_iter()
        .map(|(name, info)| Link {
            loopback: name == "lo" || info.mac.is_none_or(|m| m.0 == [0; 6]),
            name,
            up: info.up,
            addrs: info.addresses,
        })
        .collect()
}

/// The BGP speaker's session config for a validated peer. `dynamicASN` peers take their AS
/// from the OPEN, within the rule the session checks.
pub fn peer_config(p: &Peer) -> PeerConfig {
    let mut c = match p.peer_asn {
        PeerAsn::Fixed(n) => PeerConfig::new(p.address, p.local_as(), n),
        PeerAsn::Internal => PeerConfig::dynamic(p.address, p.local_as(), DynamicAsn::Internal),
        PeerAsn::External => PeerConfig::dynamic(p.address, p.local_as(), DynamicAsn::External),
    };
    c.peer_port = p.port;
    c.vrf = p.vrf.clone();
    c.source_addr = p.source_address;
    c.hold_time = p.hold_time.secs();
    c.keepalive = u16::try_from(p.keepalive_time.as_secs()).unwrap_or(u16::MAX);
    if let Some(t) = p.connect_time {
        c.connect_time = t.as_duration();
    }
    c.ebgp_multihop = p.ebgp_multihop.then_some(255);
    c.md5_password = p.password.clone();
    c.graceful_restart = p.graceful_restart;
    let (own, other) = if p.address.is_ipv4() {
        (Family::Ipv4Unicast, Family::Ipv6Unicast)
    } else {
        (Family::Ipv6Unicast, Family::Ipv4Unicast)
    };
    c.families = if p.dual_stack_address_family || p.interface.is_some() {
        vec![own, other]
    } else {
        vec![own]
    };
    // Unnumbered: IPv4 routes go with our IPv6 link-local next hop (RFC 8950); the session
    // is one hop (TTL 1 for eBGP, as for any directly connected peer).
    c.extended_next_hop = p.interface.is_some();
    c
}

/// Converted route sets by decided map: peers given the same [`RouteMap`] share one set.
/// The map is kept with its set so its address stays unique while this lives.
#[derive(Default)]
struct SharedSets(HashMap<*const RouteMapInner, (RouteMap, Arc<RouteSet>)>);

impl SharedSets {
    fn get(&mut self, routes: &RouteMap, extra_community: Option<u32>) -> Arc<RouteSet> {
        let (_, set) = self.0.entry(Arc::as_ptr(routes)).or_insert_with(|| {
            let set = route_set(routes, extra_community);
            (routes.clone(), Arc::new(set))
        });
        set.clone()
    }
}

/// The BGP crate's route set for decided routes. The decision already shares equal
/// attributes (one `Arc` each), so each shared value is converted once, found by address.
pub fn route_set(routes: &RouteMapInner, extra_community: Option<u32>) -> RouteSet {
    let mut converted: HashMap<*const RouteAttrs, Arc<ferrolb_bgp::RouteAttrs>> = HashMap::new();
    routes
        .iter()
        .map(|(net, a)| {
            let attrs = converted
                .entry(Arc::as_ptr(a))
                .or_insert_with(|| Arc::new(bgp_attrs(a, extra_community)));
            (*net, attrs.clone())
        })
        .collect()
}

fn bgp_attrs(a: &RouteAttrs, extra_community: Option<u32>) -> ferrolb_bgp::RouteAttrs {
    let mut attrs = ferrolb_bgp::RouteAttrs {
        local_pref: a.local_pref,
        ..Default::default()
    };
    for c in &a.communities {
        match *c {
            CommunityValue::Standard(v) => attrs.communities.push(v),
            CommunityValue::Large(g, l1, l2) => {
                attrs.large_communities.push(LargeCommunity(g, l1, l2))
            }
        }
    }
    if let Some(c) = extra_community
        && !attrs.communities.contains(&c)
    {
        attrs.communities.push(c);
    }
    attrs
}

/// The local address to reach `peer` from: the first address on a usable link whose subnet
/// holds it.
pub fn local_address_for(links: &[Link], peer: IpAddr) -> Option<IpAddr> {
    links
        .iter()
        .filter(|l| l.usable())
        .flat_map(|l| l.addrs.iter())
        .find(|n| n.contains(&peer))
        .map(|n| n.addr())
}

/// Router IDs derived from node names fall in this block (100.64.0.0/10, RFC 6598 shared
/// address space: 4,194,304 IDs, never a class D/E value a router would reject).
pub const DERIVED_ROUTER_ID_BLOCK: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 64, 0, 0), 10);

/// Router ID for a node without an IPv4 address: a stable hash (FNV-1a, 32 bits) of the node
/// name mapped into [`DERIVED_ROUTER_ID_BLOCK`], so that every IPv6-only node has its own,
/// the same across restarts. Two names can still collide (about 1 in 4 million per pair);
/// set `routerID` on the BGPPeer where that matters.
pub fn derived_router_id(node: &str) -> Ipv4Addr {
    let mut h: u32 = 0x811c_9dc5;
    for b in node.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let (base, len) = DERIVED_ROUTER_ID_BLOCK;
    let host_bits = 32 - u32::from(len);
    // Skip the block's first address (network) and keep clear of its last.
    let host = 1 + h % ((1u32 << host_bits) - 2);
    Ipv4Addr::from(u32::from(base) | host)
}

/// Router ID: the peer's `routerID`, else the first IPv4 address of a usable link, else one
/// derived from the node name ([`derived_router_id`]).
pub fn router_id(p: &Peer, links: &[Link], node: &str) -> Ipv4Addr {
    p.router_id
        .or_else(|| {
            links
                .iter()
                .filter(|l| l.usable())
                .flat_map(|l| l.addrs.iter())
                .find_map(|n| match n.addr() {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
        })
        .unwrap_or_else(|| derived_router_id(node))
}

impl Drivers {
    pub fn new(l2: L2Handle, node: &str) -> Drivers {
        Drivers {
            l2,
            bgp: None,
            bfd: None,
            graceful: BTreeMap::new(),
            node: node.to_string(),
            unnumbered: Default::default(),
        }
    }

    /// Carries out `actions`; a failing call is logged, does not stop the others and is
    /// returned, for [`crate::retry::Retry`] to make again. Only failing to start a driver
    /// (BGP speaker, BFD manager) is an error.
    pub async fn apply(
        &mut self,
        actions: Vec<Action>,
        links: &[Link],
    ) -> Result<Vec<Failed>, Error> {
        let mut failed = Vec::new();
        let mut sets = SharedSets::default();
        for a in actions {
            if let Some((driver, error)) = self.apply_one(a.clone(), links, &mut sets).await? {
                failed.push(Failed {
                    action: a,
                    driver,
                    error,
                });
            }
        }
        Ok(failed)
    }

    /// Carries out one action; `Some((driver, error))` when the driver refused it.
    async fn apply_one(
        &mut self,
        a: Action,
        links: &[Link],
        sets: &mut SharedSets,
    ) -> Result<Option<(&'static str, String)>, Error> {
        let failed = |driver: &'static str, error: String| Ok(Some((driver, error)));
        match a {
            Action::SetOwned { iface, ips } => {
                info!(%iface, ips = ?ips, "L2 owned set");
                if let Err(error) = self.l2.set_owned(&iface, ips) {
                    warn!(%iface, %error, "failed to set owned IPs");
                    return failed("l2", error.to_string());
                }
            }
            Action::RemoveBfd { peer } => {
                if let Some(bfd) = &self.bfd
                    && let Err(error) = bfd.remove_session(peer).await
                {
                    warn!(%peer, %error, "failed to remove BFD session");
                    return failed("bfd", error.to_string());
                }
            }
            Action::RemovePeer { peer } => {
                self.graceful.remove(&peer);
                if let Some(bgp) = &self.bgp {
                    info!(%peer, "removing BGP peer");
                    if let Err(error) = bgp
                        .remove_peer(peer.clone(), CeaseReason::peer_deconfigured())
                        .await
                    {
                        warn!(%peer, %error, "failed to remove BGP peer");
                        return failed("bgp", error.to_string());
                    }
                }
            }
            Action::AddPeer(p) => {
                if let Err(error) = self.add_or_update_peer(&p, links, false).await? {
                    return failed("bgp", error);
                }
            }
            Action::UpdatePeer(p) => {
                if let Err(error) = self.add_or_update_peer(&p, links, true).await? {
                    return failed("bgp", error);
                }
            }
            Action::SetBfdProfile { peer, profile } => {
                if let Err(error) = self.set_bfd_profile(peer, &profile).await {
                    return failed("bfd", error);
                }
            }
            Action::AddBfd {
                peer,
                profile,
                multihop,
                source,
                interface,
            } => {
                let at = BfdAt {
                    multihop,
                    source,
                    interface,
                };
                if let Err(error) = self.add_bfd(peer, &profile, at, links).await? {
                    return failed("bfd", error);
                }
            }
            Action::SetRoutes { peer, routes } => {
                let set = sets.get(&routes, None);
                if let Some(bgp) = &self.bgp
                    && let Err(error) = bgp.set_routes(peer.clone(), set)
                {
                    warn!(%peer, %error, "failed to set routes");
                    return failed("bgp", error.to_string());
                }
            }
        }
        Ok(None)
    }

    /// Adds a peer to the BGP speaker (starting the speaker first), or changes the settings
    /// of one it has (`update`: the speaker resets the session only if they differ). The
    /// inner error is the speaker's refusal (logged here, retried by the caller).
    async fn add_or_update_peer(
        &mut self,
        p: &Peer,
        links: &[Link],
        update: bool,
    ) -> Result<Result<(), String>, Error> {
        let mut cfg = peer_config(p);
        if let Some(iface) = &p.interface {
            // The neighbour's link-local address is scoped to the interface; the interface's
            // global IPv6 address (if any) goes before our link-local one as next hop.
            cfg.interface = Some(iface.clone());
            cfg.global_v6 = links
                .iter()
                .filter(|l| &l.name == iface)
                .flat_map(|l| l.addrs.iter())
                .find_map(|n| match n.addr() {
                    IpAddr::V6(a) if !a.is_unicast_link_local() => Some(a),
                    _ => None,
                });
        }
        let rid = router_id(p, links, &self.node);
        cfg.router_id = Some(rid);
        if self.bgp.is_none() {
            info!(router_id = %rid, "starting the BGP speaker");
            let speaker =
                BgpSpeaker::new(ferrolb_bgp::SpeakerConfig::new(rid)).map_err(Error::Bgp)?;
            self.bgp = Some(speaker);
        }
        let bgp = self.bgp.as_ref().expect("started above");
        if let Some(iface) = &p.interface
            && p.password.is_none()
        {
            // Routers connect to the standard port, whatever `peerPort` says about theirs.
            self.unnumbered.listen(bgp, &self.l2, iface, 179);
        }
        self.graceful
            .insert(crate::plan::peer_key(p), p.graceful_restart);
        let result = if update {
            info!(peer = %p.name, addr = %p.address, vrf = p.vrf.as_deref().unwrap_or("default"), %rid, "changing BGP peer settings");
            match bgp.update_peer(cfg.clone()) {
                Err(ferrolb_bgp::Error::UnknownPeer(_)) => bgp.add_peer(cfg),
                other => other.map(|_| ()),
            }
        } else {
            info!(peer = %p.name, addr = %p.address, vrf = p.vrf.as_deref().unwrap_or("default"), %rid, "adding BGP peer");
            bgp.add_peer(cfg)
        };
        if let Err(error) = &result {
            warn!(peer = %p.name, %error, "failed to configure BGP peer");
        }
        Ok(result.map_err(|e| e.to_string()))
    }

    /// Shutdown, after membership was left and ARP kept answering a little: stop answering,
    /// BFD AdminDown, then BGP: peers without graceful restart get their routes again with
    /// GRACEFUL_SHUTDOWN (RFC 8326), then a withdraw and a Cease; peers with graceful restart
    /// keep our routes (connection closed without a NOTIFICATION).
    pub async fn shutdown(
        &mut self,
        l2_ifaces: impl IntoIterator<Item = String>,
        routes: &BTreeMap<PeerKey, RouteMap>,
        gshut_wait: Duration,
    ) {
        for iface in l2_ifaces {
            let _ = self.l2.set_owned(&iface, Default::default());
        }
        if let Some(bfd) = self.bfd.take()
            && let Err(error) = bfd.shutdown().await
        {
            warn!(%error, "BFD shutdown failed");
        }
        let Some(bgp) = self.bgp.take() else { return };
        let plain: Vec<PeerKey> = self
            .graceful
            .iter()
            .filter(|(_, gr)| !**gr)
            .map(|(a, _)| a.clone())
            .collect();
        if !plain.is_empty() {
            let mut sets = SharedSets::default();
            for addr in &plain {
                if let Some(r) = routes.get(addr).filter(|r| !r.is_empty()) {
                    let set = sets.get(r, Some(GRACEFUL_SHUTDOWN));
                    let _ = bgp.set_routes(addr.clone(), set);
                }
            }
            tokio::time::sleep(gshut_wait).await;
            for addr in &plain {
                let _ = bgp.set_routes(addr.clone(), RouteSet::new());
            }
            tokio::time::sleep(gshut_wait).await;
            for addr in &plain {
                if let Err(error) = bgp
                    .remove_peer(
                        addr.clone(),
                        CeaseReason::admin_shutdown("ferrolb speaker shutting down"),
                    )
                    .await
                {
                    warn!(peer = %addr, %error, "failed to send Cease");
                }
            }
        }
        bgp.shutdown(GracefulMode::KeepForGracefulRestart).await;
        info!("BGP stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_carry_communities_and_graceful_shutdown_is_added_once() {
        let mut a = RouteAttrs {
            local_pref: Some(100),
            ..Default::default()
        };
        a.communities
            .insert(CommunityValue::Standard(GRACEFUL_SHUTDOWN));
        a.communities.insert(CommunityValue::Large(1, 2, 3));
        let routes = BTreeMap::from([("203.0.113.1/32".parse().unwrap(), Arc::new(a))]);
        let set = route_set(&routes, Some(GRACEFUL_SHUTDOWN));
        let r = &set[&"203.0.113.1/32".parse::<ipnet::IpNet>().unwrap()];
        assert_eq!(r.communities, vec![GRACEFUL_SHUTDOWN]);
        assert_eq!(r.large_communities, vec![LargeCommunity(1, 2, 3)]);
        assert_eq!(r.local_pref, Some(100));
    }

    #[test]
    fn peers_given_one_decided_map_get_one_route_set() {
        let map: RouteMap = Arc::new(BTreeMap::from([(
            "203.0.113.1/32".parse().unwrap(),
            Arc::new(RouteAttrs::default()),
        )]));
        let other: RouteMap = Arc::new((*map).clone());
        let mut sets = SharedSets::default();
        let a = sets.get(&map, None);
        assert!(Arc::ptr_eq(&a, &sets.get(&map, None)), "converted once");
        let b = sets.get(&other, None);
        assert!(!Arc::ptr_eq(&a, &b), "another map, its own set");
        assert_eq!(a, b);
    }

    #[test]
    fn local_address_and_router_id_come_from_usable_links() {
        let links = vec![
            Link {
                name: "lo".into(),
                up: true,
                loopback: true,
                addrs: vec!["127.0.0.1/8".parse().unwrap()],
            },
            Link {
                name: "eth0".into(),
                up: true,
                loopback: false,
                addrs: vec!["192.0.2.11/24".parse().unwrap()],
            },
        ];
        assert_eq!(
            local_address_for(&links, "192.0.2.1".parse().unwrap()),
            Some("192.0.2.11".parse().unwrap())
        );
        assert_eq!(
            local_address_for(&links, "198.51.100.1".parse().unwrap()),
            None
        );
        let yaml = "apiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {name: p, namespace: ferrolb-system}\nspec: {myASN: 64513, dynamicASN: internal, peerAddress: 192.0.2.1, holdTime: 9s, connectTime: 1s, password: s3cret}\n";
        let loaded = ferrolb_crds::yaml::load_str("t.yaml", yaml);
        let p = ferrolb_crds::from_resources(&loaded.resources).config.peers["p"].clone();
        assert_eq!(router_id(&p, &links, "n1"), Ipv4Addr::new(192, 0, 2, 11));
        let c = peer_config(&p);
        assert_eq!((c.local_asn, c.hold_time), (64513, 9));
        assert_eq!(c.dynamic_asn, Some(DynamicAsn::Internal));
        assert_eq!(c.md5_password.as_deref(), Some("s3cret"));
        assert_eq!(c.families, vec![Family::Ipv4Unicast]);
        assert_eq!(c.connect_time, Duration::from_secs(1));
        // keepaliveTime and connectTime reach the session as written; external is learned.
        let yaml = yaml
            .replace("internal", "external")
            .replace("holdTime: 9s", "holdTime: 30s, keepaliveTime: 4s")
            .replace("connectTime: 1s", "connectTime: 7s");
        let loaded = ferrolb_crds::yaml::load_str("t.yaml", &yaml);
        let p = ferrolb_crds::from_resources(&loaded.resources).config.peers["p"].clone();
        let c = peer_config(&p);
        assert_eq!(c.dynamic_asn, Some(DynamicAsn::External));
        assert_eq!((c.hold_time, c.keepalive), (30, 4));
        assert_eq!(c.connect_time, Duration::from_secs(7));
        assert!(c.validate().is_ok());
    }
}
