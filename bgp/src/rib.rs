//! Adj-RIB-Out: what we told one peer, and the minimal UPDATEs that turn it into what we
//! want it to have. Routes that share their attributes are packed into as few UPDATEs as fit
//! in the negotiated message size; withdrawals are packed the same way.
//!
//! Next hop rule: a route's [`RouteAttrs::next_hop`] wins; otherwise IPv4 routes use the
//! session's local IPv4 address and IPv6 routes the session's local IPv6 address. An IPv6
//! route over an IPv4 session (or IPv4 over IPv6) therefore needs an explicit next hop of its
//! own family; without one it is not sent and [`Plan::unresolved`] counts it.
//!
//! Exception (RFC 8950): an IPv4 route with no IPv4 next hop goes out with the session's IPv6
//! next hop, inside MP_REACH_NLRI (AFI 1, SAFI 1), when both sides negotiated the extended
//! next hop capability for IPv4 unicast ([`SessionInfo::ipv4_over_ipv6`]). When we offered it
//! and the peer did not, such a route is refused and [`Plan::needs_extended_next_hop`] counts
//! it (when we did not offer it, it is unresolved, as above). The IPv6 next hop is the
//! global address with the link-local one after it (32 octets, RFC 2545) when the session
//! knows both; on a link-local session without a global address, the link-local address in
//! both fields (32 octets), as FRR 8.4 itself sends on unnumbered sessions (captured in
//! tests/extended_next_hop.rs); otherwise the one address it has (16 octets).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};

use crate::packet::{
    AsSegment, AttrValue, Cxt, Family, HEADER_LEN, LargeCommunity, MpReach, MpUnreach, PathAttr,
    Update, prefix_wire_len,
};

/// LOCAL_PREF sent to iBGP peers when the route sets none (the common default of FRR, BIRD
/// and most routers).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Attributes of one advertised route, as the speaker sets them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAttrs {
    /// Sent to iBGP peers only (RFC 4271 §5.1.5); [`DEFAULT_LOCAL_PREF`] when `None`.
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// Standard communities, `(asn << 16) | value`.
    pub communities: Vec<u32>,
    pub large_communities: Vec<LargeCommunity>,
    /// Overrides the session's local address (see the module docs for the rule).
    pub next_hop: Option<IpAddr>,
}

/// The desired routes for a peer. Attributes are shared: routes with the same attributes
/// should hold one `Arc` (with 10,000 routes a value costs 8 bytes instead of ~90).
pub type RouteSet = BTreeMap<IpNet, Arc<RouteAttrs>>;

/// Routes in any of the forms [`crate::BgpSpeaker::set_routes`] takes: a shared set (kept
/// as is), a set, or plain attributes per prefix (equal ones then share one `Arc`).
pub trait IntoRouteSet {
    fn into_route_set(self) -> Arc<RouteSet>;
}

impl IntoRouteSet for Arc<RouteSet> {
    fn into_route_set(self) -> Arc<RouteSet> {
        self
    }
}

impl IntoRouteSet for RouteSet {
    fn into_route_set(self) -> Arc<RouteSet> {
        Arc::new(self)
    }
}

impl IntoRouteSet for BTreeMap<IpNet, RouteAttrs> {
    fn into_route_set(self) -> Arc<RouteSet> {
        Arc::new(share_values(self))
    }
}

/// `map` with equal values sharing one `Arc` (route attributes: usually one or a few distinct
/// sets for thousands of routes). Also used by the speaker for its decided routes.
pub fn share_values<K: Ord, V: Ord + Clone>(map: BTreeMap<K, V>) -> BTreeMap<K, Arc<V>> {
    let mut seen: BTreeMap<V, Arc<V>> = BTreeMap::new();
    map.into_iter()
        .map(|(k, v)| {
            let shared = match seen.get(&v) {
                Some(s) => s.clone(),
                None => seen.entry(v.clone()).or_insert_with(|| Arc::new(v)).clone(),
            };
            (k, shared)
        })
        .collect()
}

/// What the session knows that shapes the attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub local_asn: u32,
    pub peer_asn: u32,
    pub local_v4: Option<Ipv4Addr>,
    pub local_v6: Option<Ipv6Addr>,
    /// Our link-local address on the session's link (unnumbered sessions), sent after the
    /// global IPv6 next hop, or in both fields when there is no global one.
    pub link_local: Option<Ipv6Addr>,
    /// RFC 8950 negotiated for IPv4 unicast: IPv4 routes may take the IPv6 next hop.
    pub ipv4_over_ipv6: bool,
    /// We offered RFC 8950 for IPv4 unicast: an IPv4 route left without a next hop because
    /// the peer did not is counted as [`Plan::needs_extended_next_hop`], not as unresolved.
    pub offered_ipv4_over_ipv6: bool,
    pub cxt: Cxt,
    pub families: Vec<Family>,
}

