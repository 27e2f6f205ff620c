//! Property tests: random sequences of Service create/update/delete, pool add/shrink/grow/
//! delete (including overlapping, rejected edits) and controller restarts, checked against
//! an independent brute-force model after every operation.
//!
//! Asserted after every step:
//! - no address is held by two Services except a legal share (same key, same Local
//!   selector, disjoint protocol+port);
//! - a successful automatic allocation returns the lowest free address of its pool, from
//!   the first eligible pool in priority order (single-stack requests), never a `.0`/`.255`
//!   of an `avoidBuggyIPs` pool, never an address of an ineligible or `autoAssign: false`
//!   pool unless pinned;
//! - every failure carries a reason whose named cause is true of the model (the named pool
//!   is full, the named holder holds the address, the named namespace is served by no pool,
//!   ...), and changes nothing;
//! - a pool edit (or a rejected one) never takes an address from a Service, also after
//!   re-processing every Service;
//! - a restart (set_pools + restore from the assignments) reproduces the assignments, the
//!   usage, the free space and every later decision.
//!
//! At least 10,000 operations run in total (asserted).

use super::*;
use ferrolb_crds::config::u128_to_ip;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const SERVICES: usize = 24;
const POOLS: usize = 4;
const PORTS: [Port; 3] = [
    Port {
        protocol: Protocol::Tcp,
        port: 80,
    },
    Port {
        protocol: Protocol::Tcp,
        port: 443,
    },
    Port {
        protocol: Protocol::Udp,
        port: 443,
    },
];

fn v4(off: u8) -> u128 {
    0xc000_0200 | off as u128 // 192.0.2.off
}

fn v6_base(region: usize) -> u128 {
    // 2001:db8:<region>::/64
    (0x2001_0db8_u128 << 96) | ((region as u128) << 80)
}

#[derive(Clone, Debug)]
enum V6Spec {
    Small(u8, u8),
    Big,
}

#[derive(Clone, Debug)]
struct PoolSpec {
    /// Offsets (inclusive, any order) inside the pool's own 64-address region, or anywhere
    /// in 192.0.2.0/24 when `v4_anywhere` (then overlaps, and rejected edits, happen).
    v4: Option<(u8, u8)>,
    v4_anywhere: bool,
    v6: Option<V6Spec>,
    auto: bool,
    buggy: bool,
    prio: Option<i32>,
    namespaces: Vec<usize>,
    ns_selector: bool,
    svc_selector: bool,
}

impl PoolSpec {
    fn ranges(&self, i: usize) -> [Vec<(u128, u128)>; 2] {
        let mut out: [Vec<(u128, u128)>; 2] = Default::default();
        if let Some((x, y)) = self.v4 {
            let (x, y, base) = if self.v4_anywhere {
                (x, y, 0)
            } else {
                (x % 64, y % 64, (i * 64) as u8)
            };
            out[0].push((v4(base + x.min(y)), v4(base + x.max(y))));
        }
        match self.v6 {
            Some(V6Spec::Small(x, y)) => {
                let b = v6_base(i);
                out[1].push((b + x.min(y) as u128, b + x.max(y) as u128));
            }
            Some(V6Spec::Big) => out[1].push((v6_base(i), v6_base(i) + u64::MAX as u128)),
            None => {}
        }
        out
    }

    fn has_allocation(&self) -> bool {
        self.prio.is_some() || !self.namespaces.is_empty() || self.ns_selector || self.svc_selector
    }

