//! What is asserted after each operation: the allocation, the failure reason, the invariants.

use super::*;

impl Harness {
    pub(super) fn check_allocate(&mut self, req: &Request) -> Res {
        let held_map = self.held();
        let held: HashSet<IpAddr> = held_map.keys().copied().collect();
        let all_before = self.a.assignments();
        let sharing_of = |k: &ServiceKey| {
            all_before
                .iter()
                .find(|a| &a.service == k)
                .and_then(|a| a.sharing.clone())
        };
        let prior: Vec<IpAddr> = self
            .a
            .assigned(&req.service)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let result = self.a.allocate(req);
        count(match &result {
            Ok(al) if al.changed => "Allocated",
            Ok(_) => "Kept",
            Err(e) => e.reason(),
        });
        if result.is_ok() {
            self.unsettled.remove(&req.service);
        } else {
            self.unsettled.insert(req.service.clone());
        }
        match result {
            Ok(al) => {
                prop_assert_eq!(Some(al.ips.as_slice()), self.a.assigned(&req.service));
                prop_assert!(!al.ips.is_empty());
                if !req.ips.is_empty() {
                    let mut want = req.ips.clone();
                    want.sort();
                    let mut got = al.ips.clone();
                    got.sort();
                    prop_assert_eq!(got, want, "requested addresses not honoured");
                    return Ok(());
                }
                match req.policy {
                    FamilyPolicy::SingleStack => {
                        prop_assert_eq!(al.ips.len(), 1);
                        prop_assert_eq!(Family::of(al.ips[0]), req.families[0]);
                    }
                    FamilyPolicy::RequireDualStack => {
                        prop_assert_eq!(al.ips.len(), 2);
                        prop_assert!(Family::of(al.ips[0]) != Family::of(al.ips[1]));
                    }
                    FamilyPolicy::PreferDualStack => prop_assert!(al.ips.len() <= 2),
                }
                let new: Vec<IpAddr> = al
                    .ips
                    .iter()
                    .copied()
                    .filter(|ip| !prior.contains(ip))
                    .collect();
                if new.len() == 2 {
                    prop_assert_eq!(
                        self.model_pool_of(new[0]),
                        self.model_pool_of(new[1]),
                        "dual-stack from two pools"
                    );
                }
                for ip in new {
                    let f = Family::of(ip);
                    let p = self.model_pool_of(ip);
                    prop_assert!(p.is_some(), "{} handed out from no pool", ip);
                    let p = p.unwrap();
                    let spec = &self.pools[&p];
                    prop_assert!(spec.serves(req), "p{} does not serve {}", p, req.service);
                    match &req.pool {
                        Some(pin) => prop_assert_eq!(pin, &format!("p{p}")),
                        None => prop_assert!(spec.auto, "autoAssign false pool p{} used", p),
                    }
                    if held.contains(&ip) {
                        // Joined a share: every holder uses the same key.
                        let key = req.sharing.as_ref().map(|s| s.key.clone());
                        prop_assert!(key.is_some(), "{} taken from a holder", ip);
                        for h in &held_map[&ip] {
                            prop_assert_eq!(sharing_of(h).map(|s| s.key), key.clone());
                        }
                        continue;
                    }
                    prop_assert_eq!(
                        Some(ip),
                        self.lowest_free(p, f, &held),
                        "not the lowest free address of p{}",
                        p
                    );
                    let simple = req.policy == FamilyPolicy::SingleStack
                        && req.sharing.is_none()
                        && req.pool.is_none()
                        && prior.is_empty();
                    if simple {
                        for q in self.ordered_pools() {
                            if q == p {
                                break;
                            }
                            let s = &self.pools[&q];
                            if s.auto && s.serves(req) {
                                prop_assert_eq!(
                                    self.lowest_free(q, f, &held),
                                    None,
                                    "p{} comes before p{} and has room",
                                    q,
                                    p
                                );
                            }
                        }
                    }
                }
            }
            Err(e) => {
                prop_assert_eq!(
                    self.a
                        .assigned(&req.service)
                        .map(<[_]>::to_vec)
                        .unwrap_or_default(),
                    prior,
                    "a failure changed the Service's addresses"
                );
                prop_assert_eq!(&self.a.assignments(), &all_before);
                self.check_error(req, &e, &held_map, &sharing_of)?;
            }
        }
        Ok(())
    }

