//! Validated configuration: [`Config::build`] turns [`ClusterResources`] into plain Rust types.
//!
//! This is the only place that parses addresses, ASNs, selectors, durations and communities;
//! the controller and the speaker take `&Config`. Every error names the object, the field and
//! the bad value ([`ConfigError`]). An invalid object never discards the valid rest, and an
//! object that was valid in the `previous` config keeps that version when it becomes invalid
//! (so a typo never takes addresses away from running Services).

mod bfd;
mod bgp_advertisement;
mod community_set;
mod error;
mod l2_advertisement;
mod peer;
mod pool;
mod selector;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube_core::ObjectMeta;

pub use bfd::{BFDAuthenticationType, Bfd, BfdAuthentication};
pub use bgp_advertisement::BgpAdv;
pub use community_set::CommunitySet;
pub use error::{ConfigError, Kind, ObjectRef};
pub use l2_advertisement::{L2Adv, PreferredNode};
pub use peer::{Peer, PeerAsn};
pub use pool::{Allocation, Pool};
// The value types live in `crate::value` (a leaf the CRD types use too); re-exported here,
// where the builder's users look for them.
pub use crate::value::{
    Asn, CommunityValue, ConnectTime, DURATION_PATTERN, EBGP_MULTIHOP_MESSAGE, Family, HoldTime,
    IpRange, NOT_AN_ADDRESS_RANGE, Overlap, RANGE_MIXES_FAMILIES, RANGE_START_AFTER_END,
    WELL_KNOWN, address_cel_validations, ebgp_multihop_cel_validation, find_overlaps, ip_to_u128,
    parse_duration, parse_range, u128_to_ip,
};
pub use selector::{Requirement, Selector, SelectorError, SelectorSet};

use crate::resources::ClusterResources;

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

/// The validated configuration. Maps are keyed by object name: ferrolb objects live in one
/// namespace, and a second object with the same name (in another namespace) is an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Address pools.
    pub pools: BTreeMap<String, Pool>,
    /// L2 advertisements.
    pub l2_advertisements: BTreeMap<String, L2Adv>,
    /// BGP advertisements.
    pub bgp_advertisements: BTreeMap<String, BgpAdv>,
    /// BGP peers.
    pub peers: BTreeMap<String, Peer>,
    /// BFD profiles.
    pub bfd_profiles: BTreeMap<String, Bfd>,
    /// Community alias objects (by object name); see [`Config::community_aliases`].
    pub communities: BTreeMap<String, CommunitySet>,
}

/// Result of [`Config::build`]: the config in force and every error found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigOutcome {
    /// Valid objects, plus the previous version of objects that became invalid.
    pub config: Config,
    /// One entry per invalid field; empty when everything is valid.
    pub errors: Vec<ConfigError>,
}

impl ConfigOutcome {
    /// Whether no object had an error.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates `res` without a previous config (see [`Config::build`]).
pub fn from_resources(res: &ClusterResources) -> ConfigOutcome {
    Config::build(res, None)
}

impl Config {
    /// Validates every ferrolb object of `res`.
    ///
    /// Valid objects are in the returned config. An invalid object is reported in `errors`
    /// and left out — unless `previous` holds a valid version of it (same kind and name), which
    /// is kept (its errors are marked `kept_previous`). References are resolved: advertisements
    /// to pools (by name and by selector), peers and communities; peers to BFD profiles and
    /// password Secrets; pool namespace selectors to namespace names.
    pub fn build(res: &ClusterResources, previous: Option<&Config>) -> ConfigOutcome {
        let empty = Config::default();
        let prev = previous.unwrap_or(&empty);
        let mut errors = Vec::new();
        let mut config = Config::default();
        let namespaces = labels_by_name(res.namespaces.iter().map(|n| &n.metadata));
        let nodes = labels_by_name(res.nodes.iter().map(|n| &n.metadata));
        // In reference order: what an object refers to is validated before it.
        config.add_bfd_profiles(res, prev, &mut errors);
        config.add_communities(res, prev, &mut errors);
        config.pools = settle_pools(
            pool_candidates(res, &namespaces, &mut errors),
            prev,
            &mut errors,
        );
        config.add_peers(res, prev, &nodes, &mut errors);
        config.add_bgp_advertisements(res, prev, &nodes, &mut errors);
        config.add_l2_advertisements(res, prev, &mut errors);
        ConfigOutcome { config, errors }
    }

