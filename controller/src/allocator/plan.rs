//! Planning: which addresses a request gets, computed from the allocator's state without
//! changing it (so a failure changes nothing).

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{AllocError, Allocator, Family, FamilyGap, FamilyPolicy, Ineligible, Request};
use ferrolb_crds::config::u128_to_ip;

impl Allocator {
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
    pub(super) fn plan(&self, req: &Request) -> Result<Vec<IpAddr>, AllocError> {
        let me = &req.service;
        let sharing = req.sharing.as_ref();
        if sharing.is_some_and(|s| s.key.is_empty()) {
            return Err(AllocError::InvalidRequest(
                "the sharing key is empty".to_owned(),
            ));
        }
        let (wanted, requested) = wanted_families(req)?;
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

        self.fill_both(req, &candidates, wanted, out)
    }

    /// Both families missing (Prefer/RequireDualStack, nothing kept): one pool that has both
    /// free, else (PreferDualStack) one family, primary first.
    fn fill_both(
        &self,
        req: &Request,
        candidates: &[usize],
        wanted: &[Family],
        out: &mut [Option<IpAddr>],
    ) -> Result<(), AllocError> {
        let (f1, f2) = (wanted[0], wanted[1]);
        let mut exhausted: Option<(Family, Vec<String>)> = None;
        for &p in candidates {
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
        let (slot, result) = match self.pick_single(req, candidates, f1) {
            Ok(ip) => (0, Ok(ip)),
            Err(first) => match self.pick_single(req, candidates, f2) {
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
            .map(|x| u128_to_ip(f, x)))
    }
}

/// The families `req` needs addresses in, primary first, and the address it requests in each
/// (indexed by [`Family::index`]); an inconsistent request is refused here.
fn wanted_families(req: &Request) -> Result<(Vec<Family>, [Option<IpAddr>; 2]), AllocError> {
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
    Ok((wanted, requested))
}