    /// The reason names a cause that is true of the model.
    pub(super) fn check_error(
        &self,
        req: &Request,
        e: &AllocError,
        held: &BTreeMap<IpAddr, Vec<ServiceKey>>,
        sharing_of: &dyn Fn(&ServiceKey) -> Option<Sharing>,
    ) -> Res {
        let msg = e.to_string();
        prop_assert!(AllocError::REASONS.contains(&e.reason()));
        let name_idx = |n: &str| n.strip_prefix('p').and_then(|x| x.parse::<usize>().ok());
        let held_set: HashSet<IpAddr> = held.keys().copied().collect();
        match e {
            AllocError::PoolExhausted { pools, family } => {
                prop_assert!(msg.contains(&family.to_string()));
                prop_assert!(!pools.is_empty());
                for p in pools {
                    prop_assert!(msg.contains(p.as_str()));
                    let i = name_idx(p).unwrap();
                    prop_assert!(self.pools.contains_key(&i));
                    prop_assert_eq!(
                        self.lowest_free(i, *family, &held_set),
                        None,
                        "{} has room",
                        p
                    );
                }
            }
            AllocError::IpInUse { ip, holder } => {
                prop_assert!(msg.contains(&ip.to_string()) && msg.contains(&holder.to_string()));
                prop_assert!(holder != &req.service);
                prop_assert!(held.get(ip).is_some_and(|h| h.contains(holder)));
            }
            AllocError::NoEligiblePool { cause } => {
                let autos: Vec<&PoolSpec> = self.pools.values().filter(|s| s.auto).collect();
                prop_assert!(autos.iter().all(|s| !s.serves(req)), "{}", msg);
                match cause {
                    Ineligible::NoPools => prop_assert!(self.pools.is_empty()),
                    Ineligible::NoAutoAssign => prop_assert!(autos.is_empty()),
                    Ineligible::Namespace(ns) => {
                        prop_assert_eq!(ns, &req.service.namespace);
                        let want = format!("namespace {ns}");
                        prop_assert!(msg.contains(&want));
                    }
                    Ineligible::ServiceSelectors(k) => {
                        prop_assert_eq!(k, &req.service);
                        prop_assert!(msg.contains(&k.to_string()));
                    }
                }
            }
            AllocError::PoolNotEligible { pool, .. } => {
                prop_assert!(msg.contains(pool.as_str()));
                let i = name_idx(pool).unwrap();
                prop_assert!(!self.pools[&i].serves(req));
            }
            AllocError::NotInPool { ip } => {
                prop_assert!(msg.contains(&ip.to_string()));
                prop_assert!(req.ips.contains(ip));
                prop_assert_eq!(self.model_pool_of(*ip), None);
            }
            AllocError::NotInRequestedPool { ip, pool } => {
                prop_assert_eq!(Some(pool), req.pool.as_ref());
                prop_assert!(self.model_pool_of(*ip) != name_idx(pool));
            }
            AllocError::SplitPools { a, b, .. } => {
                prop_assert!(self.model_pool_of(*a) != self.model_pool_of(*b));
            }
            AllocError::UnknownPool { pool } => {
                prop_assert_eq!(Some(pool), req.pool.as_ref());
                prop_assert!(!self.pools.contains_key(&name_idx(pool).unwrap()));
            }
            AllocError::SharingConflict { key, conflict } => {
                let mine = req.sharing.as_ref().unwrap();
                prop_assert_eq!(key, &mine.key);
                prop_assert!(msg.contains(key.as_str()));
                let holder = match conflict {
                    SharingConflict::Port { holder, .. } | SharingConflict::Backend { holder } => {
                        holder
                    }
                };
                prop_assert!(msg.contains(&holder.to_string()));
                let theirs = sharing_of(holder).unwrap();
                prop_assert_eq!(&theirs.key, key);
                match conflict {
                    SharingConflict::Port { port, .. } => {
                        prop_assert!(mine.ports.contains(port) && theirs.ports.contains(port));
                        prop_assert!(msg.contains(&port.to_string()));
                    }
                    SharingConflict::Backend { .. } => {
                        prop_assert!(mine.local_selector != theirs.local_selector);
                    }
                }
            }
            AllocError::FamilyUnavailable { policy, detail } => {
                prop_assert_eq!(*policy, req.policy);
                prop_assert!(msg.starts_with(&policy.to_string()));
                let fresh = self.a.assigned(&req.service).is_none() && req.ips.is_empty();
                let eligible: Vec<usize> = match &req.pool {
                    Some(p) => name_idx(p).into_iter().collect(),
                    None => self
                        .pools
                        .iter()
                        .filter(|(_, s)| s.auto && s.serves(req))
                        .map(|(i, _)| *i)
                        .collect(),
                };
                match detail {
                    FamilyGap::NoPoolForFamily(f) if fresh => {
                        prop_assert!(msg.contains(&f.to_string()));
                        for i in eligible {
                            prop_assert!(self.pools[&i].ranges(i)[f.index()].is_empty());
                        }
                    }
                    FamilyGap::NoDualStackPool if fresh => {
                        for i in eligible {
                            let r = self.pools[&i].ranges(i);
                            prop_assert!(r[0].is_empty() || r[1].is_empty());
                        }
                    }
                    FamilyGap::RequestedSingleFamily => prop_assert_eq!(req.ips.len(), 1),
                    _ => {}
                }
            }
            AllocError::InvalidRequest(_) => {
                let fams: Vec<Family> = req.ips.iter().map(|i| Family::of(*i)).collect();
                prop_assert!(
                    (fams.len() == 2 && fams[0] == fams[1])
                        || (fams.len() == 2 && req.policy == FamilyPolicy::SingleStack),
                    "{}",
                    msg
                );
            }
            other => return Err(TestCaseError::fail(format!("unexpected error {other:?}"))),
        }
        Ok(())
    }