/// Why a route has no next hop on this session.
enum NoNextHop {
    /// No address of a usable family.
    Unresolved,
    /// Only an IPv6 next hop, and the peer did not negotiate RFC 8950.
    NeedsExtendedNextHop,
}

impl SessionInfo {
    fn ebgp(&self) -> bool {
        self.local_asn != self.peer_asn
    }

    /// The IPv6 next hop of this session: (global or link-local, link-local after a global).
    fn v6_next_hop(&self) -> Option<(IpAddr, Option<Ipv6Addr>)> {
        match (self.local_v6, self.link_local) {
            (Some(g), Some(ll)) if g != ll && !g.is_unicast_link_local() => {
                Some((IpAddr::V6(g), Some(ll)))
            }
            (Some(g), _) => Some((IpAddr::V6(g), None)),
            // No global address: the link-local one in both fields, as FRR sends it.
            (None, Some(ll)) => Some((IpAddr::V6(ll), Some(ll))),
            (None, None) => None,
        }
    }

    fn next_hop(
        &self,
        net: &IpNet,
        attrs: &RouteAttrs,
    ) -> Result<(IpAddr, Option<Ipv6Addr>), NoNextHop> {
        let found = match (net, attrs.next_hop) {
            (IpNet::V4(_), Some(nh @ IpAddr::V4(_))) | (IpNet::V6(_), Some(nh @ IpAddr::V6(_))) => {
                Some((nh, None))
            }
            (IpNet::V4(_), None) => match (self.local_v4, self.v6_next_hop()) {
                (Some(a), _) => Some((IpAddr::V4(a), None)),
                (None, Some(v6)) if self.ipv4_over_ipv6 => Some(v6),
                (None, Some(_)) if self.offered_ipv4_over_ipv6 => {
                    return Err(NoNextHop::NeedsExtendedNextHop);
                }
                (None, _) => None,
            },
            (IpNet::V6(_), None) => self.v6_next_hop(),
            _ => None,
        };
        found.ok_or(NoNextHop::Unresolved)
    }
}

/// The attributes as they go on the wire: the group key for packing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Wire {
    /// The NLRI's family: IPv4 and IPv6 routes with the same IPv6 next hop (RFC 8950) go in
    /// different MP_REACH attributes.
    family: Family,
    next_hop: IpAddr,
    /// Sent after an IPv6 global `next_hop` (RFC 2545 32-octet next hop).
    link_local: Option<Ipv6Addr>,
    attrs: Arc<RouteAttrs>,
}

/// The UPDATEs to send, in order, and what could not be sent.
#[derive(Debug, Default)]
pub struct Plan {
    pub updates: Vec<Update>,
    /// Routes skipped because no next hop of their family was known.
    pub unresolved: usize,
    /// IPv4 routes refused because their only next hop is IPv6 and the peer did not
    /// negotiate the extended next hop capability (RFC 8950).
    pub needs_extended_next_hop: usize,
    pub announced: usize,
    pub withdrawn: usize,
}

/// Per-peer Adj-RIB-Out. Attribute sets are interned: routes that share attributes share
/// one allocation, so a prefix costs little more than its key.
#[derive(Debug, Default, Clone)]
pub struct AdjRibOut {
    sent: BTreeMap<IpNet, Arc<Wire>>,
}

