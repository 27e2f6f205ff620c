//! `L2Advertisement` -> [`L2Adv`], and pool resolution shared with BGP advertisements.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::error::{ConfigError, Kind, ObjectRef};
use super::pool::Pool;
use super::selector::{Selector, SelectorSet};
use super::{Labels, parse_selectors, unique_names};
use crate::v1alpha1::L2Advertisement;

/// Which pools an advertisement applies to, as written and as resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolRefs {
    /// `ipAddressPools`.
    pub names: BTreeSet<String>,
    /// `ipAddressPoolSelectors`.
    pub selectors: SelectorSet,
}

impl PoolRefs {
    /// Pool names this resolves to among `pools`: the named ones that exist, the ones whose
    /// labels match a selector, or every pool when neither is given.
    pub fn resolve(&self, pools: &BTreeMap<String, Pool>) -> BTreeSet<String> {
        if self.names.is_empty() && self.selectors.is_empty() {
            return pools.keys().cloned().collect();
        }
        pools
            .values()
            .filter(|p| {
                self.names.contains(&p.name)
                    || (!self.selectors.is_empty() && self.selectors.matches(&p.labels))
            })
            .map(|p| p.name.clone())
            .collect()
    }
}

/// Parses `ipAddressPools` + `ipAddressPoolSelectors`; a named pool that is not in `pools` is
/// an error.
pub(super) fn pool_refs(
    me: &ObjectRef,
    names: &[String],
    selectors: &[LabelSelector],
    pools: &BTreeMap<String, Pool>,
    errors: &mut Vec<ConfigError>,
) -> PoolRefs {
    let set = unique_names(me, "spec.ipAddressPools", names, errors);
    for (i, n) in names.iter().enumerate() {
        if !pools.contains_key(n) {
            errors.push(me.error(
                format!("spec.ipAddressPools[{i}]"),
                Some(n),
                "no valid IPAddressPool with this name",
            ));
        }
    }
    PoolRefs {
        names: set,
        selectors: parse_selectors(me, "spec.ipAddressPoolSelectors", selectors, errors),
    }
}

/// A weighted node preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreferredNode {
    /// 1..100.
    pub weight: u32,
    /// Nodes that get the weight.
    pub selector: Selector,
}

/// A validated L2 advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Adv {
    /// Object name.
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// Names of the pools it applies to (resolved).
    pub pools: BTreeSet<String>,
    /// The pool references as written (re-resolved when pools change).
    pub pool_refs: PoolRefs,
    /// Nodes that may announce; empty = all.
    pub node_selectors: SelectorSet,
    /// Interfaces to use; empty = all.
    pub interfaces: Vec<String>,
    /// Services it applies to; empty = all.
    pub service_selectors: SelectorSet,
    /// Soft placement preferences.
    pub preferred_nodes: Vec<PreferredNode>,
}

impl L2Adv {
    /// Whether it applies to the pool named `pool`.
    pub fn applies_to_pool(&self, pool: &str) -> bool {
        self.pools.contains(pool)
    }

    /// Whether a node with `labels` may announce.
    pub fn selects_node(&self, labels: &Labels) -> bool {
        self.node_selectors.matches(labels)
    }

    /// Whether it applies to a Service with `labels`.
    pub fn selects_service(&self, labels: &Labels) -> bool {
        self.service_selectors.matches(labels)
    }

    /// Sum of the weights of the preferences matching a node with `labels`.
    pub fn preference(&self, labels: &Labels) -> u32 {
        self.preferred_nodes
            .iter()
            .filter(|p| p.selector.matches(labels))
            .map(|p| p.weight)
            .sum()
    }

    /// This version with its pools re-resolved against `pools` (used when the previous
    /// version is kept).
    pub(super) fn restricted_to(&self, pools: &BTreeMap<String, Pool>) -> Self {
        L2Adv {
            pools: self.pool_refs.resolve(pools),
            ..self.clone()
        }
    }
}

/// Interface names as Linux accepts them: 1..15 bytes, no `/`, no whitespace.
pub(super) fn check_interface(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        return Err("interface name must be 1 to 15 characters");
    }
    if name == "." || name == ".." || name.contains('/') || name.contains(char::is_whitespace) {
        return Err("interface name must not contain '/' or whitespace");
    }
    Ok(())
}

pub(super) fn validate(
    obj: &L2Advertisement,
    pools: &BTreeMap<String, Pool>,
) -> Result<L2Adv, Vec<ConfigError>> {
    let me = ObjectRef::new(Kind::L2Advertisement, &obj.metadata);
    let s = &obj.spec;
    let mut errors = Vec::new();
    let pool_refs = pool_refs(
        &me,
        &s.ip_address_pools,
        &s.ip_address_pool_selectors,
        pools,
        &mut errors,
    );
    let node_selectors = parse_selectors(&me, "spec.nodeSelectors", &s.node_selectors, &mut errors);
    let service_selectors = parse_selectors(
        &me,
        "spec.serviceSelectors",
        &s.service_selectors,
        &mut errors,
    );
    unique_names(&me, "spec.interfaces", &s.interfaces, &mut errors);
    for (i, name) in s.interfaces.iter().enumerate() {
        if let Err(m) = check_interface(name) {
            errors.push(me.error(format!("spec.interfaces[{i}]"), Some(name), m));
        }
    }
    let mut preferred_nodes = Vec::new();
    for (i, p) in s.preferred_node_selectors.iter().enumerate() {
        let at = format!("spec.preferredNodeSelectors[{i}]");
        let weight = u32::try_from(p.weight)
            .ok()
            .filter(|w| (1..=100).contains(w));
        if weight.is_none() {
            errors.push(me.error(
                format!("{at}.weight"),
                Some(&p.weight.to_string()),
                "weight must be between 1 and 100",
            ));
        }
        match Selector::parse(&p.preference) {
            Ok(selector) => {
                if let Some(weight) = weight {
                    preferred_nodes.push(PreferredNode { weight, selector });
                }
            }
            Err(e) => errors.push(me.error(
                format!("{at}.preference.{}", e.field),
                Some(&e.value),
                e.message,
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(L2Adv {
        name: me.name.clone(),
        namespace: me.namespace.clone(),
        pools: pool_refs.resolve(pools),
        pool_refs,
        node_selectors,
        interfaces: s.interfaces.clone(),
        service_selectors,
        preferred_nodes,
    })
}