    pub(super) fn check_invariants(&self) -> Res {
        let all = self.a.assignments();
        let by_key: BTreeMap<&ServiceKey, &Assignment> =
            all.iter().map(|a| (&a.service, a)).collect();
        let held = self.held();
        // No address held twice except a legal share.
        for (ip, holders) in &held {
            prop_assert_eq!(self.a.holders(*ip), holders.clone());
            if holders.len() < 2 {
                continue;
            }
            let shares: Vec<&Sharing> = holders
                .iter()
                .map(|h| by_key[h].sharing.as_ref())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| TestCaseError::fail(format!("{ip} held twice without a key")))?;
            for (n, x) in shares.iter().enumerate() {
                for y in &shares[n + 1..] {
                    prop_assert_eq!(&x.key, &y.key, "{} shared across keys", ip);
                    prop_assert_eq!(&x.local_selector, &y.local_selector);
                    prop_assert!(x.ports.is_disjoint(&y.ports), "{} port clash", ip);
                }
            }
        }
        for asg in &all {
            prop_assert!(!asg.ips.is_empty() && asg.ips.len() <= 2);
            if asg.ips.len() == 2 {
                prop_assert!(Family::of(asg.ips[0]) != Family::of(asg.ips[1]));
            }
        }
        // Outside-pool report and usage match the model.
        let outside: Vec<OutsidePool> = self.a.outside_pools();
        for o in &outside {
            prop_assert_eq!(self.model_pool_of(o.ip), None);
        }
        let n_outside = held
            .iter()
            .filter(|(ip, _)| self.model_pool_of(**ip).is_none());
        prop_assert_eq!(
            outside.len(),
            n_outside.map(|(_, h)| h.len()).sum::<usize>()
        );
        let held_set: HashSet<IpAddr> = held.keys().copied().collect();
        for (&i, spec) in &self.pools {
            let u = self.a.pool_usage(&format!("p{i}")).unwrap();
            let ranges = spec.ranges(i);
            for f in [Family::V4, Family::V6] {
                let in_pool: Vec<IpAddr> = held
                    .keys()
                    .copied()
                    .filter(|ip| Family::of(*ip) == f && self.model_pool_of(*ip) == Some(i))
                    .collect();
                let total: u128 = ranges[f.index()].iter().map(|&(s, e)| e - s + 1).sum();
                let buggy: u128 = if spec.buggy && f == Family::V4 {
                    ranges[0]
                        .iter()
                        .flat_map(|&(s, e)| s..=e)
                        .filter(|&x| is_buggy(u128_to_ip(f, x)))
                        .count() as u128
                } else {
                    0
                };
                let held_ok = in_pool
                    .iter()
                    .filter(|ip| !(spec.buggy && is_buggy(**ip)))
                    .count();
                let avail = u64::try_from(total - buggy - held_ok as u128).unwrap_or(u64::MAX);
                let (assigned, available, tot) = match f {
                    Family::V4 => (u.assigned_v4, u.available_v4, u.total_v4),
                    Family::V6 => (u.assigned_v6, u.available_v6, u.total_v6),
                };
                prop_assert_eq!(assigned, in_pool.len() as u64);
                prop_assert_eq!(available, avail);
                prop_assert_eq!(tot, total);
                // Free space equals ranges minus held minus buggy, checked by sampling the
                // first addresses (a /64 cannot be enumerated).
                let ps = &self.a.pools[self.a.by_name[&format!("p{i}")]];
                prop_assert_eq!(
                    ps.free[f.index()].first().map(|x| u128_to_ip(f, x)),
                    self.lowest_free(i, f, &held_set)
                );
            }
        }
        Ok(())
    }
}
