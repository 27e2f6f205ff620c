//! The IP allocator: pure, deterministic, no I/O and no Kubernetes types.
//!
//! State is a function of two inputs only: the pools ([`Allocator::set_pools`]) and who holds
//! which address ([`Allocator::restore`] / [`Allocator::allocate`] / [`Allocator::release`]).
//! Free space is an [`IntervalSet`] per pool and family, so finding the lowest free address
//! is `O(log n)` in the number of holes, whatever the pool size.
//!
//! Rules:
//! - automatic allocation takes the lowest free address of the first eligible pool in
//!   priority order (`serviceAllocation.priority` ascending, unset last; then pools with a
//!   `serviceAllocation` before general ones; then by name);
//! - `autoAssign: false` pools serve only explicit requests (an address or a pool pin);
//! - `avoidBuggyIPs` pools never hand out IPv4 `.0`/`.255` automatically;
//! - an address a Service already holds is never moved by a pool edit or a restart; it moves
//!   only when the Service's own request changes (another requested IP, another pinned pool,
//!   a family dropped, or its sharing no longer fits).
//!
//! ```
//! use ferrolb_controller::allocator::*;
//!
//! let mut alloc = Allocator::new();
//! let prod = Pool::parse("prod", &["192.0.2.0/30", "2001:db8::/64"]).unwrap();
//! assert!(alloc.set_pools(vec![prod]).unwrap().is_empty());
//!
//! // Start-up: restore what Service status says, before allocating anything new.
//! let report = alloc.restore(vec![Assignment {
//!     service: ServiceKey::new("default", "web"),
//!     ips: vec!["192.0.2.0".parse().unwrap()],
//!     sharing: None,
//!     pool: None,
//! }]);
//! assert!(report.conflicts.is_empty() && report.outside.is_empty());
//!
//! let req = Request::new(ServiceKey::new("team-a", "api"))
//!     .families(FamilyPolicy::RequireDualStack, &[Family::V4, Family::V6]);
//! let got = alloc.allocate(&req).unwrap();
//! assert_eq!(got.ips, ["192.0.2.1".parse::<std::net::IpAddr>().unwrap(), "2001:db8::".parse().unwrap()]);
//! assert_eq!(got.pool.as_deref(), Some("prod"));
//!
//! let taken = Request::new(ServiceKey::new("team-a", "other")).ips(&["192.0.2.0".parse().unwrap()]);
//! let err = alloc.allocate(&taken).unwrap_err();
//! assert_eq!(err.to_string(), "requested 192.0.2.0 is held by default/web");
//! assert_eq!(err.reason(), "IPInUse");
//!
//! // Shrinking the pool keeps every assignment and reports those now outside it.
//! let outside = alloc.set_pools(vec![Pool::parse("prod", &["2001:db8::/64"]).unwrap()]).unwrap();
//! assert_eq!(outside.len(), 2);
//! let usage = alloc.pool_usage("prod").unwrap();
//! assert_eq!((usage.assigned_v4, usage.assigned_v6), (0, 1));
//! ```

mod interval;
mod types;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

pub use crate::error::{AllocError, FamilyGap, Ineligible, SharingConflict};
pub use interval::IntervalSet;
pub use types::{
    Allocation, Assignment, Family, FamilyPolicy, Labels, MatchLabels, OutsidePool, Pool,
    PoolUsage, Port, Protocol, Request, Selector, ServiceAllocation, ServiceKey, Sharing,
};
use types::{from_u128, to_u128};

/// One pool and its free space.
#[derive(Clone, Debug)]
struct PoolState {
    cfg: Pool,
    /// Configured addresses per family.
    ranges: [IntervalSet; 2],
    /// Addresses automatic allocation may hand out: ranges minus held addresses, minus
    /// `.0`/`.255` with `avoidBuggyIPs`.
    free: [IntervalSet; 2],
    /// Held addresses per family.
    assigned: [u64; 2],
}