    /// Every community alias (name -> value) over all `Community` objects.
    pub fn community_aliases(&self) -> BTreeMap<String, CommunityValue> {
        self.communities
            .values()
            .flat_map(|c| c.aliases.iter().map(|(k, v)| (k.clone(), *v)))
            .collect()
    }

    /// The pool holding `ip`, if any.
    pub fn pool_for_ip(&self, ip: IpAddr) -> Option<&Pool> {
        self.pools.values().find(|p| p.contains(ip))
    }

    /// L2 advertisements that apply to the pool named `pool`.
    pub fn l2_advertisements_for_pool<'a>(
        &'a self,
        pool: &'a str,
    ) -> impl Iterator<Item = &'a L2Adv> + 'a {
        self.l2_advertisements
            .values()
            .filter(move |a| a.pools.contains(pool))
    }

    /// BGP advertisements that apply to the pool named `pool`.
    pub fn bgp_advertisements_for_pool<'a>(
        &'a self,
        pool: &'a str,
    ) -> impl Iterator<Item = &'a BgpAdv> + 'a {
        self.bgp_advertisements
            .values()
            .filter(move |a| a.pools.contains(pool))
    }

    /// Peers whose `nodeSelectors` select a node with `node_labels`.
    pub fn peers_for_node<'a>(
        &'a self,
        node_labels: &'a Labels,
    ) -> impl Iterator<Item = &'a Peer> + 'a {
        self.peers
            .values()
            .filter(move |p| p.node_selectors.matches(node_labels))
    }
}

/// Uses the new version when valid, else the previous one (marking the errors), else nothing.
fn settle<T: Clone>(
    result: Result<T, Vec<ConfigError>>,
    previous: Option<&T>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(errs) => {
            let kept = previous.is_some();
            errors.extend(errs.into_iter().map(|mut e| {
                e.kept_previous = kept;
                e
            }));
            previous.cloned()
        }
    }
}

/// Pools that were valid before and are unchanged (or invalid now, so their previous version
/// stays) are placed first: they were consistent together. Then new and changed pools, oldest
/// first; one that overlaps an already placed pool falls back to its previous version, if that
/// fits, or is left out.
fn settle_pools(
    mut candidates: Vec<(CreationKey, String, Result<Pool, Vec<ConfigError>>)>,
    prev: &Config,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, Pool> {
    let mut accepted: BTreeMap<String, Pool> = BTreeMap::new();
    let mut changed = Vec::new();
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, name, result) in candidates {
        let previous = prev.pools.get(&name);
        match (result, previous) {
            (Ok(new), Some(old)) if new == *old => {
                accepted.insert(name, new);
            }
            (Err(errs), Some(old)) => {
                settle::<Pool>(Err(errs), Some(old), errors);
                accepted.insert(name, old.clone());
            }
            (Err(errs), None) => {
                settle::<Pool>(Err(errs), None, errors);
            }
            (Ok(new), previous) => changed.push((new, previous)),
        }
    }
    // Previously consistent pools should not overlap; if they do (e.g. a hand-made previous
    // config), the later one is dropped with an error rather than silently kept.
    let stable: Vec<String> = accepted.keys().cloned().collect();
    let mut placed: BTreeMap<String, Pool> = BTreeMap::new();
    for name in stable {
        let pool = accepted
            .remove(&name)
            .expect("name taken from the same map");
        if let Some(e) = pool::overlap_error(&pool, &placed) {
            errors.push(e);
        } else {
            placed.insert(name, pool);
        }
    }
    for (new, previous) in changed {
        match pool::overlap_error(&new, &placed) {
            None => {
                placed.insert(new.name.clone(), new);
            }
            Some(mut e) => {
                let fallback = previous.filter(|old| pool::overlap_error(old, &placed).is_none());
                e.kept_previous = fallback.is_some();
                errors.push(e);
                if let Some(old) = fallback {
                    placed.insert(old.name.clone(), old.clone());
                }
            }
        }
    }
    placed
}

