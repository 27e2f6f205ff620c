//! `BGPAdvertisement` -> [`BgpAdv`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::{ConfigError, Kind, ObjectRef};
use super::l2_advertisement::{PoolRefs, pool_refs};
use super::peer::Peer;
use super::pool::Pool;
use super::selector::SelectorSet;
use super::{Labels, parse_selectors, unique_names};
use crate::v1alpha1::{BGPAdvertisement, BGPAdvertisementSpec};
use crate::value::CommunityValue;
use crate::value::Family;

/// A validated BGP advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgpAdv {
    /// Object name.
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// Names of the pools it applies to (resolved).
    pub pools: BTreeSet<String>,
    /// The pool references as written (re-resolved when pools change).
    pub pool_refs: PoolRefs,
    /// Prefix length announced for IPv4 addresses (default 32).
    pub aggregation_length: u8,
    /// Prefix length announced for IPv6 addresses (default 128).
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF, if set.
    pub local_pref: Option<u32>,
    /// Communities, resolved from aliases and well-known names, sorted, no duplicates.
    pub communities: Vec<CommunityValue>,
    /// `BGPPeer` names to announce to; empty = every peer.
    pub peers: BTreeSet<String>,
    /// Nodes that may announce; empty = all.
    pub node_selectors: SelectorSet,
    /// Services it applies to; empty = all.
    pub service_selectors: SelectorSet,
}

impl BgpAdv {
    /// The prefix announced for `ip`: `ip` masked to the aggregation length of its family.
    pub fn prefix_for(&self, ip: IpAddr) -> IpNet {
        let len = match ip {
            IpAddr::V4(_) => self.aggregation_length,
            IpAddr::V6(_) => self.aggregation_length_v6,
        };
        // Lengths are validated to fit their family.
        IpNet::new(ip, len)
            .map(|n| n.trunc())
            .unwrap_or_else(|_| IpNet::from(ip))
    }

    /// Whether it announces to the peer named `peer`.
    pub fn applies_to_peer(&self, peer: &str) -> bool {
        self.peers.is_empty() || self.peers.contains(peer)
    }

    /// Whether a node with `labels` may announce.
    pub fn selects_node(&self, labels: &Labels) -> bool {
        self.node_selectors.matches(labels)
    }

    /// Whether it applies to a Service with `labels`.
    pub fn selects_service(&self, labels: &Labels) -> bool {
        self.service_selectors.matches(labels)
    }

    /// This version with its pools re-resolved against `pools` (used when the previous
    /// version is kept). Its `peers` stay as written: a peer that is gone matches nothing.
    pub(super) fn restricted_to(&self, pools: &BTreeMap<String, Pool>) -> Self {
        BgpAdv {
            pools: self.pool_refs.resolve(pools),
            ..self.clone()
        }
    }
}

pub(super) fn validate(
    obj: &BGPAdvertisement,
    pools: &BTreeMap<String, Pool>,
    peers: &BTreeMap<String, Peer>,
    aliases: &BTreeMap<String, CommunityValue>,
) -> Result<BgpAdv, Vec<ConfigError>> {
    let me = ObjectRef::new(Kind::BGPAdvertisement, &obj.metadata);
    let s = &obj.spec;
    let mut errors = Vec::new();
    let refs = pool_refs(
        &me,
        &s.ip_address_pools,
        &s.ip_address_pool_selectors,
        pools,
        &mut errors,
    );
    let resolved = refs.resolve(pools);

    let (aggregation_length, aggregation_length_v6) = aggregation_lengths(&me, s, &mut errors);
    check_aggregates(
        &me,
        &resolved,
        pools,
        (aggregation_length, aggregation_length_v6),
        &mut errors,
    );
    if !s.service_selectors.is_empty() && (aggregation_length != 32 || aggregation_length_v6 != 128)
    {
        errors.push(me.error(
            "spec.serviceSelectors",
            None,
            "serviceSelectors cannot be combined with an aggregation length other than 32/128",
        ));
    }

    let communities = communities(&me, &s.communities, aliases, &mut errors);

    let peer_names = unique_names(&me, "spec.peers", &s.peers, &mut errors);
    for (i, p) in s.peers.iter().enumerate() {
        if !peers.contains_key(p) {
            errors.push(me.error(
                format!("spec.peers[{i}]"),
                Some(p),
                "no valid BGPPeer with this name",
            ));
        }
    }
    let node_selectors = parse_selectors(&me, "spec.nodeSelectors", &s.node_selectors, &mut errors);
    let service_selectors = parse_selectors(
        &me,
        "spec.serviceSelectors",
        &s.service_selectors,
        &mut errors,
    );

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(BgpAdv {
        name: me.name.clone(),
        namespace: me.namespace.clone(),
        pools: resolved,
        pool_refs: refs,
        aggregation_length,
        aggregation_length_v6,
        local_pref: s.local_pref,
        communities,
        peers: peer_names,
        node_selectors,
        service_selectors,
    })
}