impl PoolState {
    fn allocatable(&self, ip: IpAddr) -> bool {
        !(self.cfg.avoid_buggy_ips && is_buggy(ip))
    }
}

/// Allocation order: `priority` ascending with unset last, then pools with a
/// `serviceAllocation` (specific) before general ones, then by name.
fn pool_order(p: &Pool) -> (bool, Option<i32>, bool, &str) {
    (
        p.priority().is_none(),
        p.priority(),
        p.service_allocation.is_none(),
        &p.name,
    )
}

fn is_buggy(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => matches!(a.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

/// One held address.
#[derive(Clone, Debug)]
struct IpState {
    /// Index of the pool containing it; `None` when outside every pool.
    pool: Option<usize>,
    /// Services holding it (more than one only for a legal share).
    holders: BTreeSet<ServiceKey>,
}

/// One Service with addresses.
#[derive(Clone, Debug)]
struct ServiceState {
    ips: Vec<IpAddr>,
    sharing: Option<Sharing>,
    /// The pool pin the addresses were allocated under.
    pin: Option<String>,
}

/// Outcome of [`Allocator::restore`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Restored addresses that are in no pool (kept, to be reported as `IPOutsidePool`).
    pub outside: Vec<OutsidePool>,
    /// Assignments that could not be restored because another Service (earlier in
    /// `ServiceKey` order) already holds the address and cannot share it. The reconciler
    /// re-allocates these Services and reports the error.
    pub conflicts: Vec<(ServiceKey, AllocError)>,
}

/// The allocator. See the module documentation for the rules.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    /// Pools in allocation order.
    pools: Vec<PoolState>,
    by_name: HashMap<String, usize>,
    /// Per family: range start -> (range end, pool index).
    index: [BTreeMap<u128, (u128, usize)>; 2],
    ips: HashMap<IpAddr, IpState>,
    services: HashMap<ServiceKey, ServiceState>,
    /// Sharing key -> addresses held under it.
    shared: HashMap<String, BTreeSet<IpAddr>>,
}

impl Allocator {
    /// An allocator with no pools and no assignments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the pool configuration. Assignments are kept, whatever the new pools say;
    /// the returned list names every held address that is now outside every pool (sorted).
    ///
    /// Fails, changing nothing, when a range is malformed, two pools share a name or two
    /// ranges overlap.
    pub fn set_pools(&mut self, pools: Vec<Pool>) -> Result<Vec<OutsidePool>, AllocError> {
        let mut pools = pools;
        pools.sort_by(|a, b| pool_order(a).cmp(&pool_order(b)));
        let mut by_name = HashMap::new();
        let mut index: [BTreeMap<u128, (u128, usize)>; 2] = Default::default();
        let mut states = Vec::with_capacity(pools.len());
        for (i, cfg) in pools.into_iter().enumerate() {
            if by_name.insert(cfg.name.clone(), i).is_some() {
                return Err(AllocError::DuplicatePool { pool: cfg.name });
            }
            let mut ranges: [IntervalSet; 2] = Default::default();
            for &(start, end) in &cfg.ranges {
                let family = Family::of(start);
                let problem = if family != Family::of(end) {
                    Some("mixes IPv4 and IPv6")
                } else if to_u128(start) > to_u128(end) {
                    Some("starts after it ends")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(AllocError::InvalidRange {
                        pool: cfg.name,
                        start,
                        end,
                        problem,
                    });
                }
                let (s, e) = (to_u128(start), to_u128(end));
                let idx = &mut index[family.index()];
                let clash = idx
                    .range(..=e)
                    .next_back()
                    .filter(|(_, (other_end, _))| *other_end >= s)
                    .map(|(&other_start, &(_, other))| (other_start.max(s), other));
                if let Some((at, other)) = clash {
                    let a = if other == i {
                        cfg.name.clone()
                    } else {
                        states
                            .get(other)
                            .map_or_else(|| cfg.name.clone(), |p: &PoolState| p.cfg.name.clone())
                    };
                    return Err(AllocError::PoolOverlap {
                        a,
                        b: cfg.name,
                        ip: from_u128(family, at),
                    });
                }
                idx.insert(s, (e, i));
                ranges[family.index()].insert(s, e);
            }
            let mut free = ranges.clone();
            if cfg.avoid_buggy_ips {
                let v4 = &mut free[Family::V4.index()];
                let blocks: Vec<(u128, u128)> = ranges[Family::V4.index()]
                    .iter()
                    .map(|r| (*r.start() >> 8, *r.end() >> 8))
                    .collect();
                for (first, last) in blocks {
                    for block in first..=last {
                        v4.remove_one(block << 8);
                        v4.remove_one((block << 8) | 0xff);
                    }
                }
            }
            states.push(PoolState {
                cfg,
                ranges,
                free,
                assigned: [0; 2],
            });
        }
        self.pools = states;
        self.by_name = by_name;
        self.index = index;
        let held: Vec<IpAddr> = self.ips.keys().copied().collect();
        for ip in held {
            let pool = self.lookup(ip);
            if let Some(p) = pool {
                let state = &mut self.pools[p];
                state.assigned[Family::of(ip).index()] += 1;
                state.free[Family::of(ip).index()].remove_one(to_u128(ip));
            }
            if let Some(st) = self.ips.get_mut(&ip) {
                st.pool = pool;
            }
        }
        Ok(self.outside_pools())
    }