/// Sort key "oldest first": creation time (unset last), then namespace and name.
type CreationKey = (bool, Option<Time>, String, String);

fn creation_key(meta: &ObjectMeta) -> CreationKey {
    (
        meta.creation_timestamp.is_none(),
        meta.creation_timestamp.clone(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The objects of one kind that have a name, one per name; errors for the rest. Sorted by
/// name; among objects with the same name, the oldest wins.
fn unique<'a, T>(
    kind: Kind,
    objs: &'a [T],
    meta: impl Fn(&T) -> &ObjectMeta,
    errors: &mut Vec<ConfigError>,
) -> Vec<&'a T> {
    let mut sorted: Vec<&T> = objs.iter().collect();
    sorted.sort_by_key(|o| {
        let m = meta(o);
        (m.name.clone(), creation_key(m))
    });
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for o in sorted {
        let m = meta(o);
        let me = ObjectRef::new(kind, m);
        match &m.name {
            None => errors.push(me.error("metadata.name", None, "name is required")),
            Some(n) if n.is_empty() => {
                errors.push(me.error("metadata.name", None, "name is required"))
            }
            Some(n) => {
                if let Some(first_ns) = seen.get(n) {
                    errors.push(me.error(
                        "metadata.name",
                        Some(n),
                        format!(
                            "another {kind} has this name (in namespace {first_ns:?}); names must be unique"
                        ),
                    ));
                } else {
                    seen.insert(n.clone(), me.namespace.clone());
                    out.push(o);
                }
            }
        }
    }
    out
}

/// Parses a list of label selectors at `field`, recording errors; invalid entries are skipped.
fn parse_selectors(
    me: &ObjectRef,
    field: &str,
    sels: &[LabelSelector],
    errors: &mut Vec<ConfigError>,
) -> SelectorSet {
    let mut out = Vec::new();
    for (i, s) in sels.iter().enumerate() {
        match Selector::parse(s) {
            Ok(sel) => out.push(sel),
            Err(e) => errors.push(me.error(
                format!("{field}[{i}].{}", e.field),
                Some(&e.value),
                e.message,
            )),
        }
    }
    SelectorSet::new(out)
}

/// Reports duplicates in a list of names at `field`; returns the set.
fn unique_names(
    me: &ObjectRef,
    field: &str,
    names: &[String],
    errors: &mut Vec<ConfigError>,
) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for (i, n) in names.iter().enumerate() {
        if !set.insert(n.clone()) {
            errors.push(me.error(format!("{field}[{i}]"), Some(n), "listed twice"));
        }
    }
    set
}

/// The stages of [`Config::build`], one per kind.
impl Config {
    fn add_bfd_profiles(
        &mut self,
        res: &ClusterResources,
        prev: &Config,
        errors: &mut Vec<ConfigError>,
    ) {
        for obj in unique(Kind::BFDProfile, &res.bfd_profiles, |o| &o.metadata, errors) {
            let name = obj.metadata.name.clone().unwrap_or_default();
            if let Some(v) = settle(
                bfd::validate(obj, &res.secrets),
                prev.bfd_profiles.get(&name),
                errors,
            ) {
                self.bfd_profiles.insert(name, v);
            }
        }
    }

