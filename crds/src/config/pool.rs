//! `IPAddressPool` -> [`Pool`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::error::{ConfigError, Kind, ObjectRef};
use super::selector::SelectorSet;
use super::{Labels, parse_selectors};
use crate::v1alpha1::{IPAddressPool, ServiceAllocation};
use crate::value::{Family, IpRange, find_overlaps, parse_range};

/// A validated address pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Object name (pools are referred to by name).
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// Object labels (matched by `ipAddressPoolSelectors`).
    pub labels: Labels,
    /// One range per `spec.addresses` entry, same order and index.
    pub ranges: Vec<IpRange>,
    /// The `spec.addresses` entries as written (for messages).
    pub addresses: Vec<String>,
    /// `spec.autoAssign`, default true.
    pub auto_assign: bool,
    /// `spec.avoidBuggyIPs`, default false: skip IPv4 `.0` and `.255`.
    pub avoid_buggy_ips: bool,
    /// `spec.serviceAllocation`, if set.
    pub allocation: Option<Allocation>,
}

/// Which Services may use a pool (validated `serviceAllocation`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Lower first; `None` (unset or 0, as in MetalLB) sorts after every set priority.
    pub priority: Option<u32>,
    /// Whether `namespaces`/`namespaceSelectors` restrict the pool.
    pub namespace_restricted: bool,
    /// Namespaces allowed: `namespaces` plus those matched by `namespaceSelectors` (resolved
    /// against the Namespace objects when the config was built).
    pub namespaces: BTreeSet<String>,
    /// `namespaceSelectors`, kept for consumers that see namespaces the config did not.
    pub namespace_selectors: SelectorSet,
    /// `serviceSelectors`: empty, or any one must match the Service's labels.
    pub service_selectors: SelectorSet,
}

impl Allocation {
    /// Whether a Service in `namespace` with `service_labels` may use the pool.
    pub fn allows(&self, namespace: &str, service_labels: &Labels) -> bool {
        (!self.namespace_restricted || self.namespaces.contains(namespace))
            && self.service_selectors.matches(service_labels)
    }
}

impl Pool {
    /// Ranges of one family, in declaration order.
    pub fn ranges_of(&self, family: Family) -> impl Iterator<Item = &IpRange> + '_ {
        self.ranges.iter().filter(move |r| r.family() == family)
    }

    /// Inclusive `(start, end)` intervals of one family, sorted by start.
    pub fn intervals(&self, family: Family) -> Vec<(u128, u128)> {
        let mut v: Vec<(u128, u128)> = self.ranges_of(family).map(IpRange::interval).collect();
        v.sort_unstable();
        v
    }

    /// Whether the pool has addresses of `family`.
    pub fn has_family(&self, family: Family) -> bool {
        self.ranges_of(family).next().is_some()
    }

    /// Whether `ip` is one of the pool's addresses (ignoring `avoidBuggyIPs`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// Number of addresses of `family` (saturating).
    pub fn size(&self, family: Family) -> u128 {
        self.ranges_of(family)
            .fold(0u128, |acc, r| acc.saturating_add(r.len()))
    }

    /// Whether a Service in `namespace` with `service_labels` may use the pool by default
    /// (no `serviceAllocation` = everyone).
    pub fn allows(&self, namespace: &str, service_labels: &Labels) -> bool {
        self.allocation
            .as_ref()
            .is_none_or(|a| a.allows(namespace, service_labels))
    }
}

/// Validates one pool on its own (syntax, overlap within the pool, selectors).
pub(super) fn validate(
    obj: &IPAddressPool,
    namespaces: &BTreeMap<String, Labels>,
) -> Result<Pool, Vec<ConfigError>> {
    let me = ObjectRef::new(Kind::IPAddressPool, &obj.metadata);
    let mut errors = Vec::new();
    let spec = &obj.spec;
    if spec.addresses.is_empty() {
        errors.push(me.error("spec.addresses", None, "at least one address is required"));
    }
    let mut ranges = Vec::with_capacity(spec.addresses.len());
    for (i, text) in spec.addresses.iter().enumerate() {
        match parse_range(text) {
            Ok(r) => ranges.push((i, r)),
            Err(m) => errors.push(me.error(format!("spec.addresses[{i}]"), Some(text), m)),
        }
    }
    // Overlap within the pool.
    for o in find_overlaps(ranges.iter().copied()) {
        let (first, second) = (o.earlier.min(o.later), o.earlier.max(o.later));
        errors.push(me.error(
            format!("spec.addresses[{second}]"),
            Some(&spec.addresses[second]),
            format!(
                "overlaps spec.addresses[{first}] {:?} of the same pool",
                spec.addresses[first]
            ),
        ));
    }
    let allocation = spec
        .service_allocation
        .as_ref()
        .map(|sa| allocation(&me, sa, namespaces, &mut errors));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Pool {
        name: me.name.clone(),
        namespace: me.namespace.clone(),
        labels: obj.metadata.labels.clone().unwrap_or_default(),
        ranges: ranges.into_iter().map(|(_, r)| r).collect(),
        addresses: spec.addresses.clone(),
        auto_assign: spec.auto_assign.unwrap_or(true),
        avoid_buggy_ips: spec.avoid_buggy_ips.unwrap_or(false),
        allocation,
    })
}