    /// Restores assignments read from Service status at start-up, before any
    /// [`allocate`](Self::allocate). Addresses are taken as they are: outside every pool, in
    /// an `autoAssign: false` pool or a pool that no longer serves the namespace, they are
    /// still kept. Input order does not matter (it is sorted by Service); a Service already
    /// known is replaced.
    pub fn restore(&mut self, assignments: impl IntoIterator<Item = Assignment>) -> RestoreReport {
        let mut list: Vec<Assignment> = assignments.into_iter().collect();
        list.sort_by(|a, b| a.service.cmp(&b.service));
        let mut report = RestoreReport::default();
        for a in list {
            self.remove_service(&a.service);
            if a.ips.is_empty() {
                continue;
            }
            if let Err(e) = self.check_restorable(&a) {
                report.conflicts.push((a.service, e));
                continue;
            }
            self.add_service(&a.service, a.ips, a.sharing, a.pool);
        }
        report.outside = self.outside_pools();
        report
    }

    fn check_restorable(&self, a: &Assignment) -> Result<(), AllocError> {
        if let [x, y] = a.ips.as_slice()
            && Family::of(*x) == Family::of(*y)
        {
            return Err(AllocError::InvalidRequest(format!(
                "{x} and {y} are both {}",
                Family::of(*x)
            )));
        }
        if a.ips.len() > 2 {
            return Err(AllocError::InvalidRequest(format!(
                "{} addresses, at most one per family",
                a.ips.len()
            )));
        }
        for &ip in &a.ips {
            self.check_share(ip, &a.service, a.sharing.as_ref())?;
        }
        Ok(())
    }

    /// Allocates addresses for a Service, or confirms the ones it has. Idempotent: calling it
    /// again with the same request returns the same addresses with `changed: false`.
    ///
    /// On error nothing changes: a Service that already had addresses keeps them.
    pub fn allocate(&mut self, req: &Request) -> Result<Allocation, AllocError> {
        let ips = self.plan(req)?;
        let pool = ips
            .first()
            .and_then(|ip| self.lookup(*ip))
            .map(|p| self.pools[p].cfg.name.clone());
        if let Some(st) = self.services.get(&req.service)
            && st.ips == ips
            && st.sharing == req.sharing
            && st.pin == req.pool
        {
            return Ok(Allocation {
                ips,
                pool,
                changed: false,
            });
        }
        let old: BTreeSet<IpAddr> = self
            .services
            .get(&req.service)
            .map(|s| s.ips.iter().copied().collect())
            .unwrap_or_default();
        let changed = old != ips.iter().copied().collect::<BTreeSet<_>>();
        self.remove_service(&req.service);
        self.add_service(
            &req.service,
            ips.clone(),
            req.sharing.clone(),
            req.pool.clone(),
        );
        Ok(Allocation { ips, pool, changed })
    }