impl AdjRibOut {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of prefixes the peer has from us.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Forget everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.sent.clear();
    }

    /// Diffs `desired` against what was sent, records the new state, and returns the packed
    /// UPDATEs (withdrawals first).
    pub fn sync(&mut self, desired: &RouteSet, sess: &SessionInfo) -> Plan {
        let mut plan = Plan::default();
        let want = self.wanted(desired, sess, &mut plan);
        let withdraw: Vec<IpNet> = self
            .sent
            .keys()
            .filter(|n| !want.contains_key(n))
            .copied()
            .collect();
        let mut groups: BTreeMap<&Wire, Vec<IpNet>> = BTreeMap::new();
        for (net, w) in &want {
            let same = self
                .sent
                .get(net)
                .is_some_and(|old| Arc::ptr_eq(old, w) || old == w);
            if !same {
                groups.entry(w.as_ref()).or_default().push(*net);
            }
        }
        plan.withdrawn = withdraw.len();
        plan.announced = groups.values().map(Vec::len).sum();
        // IPv4 routes that went out in MP_REACH (RFC 8950) are withdrawn in MP_UNREACH.
        let (mp_v4, withdraw): (Vec<IpNet>, Vec<IpNet>) = withdraw.into_iter().partition(|n| {
            matches!(n, IpNet::V4(_)) && self.sent.get(n).is_some_and(|w| w.next_hop.is_ipv6())
        });
        pack_withdrawals(&withdraw, sess, &mut plan.updates);
        pack_mp_withdrawals(Family::Ipv4Unicast, &mp_v4, sess, &mut plan.updates);
        for (w, nets) in &groups {
            pack_announcements(w, nets, sess, &mut plan.updates);
        }
        self.sent = want;
        plan
    }

    /// The wire form of every route of `desired` the session can carry; routes without a
    /// usable next hop are counted in `plan`.
    fn wanted(
        &self,
        desired: &RouteSet,
        sess: &SessionInfo,
        plan: &mut Plan,
    ) -> BTreeMap<IpNet, Arc<Wire>> {
        // Interner seeded with what was sent, so unchanged routes keep their Arc.
        let mut interned: BTreeMap<Wire, Arc<Wire>> = BTreeMap::new();
        for w in self.sent.values() {
            if !interned.contains_key(w.as_ref()) {
                interned.insert(w.as_ref().clone(), w.clone());
            }
        }
        // Built from a sorted iterator, so the map's nodes are full (half the memory of
        // inserting one by one); consecutive routes usually share their attributes' `Arc`.
        let mut last: Option<Arc<Wire>> = None;
        desired
            .iter()
            .filter(|(net, _)| sess.families.contains(&Family::of(net)))
            .filter_map(|(net, attrs)| {
                let (next_hop, link_local) = match sess.next_hop(net, attrs) {
                    Ok(nh) => nh,
                    Err(NoNextHop::Unresolved) => {
                        plan.unresolved += 1;
                        return None;
                    }
                    Err(NoNextHop::NeedsExtendedNextHop) => {
                        plan.needs_extended_next_hop += 1;
                        return None;
                    }
                };
                let family = Family::of(net);
                if let Some(l) = &last
                    && l.family == family
                    && l.next_hop == next_hop
                    && l.link_local == link_local
                    && Arc::ptr_eq(&l.attrs, attrs)
                {
                    return Some((*net, l.clone()));
                }
                let w = Wire {
                    family,
                    next_hop,
                    link_local,
                    attrs: attrs.clone(),
                };
                let arc = interned
                    .entry(w)
                    .or_insert_with_key(|w| Arc::new(w.clone()))
                    .clone();
                last = Some(arc.clone());
                Some((*net, arc))
            })
            .collect()
    }

    /// Everything sent for `family`, again (answer to ROUTE-REFRESH, RFC 2918).
    pub fn replay(&self, family: Family, sess: &SessionInfo) -> Vec<Update> {
        let mut groups: BTreeMap<&Wire, Vec<IpNet>> = BTreeMap::new();
        for (net, w) in &self.sent {
            if Family::of(net) == family {
                groups.entry(w.as_ref()).or_default().push(*net);
            }
        }
        let mut out = Vec::new();
        for (w, nets) in &groups {
            pack_announcements(w, nets, sess, &mut out);
        }
        out
    }

    /// The families that currently have routes.
    pub fn families(&self) -> BTreeSet<Family> {
        self.sent.keys().map(Family::of).collect()
    }
}

fn base_attrs(w: &Wire, sess: &SessionInfo) -> Vec<PathAttr> {
    let mut attrs = vec![PathAttr::new(AttrValue::Origin(0))];
    let path = if sess.ebgp() {
        vec![AsSegment::sequence(vec![sess.local_asn])]
    } else {
        vec![]
    };
    attrs.push(PathAttr::new(AttrValue::AsPath(path.clone())));
    if let IpAddr::V4(nh) = w.next_hop {
        attrs.push(PathAttr::new(AttrValue::NextHop(nh)));
    }
    if let Some(med) = w.attrs.med {
        attrs.push(PathAttr::new(AttrValue::Med(med)));
    }
    if !sess.ebgp() {
        // Well-known and mandatory towards internal peers (RFC 4271 §5.1.5): without it FRR
        // treats the UPDATE as malformed and withdraws the route.
        let lp = w.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
        attrs.push(PathAttr::new(AttrValue::LocalPref(lp)));
    }
    if !w.attrs.communities.is_empty() {
        attrs.push(PathAttr::new(AttrValue::Communities(
            w.attrs.communities.clone(),
        )));
    }
    // A 4-octet local ASN to a 2-octet peer: AS_PATH carries AS_TRANS, AS4_PATH the truth.
    if !sess.cxt.four_byte_asn && sess.local_asn > u16::MAX as u32 && sess.ebgp() {
        attrs.push(PathAttr::new(AttrValue::As4Path(path)));
    }
    if !w.attrs.large_communities.is_empty() {
        attrs.push(PathAttr::new(AttrValue::LargeCommunities(
            w.attrs.large_communities.clone(),
        )));
    }
    attrs
}