/// `aggregationLength` (1..=32, default 32) and `aggregationLengthV6` (1..=128, default 128).
fn aggregation_lengths(
    me: &ObjectRef,
    s: &BGPAdvertisementSpec,
    errors: &mut Vec<ConfigError>,
) -> (u8, u8) {
    let mut length = |field: &str, v: Option<i32>, family: Family| -> u8 {
        let max = family.bits();
        match v {
            None => max,
            Some(v) if (1..=i32::from(max)).contains(&v) => v as u8,
            Some(v) => {
                errors.push(me.error(
                    format!("spec.{field}"),
                    Some(&v.to_string()),
                    format!("must be between 1 and {max}"),
                ));
                max
            }
        }
    };
    let aggregation_length = length("aggregationLength", s.aggregation_length, Family::V4);
    let aggregation_length_v6 = length("aggregationLengthV6", s.aggregation_length_v6, Family::V6);
    (aggregation_length, aggregation_length_v6)
}

/// An aggregate may not be wider than any address entry of a pool it covers.
fn check_aggregates(
    me: &ObjectRef,
    resolved: &BTreeSet<String>,
    pools: &BTreeMap<String, Pool>,
    (aggregation_length, aggregation_length_v6): (u8, u8),
    errors: &mut Vec<ConfigError>,
) {
    // An aggregate may not be wider than any address entry of a pool it covers (MetalLB
    // validateBGPAdvPerPool): the entry's largest CIDR must fit inside the announced prefix.
    for pool_name in resolved {
        let Some(pool) = pools.get(pool_name) else {
            continue;
        };
        for (i, r) in pool.ranges.iter().enumerate() {
            let (field, agg) = match r.family() {
                Family::V4 => ("spec.aggregationLength", aggregation_length),
                Family::V6 => ("spec.aggregationLengthV6", aggregation_length_v6),
            };
            let widest = r
                .to_cidrs()
                .iter()
                .map(IpNet::prefix_len)
                .min()
                .unwrap_or(agg);
            if agg < widest {
                errors.push(me.error(
                    field,
                    Some(&agg.to_string()),
                    format!(
                        "aggregation length {agg} is shorter than prefix /{widest} of IPAddressPool {pool_name} \
                         spec.addresses[{i}] {:?}: the aggregate would cover addresses outside the pool",
                        pool.addresses.get(i).map(String::as_str).unwrap_or_default()
                    ),
                ));
            }
        }
    }
}

/// `communities`: values or aliases, each once, sorted.
fn communities(
    me: &ObjectRef,
    texts: &[String],
    aliases: &BTreeMap<String, CommunityValue>,
    errors: &mut Vec<ConfigError>,
) -> Vec<CommunityValue> {
    let mut communities = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, text) in texts.iter().enumerate() {
        match CommunityValue::resolve(text, aliases) {
            Ok(v) => {
                if seen.insert(v) {
                    communities.push(v);
                } else {
                    errors.push(me.error(
                        format!("spec.communities[{i}]"),
                        Some(text),
                        format!("community {v} listed twice"),
                    ));
                }
            }
            Err(m) => errors.push(me.error(format!("spec.communities[{i}]"), Some(text), m)),
        }
    }
    communities.sort_unstable();
    communities
}

/// MetalLB's LOCAL_PREF rule: two advertisements of the same pool with different `localPref`
/// would announce the same prefix to the same peer from the same node with two values, unless
/// they differ in aggregation length, their peers are disjoint, or their nodes are disjoint.
/// Advertisements with `serviceSelectors` are exempt (the speaker checks them per Service).
pub(super) fn check_local_pref(
    ad: BgpAdv,
    accepted: &BTreeMap<String, BgpAdv>,
    nodes: &BTreeMap<String, Labels>,
) -> Result<BgpAdv, Vec<ConfigError>> {
    if !ad.service_selectors.is_empty() {
        return Ok(ad);
    }
    for other in accepted.values() {
        if !other.service_selectors.is_empty()
            || other.local_pref == ad.local_pref
            || other.pools.is_disjoint(&ad.pools)
            || other.aggregation_length != ad.aggregation_length
            || other.aggregation_length_v6 != ad.aggregation_length_v6
        {
            continue;
        }
        let peers_disjoint =
            !ad.peers.is_empty() && !other.peers.is_empty() && ad.peers.is_disjoint(&other.peers);
        let nodes_disjoint = !ad.node_selectors.is_everything()
            && !other.node_selectors.is_everything()
            && !nodes
                .values()
                .any(|l| ad.node_selectors.matches(l) && other.node_selectors.matches(l));
        if peers_disjoint || nodes_disjoint {
            continue;
        }
        let pool = ad
            .pools
            .intersection(&other.pools)
            .next()
            .cloned()
            .unwrap_or_default();
        let me = ObjectRef {
            kind: Kind::BGPAdvertisement,
            namespace: ad.namespace.clone(),
            name: ad.name.clone(),
        };
        let show = |v: Option<u32>| v.map_or_else(|| "unset".to_string(), |v| v.to_string());
        return Err(vec![me.error(
            "spec.localPref",
            Some(&show(ad.local_pref)),
            format!(
                "BGPAdvertisement {} announces IPAddressPool {pool} with localPref {} to the same \
                 peers from the same nodes; use different aggregation lengths, peers or nodes",
                other.name,
                show(other.local_pref)
            ),
        )]);
    }
    Ok(ad)
}