    /// Releases a Service's addresses. Returns those that no other Service still holds.
    pub fn release(&mut self, service: &ServiceKey) -> Vec<IpAddr> {
        self.remove_service(service)
    }

    /// The addresses a Service holds, primary family first.
    pub fn assigned(&self, service: &ServiceKey) -> Option<&[IpAddr]> {
        self.services.get(service).map(|s| s.ips.as_slice())
    }

    /// Every assignment, sorted by Service (what a restart must reproduce).
    pub fn assignments(&self) -> Vec<Assignment> {
        let mut out: Vec<Assignment> = self
            .services
            .iter()
            .map(|(k, s)| Assignment {
                service: k.clone(),
                ips: s.ips.clone(),
                sharing: s.sharing.clone(),
                pool: s.pin.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.service.cmp(&b.service));
        out
    }

    /// Services holding an address, sorted.
    pub fn holders(&self, ip: IpAddr) -> Vec<ServiceKey> {
        self.ips
            .get(&ip)
            .map(|s| s.holders.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The pool containing an address.
    pub fn pool_of(&self, ip: IpAddr) -> Option<&str> {
        self.lookup(ip).map(|p| self.pools[p].cfg.name.as_str())
    }

    /// Every held address that is in no pool, sorted.
    pub fn outside_pools(&self) -> Vec<OutsidePool> {
        let mut out: Vec<OutsidePool> = self
            .ips
            .iter()
            .filter(|(_, st)| st.pool.is_none())
            .flat_map(|(&ip, st)| {
                st.holders.iter().map(move |s| OutsidePool {
                    service: s.clone(),
                    ip,
                })
            })
            .collect();
        out.sort();
        out
    }

    /// Usage of every pool, sorted by pool name.
    pub fn usage(&self) -> Vec<PoolUsage> {
        let mut out: Vec<PoolUsage> = self.pools.iter().map(usage_of).collect();
        out.sort_by(|a, b| a.pool.cmp(&b.pool));
        out
    }

    /// Usage of one pool.
    pub fn pool_usage(&self, pool: &str) -> Option<PoolUsage> {
        self.by_name.get(pool).map(|&p| usage_of(&self.pools[p]))
    }

    // ----- internals -----

    fn lookup(&self, ip: IpAddr) -> Option<usize> {
        let x = to_u128(ip);
        self.index[Family::of(ip).index()]
            .range(..=x)
            .next_back()
            .filter(|(_, (end, _))| *end >= x)
            .map(|(_, &(_, p))| p)
    }

    fn remove_service(&mut self, service: &ServiceKey) -> Vec<IpAddr> {
        let Some(st) = self.services.remove(service) else {
            return Vec::new();
        };
        let mut freed = Vec::new();
        for ip in st.ips {
            let Some(ip_state) = self.ips.get_mut(&ip) else {
                continue;
            };
            ip_state.holders.remove(service);
            if !ip_state.holders.is_empty() {
                continue;
            }
            let pool = ip_state.pool;
            self.ips.remove(&ip);
            freed.push(ip);
            if let Some(p) = pool {
                let ps = &mut self.pools[p];
                ps.assigned[Family::of(ip).index()] -= 1;
                if ps.allocatable(ip) {
                    ps.free[Family::of(ip).index()].insert_one(to_u128(ip));
                }
            }
            if let Some(sh) = &st.sharing
                && let Some(set) = self.shared.get_mut(&sh.key)
            {
                set.remove(&ip);
                if set.is_empty() {
                    self.shared.remove(&sh.key);
                }
            }
        }
        freed
    }

    fn add_service(
        &mut self,
        service: &ServiceKey,
        ips: Vec<IpAddr>,
        sharing: Option<Sharing>,
        pin: Option<String>,
    ) {
        for &ip in &ips {
            if !self.ips.contains_key(&ip) {
                let pool = self.lookup(ip);
                if let Some(p) = pool {
                    let ps = &mut self.pools[p];
                    ps.assigned[Family::of(ip).index()] += 1;
                    ps.free[Family::of(ip).index()].remove_one(to_u128(ip));
                }
                self.ips.insert(
                    ip,
                    IpState {
                        pool,
                        holders: BTreeSet::new(),
                    },
                );
            }
            if let Some(st) = self.ips.get_mut(&ip) {
                st.holders.insert(service.clone());
            }
            if let Some(sh) = &sharing {
                self.shared.entry(sh.key.clone()).or_default().insert(ip);
            }
        }
        self.services
            .insert(service.clone(), ServiceState { ips, sharing, pin });
    }

    /// Can `service` (with `sharing`) hold `ip` next to its current holders?
    fn check_share(
        &self,
        ip: IpAddr,
        service: &ServiceKey,
        sharing: Option<&Sharing>,
    ) -> Result<(), AllocError> {
        let Some(st) = self.ips.get(&ip) else {
            return Ok(());
        };
        for holder in st.holders.iter().filter(|h| *h != service) {
            let theirs = self.services.get(holder).and_then(|s| s.sharing.as_ref());
            let (Some(mine), Some(theirs)) = (sharing, theirs) else {
                return Err(AllocError::IpInUse {
                    ip,
                    holder: holder.clone(),
                });
            };
            if mine.key != theirs.key {
                return Err(AllocError::IpInUse {
                    ip,
                    holder: holder.clone(),
                });
            }
            if mine.local_selector != theirs.local_selector {
                return Err(AllocError::SharingConflict {
                    key: mine.key.clone(),
                    conflict: SharingConflict::Backend {
                        holder: holder.clone(),
                    },
                });
            }
            if let Some(port) = mine.ports.intersection(&theirs.ports).next() {
                return Err(AllocError::SharingConflict {
                    key: mine.key.clone(),
                    conflict: SharingConflict::Port {
                        port: *port,
                        holder: holder.clone(),
                    },
                });
            }
        }
        Ok(())
    }

    /// Does pool `p` serve this Service (namespace and label selection)?
    fn serves(&self, p: usize, req: &Request) -> Result<(), Ineligible> {
        let Some(sa) = &self.pools[p].cfg.service_allocation else {
            return Ok(());
        };
        let ns = &req.service.namespace;
        let any_ns = sa.namespaces.is_empty() && sa.namespace_selectors.is_empty();
        if !any_ns
            && !sa.namespaces.contains(ns)
            && !sa
                .namespace_selectors
                .iter()
                .any(|s| s.matches(&req.namespace_labels))
        {
            return Err(Ineligible::Namespace(ns.clone()));
        }
        if !sa.service_selectors.is_empty()
            && !sa.service_selectors.iter().any(|s| s.matches(&req.labels))
        {
            return Err(Ineligible::ServiceSelectors(req.service.clone()));
        }
        Ok(())
    }

    /// Computes the Service's addresses without changing anything.
    fn plan(&self, req: &Request) -> Result<Vec<IpAddr>, AllocError> {
        let me = &req.service;
        let sharing = req.sharing.as_ref();
        if sharing.is_some_and(|s| s.key.is_empty()) {
            return Err(AllocError::InvalidRequest(
                "the sharing key is empty".to_owned(),
            ));
        }
        let primary = req.families.first().copied().unwrap_or(Family::V4);
        if req.families.len() > 2 || (req.families.len() == 2 && req.families[1] == primary) {
            return Err(AllocError::InvalidRequest(format!(
                "ipFamilies {:?} must list each family at most once",
                req.families
            )));
        }
        let mut requested: [Option<IpAddr>; 2] = [None; 2];
        for &ip in &req.ips {
            if let Some(prev) = requested[Family::of(ip).index()].replace(ip) {
                return Err(AllocError::InvalidRequest(format!(
                    "requested addresses {prev} and {ip} are both {}",
                    Family::of(ip)
                )));
            }
        }
        let wanted: Vec<Family> = if req.ips.is_empty() {
            match req.policy {
                FamilyPolicy::SingleStack => vec![primary],
                _ => vec![primary, primary.other()],
            }
        } else {
            match (req.policy, req.ips.len()) {
                (FamilyPolicy::SingleStack, n) if n > 1 => {
                    return Err(AllocError::InvalidRequest(
                        "a SingleStack Service requests two addresses".to_owned(),
                    ));
                }
                (FamilyPolicy::RequireDualStack, 1) => {
                    return Err(AllocError::FamilyUnavailable {
                        policy: req.policy,
                        detail: FamilyGap::RequestedSingleFamily,
                    });
                }
                _ => [primary, primary.other()]
                    .into_iter()
                    .filter(|f| requested[f.index()].is_some())
                    .collect(),
            }
        };
        // Keep what the Service has, unless its own request now rules it out.
        // A pin kept from before never moves an address (a pool edit may have moved its range
        // to another pool); a new pin moves it unless it is already in that pool.
        let state = self.services.get(me);
        let current: &[IpAddr] = state.map_or(&[], |s| s.ips.as_slice());
        let same_pin = state.is_some_and(|s| s.pin == req.pool);
        let pin_ok = |ip: IpAddr| match &req.pool {
            None => true,
            Some(name) => {
                same_pin
                    || self
                        .lookup(ip)
                        .is_none_or(|q| self.pools[q].cfg.name == *name)
            }
        };
        let mut out: Vec<Option<IpAddr>> = wanted
            .iter()
            .map(|&f| {
                current.iter().copied().find(|&ip| {
                    Family::of(ip) == f
                        && requested[f.index()].is_none_or(|r| r == ip)
                        && pin_ok(ip)
                        && self.check_share(ip, me, sharing).is_ok()
                })
            })
            .collect();

        if out.iter().all(Option::is_some) {
            return Ok(out.into_iter().flatten().collect());
        }
        let pin = self.resolve_pin(req)?;
        if !req.ips.is_empty() {
            return self.plan_requested(req, &wanted, &requested, pin, out);
        }
        let missing: Vec<Family> = wanted
            .iter()
            .zip(&out)
            .filter(|(_, ip)| ip.is_none())
            .map(|(f, _)| *f)
            .collect();
        let kept_any = out.iter().any(Option::is_some);
        match self.fill_missing(req, pin, &wanted, &missing, &mut out) {
            Ok(()) => Ok(out.into_iter().flatten().collect()),
            // PreferDualStack keeps its one family when the other cannot be added.
            Err(_) if kept_any && req.policy == FamilyPolicy::PreferDualStack => {
                Ok(out.into_iter().flatten().collect())
            }
            Err(e) => Err(e),
        }
    }

    /// The pinned pool, which must exist and serve the Service.
    fn resolve_pin(&self, req: &Request) -> Result<Option<usize>, AllocError> {
        let Some(name) = &req.pool else {
            return Ok(None);
        };
        let p = *self
            .by_name
            .get(name)
            .ok_or_else(|| AllocError::UnknownPool { pool: name.clone() })?;
        self.serves(p, req)
            .map_err(|cause| AllocError::PoolNotEligible {
                pool: name.clone(),
                cause,
            })?;
        Ok(Some(p))
    }

    /// Automatic allocation of the families in `missing` into `out`.
    fn fill_missing(
        &self,
        req: &Request,
        pin: Option<usize>,
        wanted: &[Family],
        missing: &[Family],
        out: &mut [Option<IpAddr>],
    ) -> Result<(), AllocError> {
        let mut candidates: Vec<usize> = match pin {
            Some(p) => vec![p],
            None => self.auto_candidates(req)?,
        };
        // One pool serves both families: a missing family comes from the kept one's pool.
        if let Some(kept_pool) = out.iter().flatten().find_map(|&ip| self.lookup(ip)) {
            candidates.retain(|&p| p == kept_pool);
            if candidates.is_empty() {
                return Err(AllocError::FamilyUnavailable {
                    policy: req.policy,
                    detail: FamilyGap::NoDualStackPool,
                });
            }
        }
        // Pools where the sharing key already has addresses come first.
        if let Some(sh) = &req.sharing
            && let Some(group) = self.shared.get(&sh.key)
        {
            let group_pools: BTreeSet<usize> = group
                .iter()
                .filter(|ip| missing.contains(&Family::of(**ip)))
                .filter_map(|ip| self.lookup(*ip))
                .collect();
            candidates.sort_by_key(|p| !group_pools.contains(p));
        }

        if let [f] = missing[..] {
            let ip = self.pick_single(req, &candidates, f)?;
            let slot = wanted.iter().position(|&w| w == f).unwrap_or(0);
            out[slot] = Some(ip);
            return Ok(());
        }

        // Both families are missing (Prefer/RequireDualStack, nothing kept).
        let (f1, f2) = (wanted[0], wanted[1]);
        let mut exhausted: Option<(Family, Vec<String>)> = None;
        for &p in &candidates {
            let ps = &self.pools[p];
            if ps.ranges[f1.index()].is_empty() || ps.ranges[f2.index()].is_empty() {
                continue;
            }
            let a = self.pick(req, p, f1)?;
            let b = self.pick(req, p, f2)?;
            match (a, b) {
                (Some(a), Some(b)) => {
                    out[0] = Some(a);
                    out[1] = Some(b);
                    return Ok(());
                }
                (a, _) => {
                    let family = if a.is_none() { f1 } else { f2 };
                    let entry = exhausted.get_or_insert_with(|| (family, Vec::new()));
                    if entry.0 == family {
                        entry.1.push(ps.cfg.name.clone());
                    }
                }
            }
        }
        if req.policy == FamilyPolicy::RequireDualStack {
            return Err(match exhausted {
                Some((family, pools)) => AllocError::PoolExhausted { pools, family },
                None => AllocError::FamilyUnavailable {
                    policy: req.policy,
                    detail: FamilyGap::NoDualStackPool,
                },
            });
        }
        // PreferDualStack: one family, primary first.
        let (slot, result) = match self.pick_single(req, &candidates, f1) {
            Ok(ip) => (0, Ok(ip)),
            Err(first) => match self.pick_single(req, &candidates, f2) {
                Ok(ip) => (1, Ok(ip)),
                Err(second) => (
                    0,
                    Err(if matches!(first, AllocError::FamilyUnavailable { .. }) {
                        second
                    } else {
                        first
                    }),
                ),
            },
        };
        out[slot] = Some(result?);
        Ok(())
    }

    /// Requested addresses: each must be in a pool that serves the Service (the pinned one,
    /// if any), all in one pool, and free or shareable.
    fn plan_requested(
        &self,
        req: &Request,
        wanted: &[Family],
        requested: &[Option<IpAddr>; 2],
        pin: Option<usize>,
        mut out: Vec<Option<IpAddr>>,
    ) -> Result<Vec<IpAddr>, AllocError> {
        let mut first_pool: Option<(IpAddr, usize)> = None;
        for (slot, f) in wanted.iter().enumerate() {
            let Some(ip) = requested[f.index()] else {
                continue;
            };
            if out[slot] == Some(ip) {
                // Already held: kept even if a pool edit moved it out of its pool.
                if let Some(p) = self.lookup(ip) {
                    first_pool.get_or_insert((ip, p));
                }
                continue;
            }
            let p = self.lookup(ip).ok_or(AllocError::NotInPool { ip })?;
            if let Some(pin) = pin
                && pin != p
            {
                return Err(AllocError::NotInRequestedPool {
                    ip,
                    pool: self.pools[pin].cfg.name.clone(),
                });
            }
            self.serves(p, req)
                .map_err(|cause| AllocError::PoolNotEligible {
                    pool: self.pools[p].cfg.name.clone(),
                    cause,
                })?;
            self.check_share(ip, &req.service, req.sharing.as_ref())?;
            out[slot] = Some(ip);
            match first_pool {
                Some((a, q)) if q != p => {
                    return Err(AllocError::SplitPools {
                        a,
                        pool_a: self.pools[q].cfg.name.clone(),
                        b: ip,
                        pool_b: self.pools[p].cfg.name.clone(),
                    });
                }
                _ => {
                    first_pool.get_or_insert((ip, p));
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Pools automatic allocation may use for this Service, in priority order.
    fn auto_candidates(&self, req: &Request) -> Result<Vec<usize>, AllocError> {
        if self.pools.is_empty() {
            return Err(AllocError::NoEligiblePool {
                cause: Ineligible::NoPools,
            });
        }
        let mut causes = Vec::new();
        let candidates: Vec<usize> = (0..self.pools.len())
            .filter(|&p| self.pools[p].cfg.auto_assign)
            .filter(|&p| match self.serves(p, req) {
                Ok(()) => true,
                Err(cause) => {
                    causes.push(cause);
                    false
                }
            })
            .collect();
        if !candidates.is_empty() {
            return Ok(candidates);
        }
        // Name the most specific cause: a pool served the namespace but not the labels.
        let cause = if causes.is_empty() {
            Ineligible::NoAutoAssign
        } else {
            causes
                .iter()
                .find(|c| matches!(c, Ineligible::ServiceSelectors(_)))
                .unwrap_or(&causes[0])
                .clone()
        };
        Err(AllocError::NoEligiblePool { cause })
    }

    /// One address of family `f` from the first candidate pool that has one.
    fn pick_single(
        &self,
        req: &Request,
        candidates: &[usize],
        f: Family,
    ) -> Result<IpAddr, AllocError> {
        let mut tried = Vec::new();
        for &p in candidates {
            if self.pools[p].ranges[f.index()].is_empty() {
                continue;
            }
            if let Some(ip) = self.pick(req, p, f)? {
                return Ok(ip);
            }
            tried.push(self.pools[p].cfg.name.clone());
        }
        if tried.is_empty() {
            Err(AllocError::FamilyUnavailable {
                policy: req.policy,
                detail: FamilyGap::NoPoolForFamily(f),
            })
        } else {
            Err(AllocError::PoolExhausted {
                pools: tried,
                family: f,
            })
        }
    }

    /// The address pool `p` gives this Service for family `f`: an address its sharing key
    /// already uses in the pool (if compatible; a clash is an error, not a reason to take a
    /// fresh address), else the pool's lowest free address, else `None`.
    fn pick(&self, req: &Request, p: usize, f: Family) -> Result<Option<IpAddr>, AllocError> {
        if let Some(sh) = &req.sharing
            && let Some(group) = self.shared.get(&sh.key)
        {
            let mut conflict = None;
            for &ip in group
                .iter()
                .filter(|ip| Family::of(**ip) == f && self.lookup(**ip) == Some(p))
            {
                match self.check_share(ip, &req.service, Some(sh)) {
                    Ok(()) => return Ok(Some(ip)),
                    Err(e) => {
                        conflict.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = conflict {
                return Err(e);
            }
        }
        Ok(self.pools[p].free[f.index()]
            .first()
            .map(|x| from_u128(f, x)))
    }
}

fn usage_of(ps: &PoolState) -> PoolUsage {
    let avail = |f: Family| u64::try_from(ps.free[f.index()].len()).unwrap_or(u64::MAX);
    PoolUsage {
        pool: ps.cfg.name.clone(),
        assigned_v4: ps.assigned[0],
        assigned_v6: ps.assigned[1],
        available_v4: avail(Family::V4),
        available_v6: avail(Family::V6),
        total_v4: ps.ranges[0].len(),
        total_v6: ps.ranges[1].len(),
    }
}