    fn to_pool(&self, i: usize) -> Pool {
        let [r4, r6] = self.ranges(i);
        let ranges = r4
            .iter()
            .map(|&(s, e)| (Family::V4, s, e))
            .chain(r6.iter().map(|&(s, e)| (Family::V6, s, e)))
            .map(|(f, s, e)| {
                IpRange::new(u128_to_ip(f, s), u128_to_ip(f, e)).expect("start <= end")
            })
            .collect();
        let mut p = Pool::new(format!("p{i}"), ranges)
            .auto_assign(self.auto)
            .avoid_buggy_ips(self.buggy);
        if self.has_allocation() {
            p = p.service_allocation(ServiceAllocation {
                priority: self.prio,
                namespaces: self
                    .namespaces
                    .iter()
                    .map(|&n| NAMESPACES[n].to_owned())
                    .collect(),
                namespace_selectors: if self.ns_selector {
                    vec![Arc::new(MatchLabels(env_prod()))]
                } else {
                    vec![]
                },
                service_selectors: if self.svc_selector {
                    vec![Arc::new(MatchLabels(app("a")))]
                } else {
                    vec![]
                },
            });
        }
        p
    }

    /// Model eligibility (namespace and labels), written independently of the allocator.
    fn serves(&self, req: &Request) -> bool {
        let ns_ok = (self.namespaces.is_empty() && !self.ns_selector)
            || self
                .namespaces
                .iter()
                .any(|&n| NAMESPACES[n] == req.service.namespace)
            || (self.ns_selector && req.namespace_labels == env_prod());
        let svc_ok = !self.svc_selector || req.labels.get("app").map(String::as_str) == Some("a");
        ns_ok && svc_ok
    }
}

fn env_prod() -> Labels {
    [("env".to_owned(), "prod".to_owned())].into()
}

fn app(v: &str) -> Labels {
    [("app".to_owned(), v.to_owned())].into()
}

#[derive(Clone, Debug)]
enum IpChoice {
    V4(u8),
    V6(usize, u8),
    Outside(u8),
}

impl IpChoice {
    fn ip(&self) -> IpAddr {
        match *self {
            IpChoice::V4(o) => u128_to_ip(Family::V4, v4(o)),
            IpChoice::V6(r, o) => u128_to_ip(Family::V6, v6_base(r) + o as u128),
            IpChoice::Outside(o) => u128_to_ip(Family::V4, 0xc633_6400 | o as u128), // 198.51.100.o
        }
    }
}

#[derive(Clone, Debug)]
struct ReqSpec {
    policy: FamilyPolicy,
    primary: Family,
    ips: Vec<IpChoice>,
    pin: Option<usize>,
    sharing: Option<(usize, u8, Option<usize>)>,
    app: Option<usize>,
}

impl ReqSpec {
    fn to_request(&self, svc: usize) -> Request {
        let ns = NAMESPACES[svc % NAMESPACES.len()];
        let mut r = Request::new(ServiceKey::new(ns, format!("s{svc}")))
            .families(self.policy, &[self.primary, self.primary.other()])
            .ips(&self.ips.iter().map(IpChoice::ip).collect::<Vec<_>>());
        if self.policy == FamilyPolicy::SingleStack {
            r.families.truncate(1);
        }
        if ns == "c" {
            r = r.namespace_labels(env_prod());
        }
        if let Some(a) = self.app {
            r = r.labels(app(["a", "b"][a]));
        }
        if let Some(p) = self.pin {
            r = r.pool(format!("p{p}")); // p4 never exists
        }
        if let Some((k, mask, local)) = self.sharing {
            r = r.sharing(Sharing {
                key: format!("k{k}"),
                ports: PORTS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, p)| *p)
                    .collect(),
                local_selector: local.map(|l| format!("app={l}")),
            });
        }
        r
    }
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(usize, ReqSpec),
    Delete(usize),
    SetPool(usize, PoolSpec),
    DeletePool(usize),
    Restart,
}

fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    (
        proptest::option::weighted(0.9, (0u8..=255, 0u8..=255)),
        proptest::bool::weighted(0.15),
        proptest::option::weighted(
            0.75,
            prop_oneof![
                3 => (0u8..16, 0u8..16).prop_map(|(a, b)| V6Spec::Small(a, b)),
                1 => Just(V6Spec::Big),
            ],
        ),
        proptest::bool::weighted(0.85),
        proptest::bool::weighted(0.3),
        proptest::option::weighted(0.4, 0i32..3),
        proptest::collection::vec(0usize..3, 0..2),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.15),
    )
        .prop_map(
            |(v4, v4_anywhere, v6, auto, buggy, prio, namespaces, ns_selector, svc_selector)| {
                PoolSpec {
                    v4,
                    v4_anywhere,
                    v6,
                    auto,
                    buggy,
                    prio,
                    namespaces,
                    ns_selector,
                    svc_selector,
                }
            },
        )
}

fn ip_choice() -> impl Strategy<Value = IpChoice> {
    prop_oneof![
        6 => any::<u8>().prop_map(IpChoice::V4),
        3 => (0usize..POOLS, 0u8..18).prop_map(|(r, o)| IpChoice::V6(r, o)),
        1 => any::<u8>().prop_map(IpChoice::Outside),
    ]
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    (
        prop_oneof![
            5 => Just(FamilyPolicy::SingleStack),
            2 => Just(FamilyPolicy::PreferDualStack),
            2 => Just(FamilyPolicy::RequireDualStack),
        ],
        prop_oneof![3 => Just(Family::V4), 1 => Just(Family::V6)],
        prop_oneof![
            14 => Just(vec![]),
            3 => proptest::collection::vec(ip_choice(), 1..=1),
            1 => (0u8..=255, 0usize..POOLS, 0u8..18)
                .prop_map(|(a, r, o)| vec![IpChoice::V4(a), IpChoice::V6(r, o)]),
            1 => proptest::collection::vec(ip_choice(), 2..=2),
        ],
        proptest::option::weighted(0.15, 0usize..=POOLS),
        proptest::option::weighted(
            0.4,
            (
                0usize..2,
                1u8..8,
                proptest::option::weighted(0.2, 0usize..2),
            ),
        ),
        proptest::option::weighted(0.5, 0usize..2),
    )
        .prop_map(|(policy, primary, ips, pin, sharing, app)| ReqSpec {
            policy,
            primary,
            ips,
            pin,
            sharing,
            app,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        50 => (0usize..SERVICES, req_spec()).prop_map(|(s, r)| Op::Upsert(s, r)),
        12 => (0usize..SERVICES).prop_map(Op::Delete),
        14 => (0usize..POOLS, pool_spec()).prop_map(|(i, p)| Op::SetPool(i, p)),
        3 => (0usize..POOLS).prop_map(Op::DeletePool),
        3 => Just(Op::Restart),
    ]
}

mod checks;
mod harness;

use harness::{Harness, Res};

static OPS: AtomicUsize = AtomicUsize::new(0);
static OUTCOMES: std::sync::Mutex<BTreeMap<&'static str, usize>> =
    std::sync::Mutex::new(BTreeMap::new());

fn count(outcome: &'static str) {
    *OUTCOMES.lock().unwrap().entry(outcome).or_default() += 1;
}

#[test]
fn random_operation_sequences_keep_the_invariants() {
    let config = Config {
        // PROPTEST_CASES raises it for a soak run (the >= 10k assertion holds for >= 72).
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(72),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op(), 80..240);
    let result = runner.run(&strategy, |ops| {
        let mut h = Harness::new();
        for op in &ops {
            h.apply(op)?;
            OPS.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let total = OPS.load(Ordering::Relaxed);
    assert!(total >= 10_000, "only {total} operations ran");
    let outcomes = OUTCOMES.lock().unwrap().clone();
    eprintln!("allocator property test: {total} operations, allocate outcomes {outcomes:?}");
    // The generators reach every outcome the model can check.
    for o in [
        "Allocated",
        "Kept",
        "PoolExhausted",
        "IPInUse",
        "NoEligiblePool",
        "NotInPool",
        "UnknownPool",
        "SharingConflict",
        "FamilyUnavailable",
        "InvalidRequest",
    ] {
        assert!(outcomes.contains_key(o), "no {o} outcome in {outcomes:?}");
    }
}