fn attrs_len(attrs: &[PathAttr], cxt: &Cxt) -> usize {
    attrs.iter().map(|a| a.wire_len(cxt)).sum()
}

/// Bytes left for NLRI/withdrawals after the header, the two length fields and `used`.
fn room(cxt: &Cxt, used: usize) -> usize {
    cxt.max_len.saturating_sub(HEADER_LEN + 4 + used)
}

/// Splits `nets` into runs whose encoded size fits `space`.
fn chunks<'a>(nets: &'a [IpNet], space: usize) -> impl Iterator<Item = &'a [IpNet]> + 'a {
    let mut rest = nets;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut used = 0;
        let mut n = 0;
        for net in rest {
            let l = prefix_wire_len(net);
            if used + l > space && n > 0 {
                break;
            }
            used += l;
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

fn v4s(nets: &[IpNet]) -> Vec<Ipv4Net> {
    nets.iter()
        .filter_map(|n| match n {
            IpNet::V4(n) => Some(*n),
            IpNet::V6(_) => None,
        })
        .collect()
}

/// MP attribute overhead: flags, type, 2-octet length, AFI, SAFI (+ next hop length,
/// next hop, reserved for MP_REACH).
const MP_UNREACH_OVERHEAD: usize = 4 + 3;

fn pack_withdrawals(nets: &[IpNet], sess: &SessionInfo, out: &mut Vec<Update>) {
    let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = nets.iter().partition(|n| matches!(n, IpNet::V4(_)));
    for c in chunks(&v4, room(&sess.cxt, 0)) {
        out.push(Update {
            withdrawn: v4s(c),
            ..Default::default()
        });
    }
    pack_mp_withdrawals(Family::Ipv6Unicast, &v6, sess, out);
}

fn pack_mp_withdrawals(family: Family, nets: &[IpNet], sess: &SessionInfo, out: &mut Vec<Update>) {
    for c in chunks(nets, room(&sess.cxt, MP_UNREACH_OVERHEAD)) {
        out.push(Update {
            attrs: vec![PathAttr::new(AttrValue::MpUnreach(MpUnreach {
                family,
                withdrawn: c.to_vec(),
            }))],
            ..Default::default()
        });
    }
}

fn pack_announcements(w: &Wire, nets: &[IpNet], sess: &SessionInfo, out: &mut Vec<Update>) {
    let base = base_attrs(w, sess);
    let used = attrs_len(&base, &sess.cxt);
    match (nets.first(), w.next_hop) {
        (Some(IpNet::V4(_)), IpAddr::V4(_)) => {
            for c in chunks(nets, room(&sess.cxt, used)) {
                out.push(Update {
                    attrs: base.clone(),
                    nlri: v4s(c),
                    ..Default::default()
                });
            }
        }
        (Some(net), nh @ IpAddr::V6(_)) => {
            // IPv6 routes, and IPv4 routes with an IPv6 next hop (RFC 8950).
            let mut next_hops = vec![nh];
            next_hops.extend(w.link_local.map(IpAddr::V6));
            let overhead = MP_UNREACH_OVERHEAD + 1 + 16 * next_hops.len() + 1;
            for c in chunks(nets, room(&sess.cxt, used + overhead)) {
                let mut attrs = vec![PathAttr::new(AttrValue::MpReach(MpReach {
                    family: Family::of(net),
                    next_hops: next_hops.clone(),
                    nlri: c.to_vec(),
                }))];
                // Extended length always: the value rarely fits in 255 bytes anyway.
                attrs[0].flags |= crate::packet::attr_flags::EXTENDED_LENGTH;
                attrs.extend(base.iter().cloned());
                out.push(Update {
                    attrs,
                    ..Default::default()
                });
            }
        }
        _ => {} // next hop family mismatch is filtered in `sync`
    }
}