/// `spec.serviceAllocation`: its namespaces (named or selected now), priority and selectors.
fn allocation(
    me: &ObjectRef,
    sa: &ServiceAllocation,
    namespaces: &BTreeMap<String, Labels>,
    errors: &mut Vec<ConfigError>,
) -> Allocation {
    let mut seen = BTreeSet::new();
    for (i, ns) in sa.namespaces.iter().enumerate() {
        if !seen.insert(ns.as_str()) {
            errors.push(me.error(
                format!("spec.serviceAllocation.namespaces[{i}]"),
                Some(ns),
                "duplicate namespace",
            ));
        }
    }
    if sa.priority.is_some_and(|p| p < 0) {
        errors.push(me.error(
            "spec.serviceAllocation.priority",
            Some(&sa.priority.unwrap_or_default().to_string()),
            "priority must not be negative",
        ));
    }
    let namespace_selectors = parse_selectors(
        me,
        "spec.serviceAllocation.namespaceSelectors",
        &sa.namespace_selectors,
        errors,
    );
    let service_selectors = parse_selectors(
        me,
        "spec.serviceAllocation.serviceSelectors",
        &sa.service_selectors,
        errors,
    );
    let mut allowed: BTreeSet<String> = sa.namespaces.iter().cloned().collect();
    if !namespace_selectors.is_empty() {
        allowed.extend(
            namespaces
                .iter()
                .filter(|(_, labels)| namespace_selectors.matches(labels))
                .map(|(n, _)| n.clone()),
        );
    }
    Allocation {
        priority: sa
            .priority
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p != 0),
        namespace_restricted: !sa.namespaces.is_empty() || !sa.namespace_selectors.is_empty(),
        namespaces: allowed,
        namespace_selectors,
        service_selectors,
    }
}

/// Which pool a range in [`overlap_error`]'s sweep belongs to.
#[derive(Clone, Copy)]
enum Owner<'a> {
    /// `spec.addresses[i]` of the pool being placed.
    Mine(usize),
    /// A range of an accepted pool.
    Other(&'a Pool, IpRange),
}

/// If `pool` overlaps any pool in `accepted`, the error naming the clash of its lowest
/// `spec.addresses` index.
pub(super) fn overlap_error(pool: &Pool, accepted: &BTreeMap<String, Pool>) -> Option<ConfigError> {
    let mine = pool
        .ranges
        .iter()
        .enumerate()
        .map(|(i, r)| (Owner::Mine(i), *r));
    let theirs = accepted
        .values()
        .filter(|other| other.name != pool.name)
        .flat_map(|other| {
            other
                .ranges
                .iter()
                .map(move |r| (Owner::Other(other, *r), *r))
        });
    let (i, other, o) = find_overlaps(mine.chain(theirs))
        .into_iter()
        .filter_map(|found| match (found.earlier, found.later) {
            (Owner::Mine(i), Owner::Other(p, r)) | (Owner::Other(p, r), Owner::Mine(i)) => {
                Some((i, p, r))
            }
            _ => None,
        })
        .min_by_key(|(i, ..)| *i)?;
    let me = ObjectRef {
        kind: Kind::IPAddressPool,
        namespace: pool.namespace.clone(),
        name: pool.name.clone(),
    };
    let them = ObjectRef {
        kind: Kind::IPAddressPool,
        namespace: other.namespace.clone(),
        name: other.name.clone(),
    };
    let shown = pool
        .addresses
        .get(i)
        .cloned()
        .unwrap_or_else(|| pool.ranges[i].to_string());
    Some(me.error(
        format!("spec.addresses[{i}]"),
        Some(&shown),
        format!("overlaps {o} of {them}"),
    ))
}
