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
mod plan;
mod types;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

pub use crate::error::{AllocError, FamilyGap, Ineligible, SharingConflict};
use ferrolb_crds::config::{find_overlaps, ip_to_u128};
pub use interval::IntervalSet;
pub use types::{
    Allocation, Assignment, Family, FamilyPolicy, IpRange, Labels, MatchLabels, OutsidePool, Pool,
    PoolUsage, Port, Protocol, Request, Selector, ServiceAllocation, ServiceKey, Sharing,
};

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
    holders: Holders,
}

/// The Services holding one address, sorted. Almost always exactly one, so a sorted `Vec`
/// sized to fit (one 48-byte allocation) rather than a `BTreeSet`, whose first node takes
/// ~0.5 KiB for a single key (heaptrack: a quarter of the controller's per-Service heap).
#[derive(Clone, Debug, Default)]
struct Holders(Vec<ServiceKey>);

impl Holders {
    fn insert(&mut self, key: ServiceKey) {
        if let Err(i) = self.0.binary_search(&key) {
            self.0.reserve_exact(1);
            self.0.insert(i, key);
        }
    }

    fn remove(&mut self, key: &ServiceKey) {
        if let Ok(i) = self.0.binary_search(key) {
            self.0.remove(i);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> std::slice::Iter<'_, ServiceKey> {
        self.0.iter()
    }
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
    /// Fails, changing nothing, when two pools share a name or two ranges overlap (the
    /// validated config never has either: [`find_overlaps`] is its overlap rule too), or when
    /// `avoidBuggyIPs` is set on more IPv4 addresses than the allocator supports.
    pub fn set_pools(&mut self, pools: Vec<Pool>) -> Result<Vec<OutsidePool>, AllocError> {
        let all = pools
            .iter()
            .flat_map(|p| p.ranges.iter().map(move |r| (p.name.as_str(), *r)));
        if let Some(o) = find_overlaps(all).first() {
            return Err(AllocError::PoolOverlap {
                a: o.earlier.to_owned(),
                b: o.later.to_owned(),
                ip: o.at,
            });
        }
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
            for r in &cfg.ranges {
                let (s, e) = r.interval();
                index[r.family().index()].insert(s, (e, i));
                ranges[r.family().index()].insert(s, e);
            }
            let v4_count = ranges[Family::V4.index()].len();
            if cfg.avoid_buggy_ips && v4_count > 1 << 24 {
                return Err(AllocError::AvoidBuggyTooLarge {
                    pool: cfg.name,
                    addresses: v4_count,
                });
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
                state.free[Family::of(ip).index()].remove_one(ip_to_u128(ip));
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
        let x = ip_to_u128(ip);
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
                    ps.free[Family::of(ip).index()].insert_one(ip_to_u128(ip));
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
                    ps.free[Family::of(ip).index()].remove_one(ip_to_u128(ip));
                }
                self.ips.insert(
                    ip,
                    IpState {
                        pool,
                        holders: Holders::default(),
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
