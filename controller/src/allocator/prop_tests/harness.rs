//! The harness: the allocator under test beside the brute-force model, and the operations.

use super::*;

/// The model: pool specs in force and the last request of each live Service.
pub(super) struct Harness {
    pub(super) a: Allocator,
    pub(super) pools: BTreeMap<usize, PoolSpec>,
    pub(super) requests: BTreeMap<usize, Request>,
    /// Services whose last request failed: they still hold their old addresses, and may
    /// move when their (changed) request becomes satisfiable.
    pub(super) unsettled: HashSet<ServiceKey>,
}

pub(super) type Res = Result<(), TestCaseError>;

impl Harness {
    pub(super) fn new() -> Self {
        Self {
            a: Allocator::new(),
            pools: BTreeMap::new(),
            requests: BTreeMap::new(),
            unsettled: HashSet::new(),
        }
    }

    pub(super) fn pool_list(pools: &BTreeMap<usize, PoolSpec>) -> Vec<Pool> {
        pools.iter().map(|(&i, s)| s.to_pool(i)).collect()
    }

    /// Model pool containing an address.
    pub(super) fn model_pool_of(&self, ip: IpAddr) -> Option<usize> {
        let (f, x) = (Family::of(ip), ip_to_u128(ip));
        self.pools.iter().find_map(|(&i, s)| {
            s.ranges(i)[f.index()]
                .iter()
                .any(|&(a, b)| a <= x && x <= b)
                .then_some(i)
        })
    }

    pub(super) fn held(&self) -> BTreeMap<IpAddr, Vec<ServiceKey>> {
        let mut m: BTreeMap<IpAddr, Vec<ServiceKey>> = BTreeMap::new();
        for asg in self.a.assignments() {
            for ip in asg.ips {
                m.entry(ip).or_default().push(asg.service.clone());
            }
        }
        m
    }

    /// Brute-force lowest free address of pool `i`, family `f`.
    pub(super) fn lowest_free(
        &self,
        i: usize,
        f: Family,
        held: &HashSet<IpAddr>,
    ) -> Option<IpAddr> {
        let spec = &self.pools[&i];
        let mut ranges = spec.ranges(i)[f.index()].clone();
        ranges.sort();
        for (s, e) in ranges {
            let mut x = s;
            while x <= e {
                let ip = u128_to_ip(f, x);
                let skipped = spec.buggy && is_buggy(ip);
                if !held.contains(&ip) && !skipped {
                    return Some(ip);
                }
                x += 1;
            }
        }
        None
    }

    /// Model pool order: priority ascending (unset last), pools with a serviceAllocation
    /// first, then name.
    pub(super) fn ordered_pools(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.pools.keys().copied().collect();
        v.sort_by_key(|i| {
            let s = &self.pools[i];
            (
                s.prio.is_none(),
                s.prio,
                !s.has_allocation(),
                format!("p{i}"),
            )
        });
        v
    }

    pub(super) fn model_overlap(pools: &BTreeMap<usize, PoolSpec>) -> bool {
        let all: Vec<(usize, usize, u128, u128)> = pools
            .iter()
            .flat_map(|(&i, s)| {
                let r = s.ranges(i);
                r.into_iter()
                    .enumerate()
                    .flat_map(move |(f, rs)| rs.into_iter().map(move |(a, b)| (i, f, a, b)))
            })
            .collect();
        all.iter().enumerate().any(|(n, x)| {
            all[n + 1..]
                .iter()
                .any(|y| x.1 == y.1 && x.2 <= y.3 && y.2 <= x.3)
        })
    }

    pub(super) fn apply(&mut self, op: &Op) -> Res {
        match op {
            Op::Upsert(svc, spec) => {
                let req = spec.to_request(*svc);
                self.requests.insert(*svc, req.clone());
                self.check_allocate(&req)?;
            }
            Op::Delete(svc) => {
                if let Some(req) = self.requests.remove(svc) {
                    self.unsettled.remove(&req.service);
                    let before = self.a.assigned(&req.service).map(<[_]>::to_vec);
                    let freed = self.a.release(&req.service);
                    for ip in &freed {
                        prop_assert!(before.as_ref().is_some_and(|b| b.contains(ip)));
                        prop_assert!(self.a.holders(*ip).is_empty());
                    }
                    prop_assert!(self.a.assigned(&req.service).is_none());
                }
            }
            Op::SetPool(i, spec) => {
                let mut next = self.pools.clone();
                next.insert(*i, spec.clone());
                self.edit_pools(next)?;
            }
            Op::DeletePool(i) => {
                let mut next = self.pools.clone();
                next.remove(i);
                self.edit_pools(next)?;
            }
            Op::Restart => self.restart()?,
        }
        self.check_invariants()
    }