    /// Community aliases; an alias defined twice is an error on the later object.
    fn add_communities(
        &mut self,
        res: &ClusterResources,
        prev: &Config,
        errors: &mut Vec<ConfigError>,
    ) {
        let mut community_objs = unique(Kind::Community, &res.communities, |o| &o.metadata, errors);
        community_objs.sort_by_key(|o| creation_key(&o.metadata));
        for obj in community_objs {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let result = community_set::validate(obj, &self.communities);
            if let Some(v) = settle(result, prev.communities.get(&name), errors) {
                self.communities.insert(name, v);
            }
        }
    }

    fn add_peers(
        &mut self,
        res: &ClusterResources,
        prev: &Config,
        nodes: &BTreeMap<String, Labels>,
        errors: &mut Vec<ConfigError>,
    ) {
        let mut peer_objs = unique(Kind::BGPPeer, &res.bgp_peers, |o| &o.metadata, errors);
        peer_objs.sort_by_key(|o| creation_key(&o.metadata));
        for obj in peer_objs {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let result = peer::validate(obj, &self.bfd_profiles, &res.secrets)
                .and_then(|p| peer::check_duplicate(p, &self.peers, nodes));
            if let Some(v) = settle(result, prev.peers.get(&name), errors) {
                self.peers.insert(name, v);
            }
        }
    }

    /// After pools, peers and communities, which they refer to.
    fn add_bgp_advertisements(
        &mut self,
        res: &ClusterResources,
        prev: &Config,
        nodes: &BTreeMap<String, Labels>,
        errors: &mut Vec<ConfigError>,
    ) {
        let aliases = self.community_aliases();
        // Advertisements (after pools, peers and communities, which they refer to).
        let mut objs = unique(
            Kind::BGPAdvertisement,
            &res.bgp_advertisements,
            |o| &o.metadata,
            errors,
        );
        objs.sort_by_key(|o| creation_key(&o.metadata));
        for obj in objs {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let result = bgp_advertisement::validate(obj, &self.pools, &self.peers, &aliases)
                .and_then(|ad| {
                    bgp_advertisement::check_local_pref(ad, &self.bgp_advertisements, nodes)
                });
            let previous = prev
                .bgp_advertisements
                .get(&name)
                .map(|p| p.restricted_to(&self.pools));
            if let Some(v) = settle(result, previous.as_ref(), errors) {
                self.bgp_advertisements.insert(name, v);
            }
        }
    }

    fn add_l2_advertisements(
        &mut self,
        res: &ClusterResources,
        prev: &Config,
        errors: &mut Vec<ConfigError>,
    ) {
        let objs = unique(
            Kind::L2Advertisement,
            &res.l2_advertisements,
            |o| &o.metadata,
            errors,
        );
        for obj in objs {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let result = l2_advertisement::validate(obj, &self.pools);
            let previous = prev
                .l2_advertisements
                .get(&name)
                .map(|p| p.restricted_to(&self.pools));
            if let Some(v) = settle(result, previous.as_ref(), errors) {
                self.l2_advertisements.insert(name, v);
            }
        }
    }
}

/// Pools, each validated on its own (overlaps across pools: [`settle_pools`]).
fn pool_candidates(
    res: &ClusterResources,
    namespaces: &BTreeMap<String, Labels>,
    errors: &mut Vec<ConfigError>,
) -> Vec<(CreationKey, String, Result<Pool, Vec<ConfigError>>)> {
    let mut candidates = Vec::new();
    for obj in unique(Kind::IPAddressPool, &res.pools, |o| &o.metadata, errors) {
        let name = obj.metadata.name.clone().unwrap_or_default();
        candidates.push((
            creation_key(&obj.metadata),
            name,
            pool::validate(obj, namespaces),
        ));
    }
    candidates
}

/// Labels by object name (objects without a name are left out).
fn labels_by_name<'a>(metas: impl Iterator<Item = &'a ObjectMeta>) -> BTreeMap<String, Labels> {
    metas
        .filter_map(|m| Some((m.name.clone()?, m.labels.clone().unwrap_or_default())))
        .collect()
}