    pub(super) fn edit_pools(&mut self, next: BTreeMap<usize, PoolSpec>) -> Res {
        let before = self.a.assignments();
        let overlap = Self::model_overlap(&next);
        match self.a.set_pools(Self::pool_list(&next)) {
            Ok(outside) => {
                prop_assert!(!overlap, "overlapping pools accepted");
                self.pools = next;
                let held = self.held();
                let expected: Vec<OutsidePool> = held
                    .iter()
                    .filter(|(ip, _)| self.model_pool_of(**ip).is_none())
                    .flat_map(|(ip, svcs)| {
                        svcs.iter().map(|s| OutsidePool {
                            service: s.clone(),
                            ip: *ip,
                        })
                    })
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                prop_assert_eq!(outside, expected);
            }
            Err(e) => {
                prop_assert!(overlap, "valid pools rejected: {}", e);
                prop_assert_eq!(e.reason(), "InvalidPools");
                let AllocError::PoolOverlap { a, b, ip } = &e else {
                    return Err(TestCaseError::fail(format!("unexpected {e:?}")));
                };
                let idx = |n: &str| n[1..].parse::<usize>().unwrap();
                for name in [a, b] {
                    let (f, x) = (Family::of(*ip), ip_to_u128(*ip));
                    prop_assert!(
                        next[&idx(name)].ranges(idx(name))[f.index()]
                            .iter()
                            .any(|&(s, e)| s <= x && x <= e),
                        "{} named but {} not in it",
                        name,
                        ip
                    );
                }
            }
        }
        // IPs never move: not by the edit, not by re-processing every Service.
        prop_assert_eq!(&self.a.assignments(), &before);
        self.reprocess_all(&before)
    }

    /// What the reconciler does after a pool change: allocate for every Service again.
    /// Nobody loses an address they had.
    pub(super) fn reprocess_all(&mut self, before: &[Assignment]) -> Res {
        let unsettled = self.unsettled.clone();
        let reqs: Vec<Request> = self.requests.values().cloned().collect();
        for req in &reqs {
            self.check_allocate(req)?;
        }
        for asg in before.iter().filter(|a| !unsettled.contains(&a.service)) {
            let now = self.a.assigned(&asg.service).unwrap_or(&[]);
            for ip in &asg.ips {
                prop_assert!(now.contains(ip), "{} lost {} on reprocess", asg.service, ip);
            }
        }
        Ok(())
    }

    pub(super) fn restart(&mut self) -> Res {
        let mut saved = self.a.assignments();
        saved.reverse(); // input order must not matter
        let mut fresh = Allocator::new();
        fresh.set_pools(Self::pool_list(&self.pools)).unwrap();
        let report = fresh.restore(saved.clone());
        prop_assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
        prop_assert_eq!(report.outside, self.a.outside_pools());
        // restore-then-set_pools is the same state as set_pools-then-restore.
        let mut other = Allocator::new();
        other.restore(saved);
        other.set_pools(Self::pool_list(&self.pools)).unwrap();
        for b in [&fresh, &other] {
            prop_assert_eq!(b.assignments(), self.a.assignments());
            prop_assert_eq!(b.usage(), self.a.usage());
            for (p, q) in b.pools.iter().zip(&self.a.pools) {
                prop_assert_eq!(&p.free, &q.free, "free space of {}", p.cfg.name);
            }
            prop_assert_eq!(&b.shared, &self.a.shared);
        }
        // Every later decision is the same: re-process all on both, in lockstep.
        let mut old = self.a.clone();
        let reqs: Vec<Request> = self.requests.values().cloned().collect();
        for req in &reqs {
            prop_assert_eq!(old.allocate(req), fresh.allocate(req));
        }
        prop_assert_eq!(old.assignments(), fresh.assignments());
        self.a = fresh;
        Ok(())
    }
}
