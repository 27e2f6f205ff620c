//! Unit tests of the allocator's rules, one behaviour each, with exact messages.

use super::*;
use std::sync::Arc;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(s: &str) -> ServiceKey {
    let (ns, name) = s.split_once('/').unwrap();
    ServiceKey::new(ns, name)
}

fn req(s: &str) -> Request {
    Request::new(key(s))
}

fn pool(name: &str, addrs: &[&str]) -> Pool {
    Pool::parse(name, addrs).unwrap()
}

fn alloc(pools: Vec<Pool>) -> Allocator {
    let mut a = Allocator::new();
    a.set_pools(pools).unwrap();
    a
}

fn share(k: &str, ports: &[Port]) -> Sharing {
    Sharing {
        key: k.to_owned(),
        ports: ports.iter().copied().collect(),
        local_selector: None,
    }
}

fn ips(a: &Allocation) -> Vec<String> {
    a.ips.iter().map(|i| i.to_string()).collect()
}

#[test]
fn lowest_free_first_and_reused_after_release() {
    let mut a = alloc(vec![pool("p", &["192.0.2.0/29"])]);
    let x = a.allocate(&req("default/a")).unwrap();
    assert_eq!(ips(&x), ["192.0.2.0"]);
    assert_eq!(x.pool.as_deref(), Some("p"));
    assert!(x.changed);
    let y = a.allocate(&req("default/b")).unwrap();
    assert_eq!(ips(&y), ["192.0.2.1"]);
    // Idempotent.
    let again = a.allocate(&req("default/a")).unwrap();
    assert_eq!(ips(&again), ["192.0.2.0"]);
    assert!(!again.changed);
    assert_eq!(a.release(&key("default/a")), vec![ip("192.0.2.0")]);
    assert_eq!(ips(&a.allocate(&req("default/c")).unwrap()), ["192.0.2.0"]);
}

#[test]
fn exhaustion_names_pool_and_family() {
    let mut a = alloc(vec![pool("prod", &["2001:db8::/127"])]);
    let v6 = |n: &str| req(n).families(FamilyPolicy::SingleStack, &[Family::V6]);
    assert_eq!(ips(&a.allocate(&v6("d/a")).unwrap()), ["2001:db8::"]);
    assert_eq!(ips(&a.allocate(&v6("d/b")).unwrap()), ["2001:db8::1"]);
    let err = a.allocate(&v6("d/c")).unwrap_err();
    assert_eq!(err.to_string(), "pool prod has no free IPv6 address");
    assert_eq!(err.reason(), "PoolExhausted");
    assert_eq!(a.assigned(&key("d/c")), None, "a failure assigns nothing");
}

#[test]
fn v6_slash64_is_as_cheap_as_a_small_pool() {
    let mut a = alloc(vec![pool("big", &["2001:db8:1::/64"])]);
    for i in 0..1000u32 {
        let r = req(&format!("ns/s{i}")).families(FamilyPolicy::SingleStack, &[Family::V6]);
        let got = a.allocate(&r).unwrap();
        assert_eq!(got.ips[0], ip(&format!("2001:db8:1::{i:x}")));
    }
    let u = a.pool_usage("big").unwrap();
    assert_eq!(u.assigned_v6, 1000);
    assert_eq!(u.available_v6, u64::MAX - 999, "2^64 - 1000 available");
    assert_eq!(u.total_v6, 1u128 << 64);
    assert_eq!(u.total(), u64::MAX, "saturates for gauges");
    // Free space stays a single interval: no per-address state.
    assert_eq!(a.pools[0].free[1].intervals(), 1);
}

#[test]
fn priority_then_specific_then_name() {
    let mut sa = ServiceAllocation {
        priority: Some(10),
        ..Default::default()
    };
    let low = pool("a-low", &["192.0.2.0/30"]).service_allocation(sa.clone());
    sa.priority = Some(1);
    let high = pool("z-high", &["198.51.100.0/30"]).service_allocation(sa);
    let general = pool("b-general", &["203.0.113.0/30"]);
    let mut a = alloc(vec![general, low, high]);
    let first = a.allocate(&req("d/a")).unwrap();
    assert_eq!(ips(&first), ["198.51.100.0"]);
    assert_eq!(first.pool.as_deref(), Some("z-high"));
    for n in 1..4 {
        a.allocate(&req(&format!("d/h{n}"))).unwrap();
    }
    assert_eq!(ips(&a.allocate(&req("d/next")).unwrap()), ["192.0.2.0"]);
}

#[test]
fn auto_assign_false_only_by_explicit_request() {
    let mut a = alloc(vec![pool("manual", &["192.0.2.0/29"]).auto_assign(false)]);
    let err = a.allocate(&req("d/a")).unwrap_err();
    assert_eq!(err.to_string(), "no pool has autoAssign enabled");
    assert_eq!(err.reason(), "NoEligiblePool");
    assert_eq!(
        ips(&a.allocate(&req("d/a").pool("manual")).unwrap()),
        ["192.0.2.0"]
    );
    assert_eq!(
        ips(&a.allocate(&req("d/b").ips(&[ip("192.0.2.5")])).unwrap()),
        ["192.0.2.5"]
    );
}

#[test]
fn avoid_buggy_ips_skips_dot0_and_dot255() {
    let mut a = alloc(vec![
        pool("p", &["192.0.2.254-192.0.3.10"]).avoid_buggy_ips(true),
    ]);
    let got: Vec<String> = (0..3)
        .map(|i| ips(&a.allocate(&req(&format!("d/s{i}"))).unwrap())[0].clone())
        .collect();
    assert_eq!(got, ["192.0.2.254", "192.0.3.1", "192.0.3.2"]);
    // Explicit requests may still take them.
    assert_eq!(
        ips(&a.allocate(&req("d/x").ips(&[ip("192.0.3.0")])).unwrap()),
        ["192.0.3.0"]
    );
    // Released buggy addresses do not come back to automatic allocation.
    a.release(&key("d/x"));
    let u = a.pool_usage("p").unwrap();
    assert_eq!(u.assigned_v4, 3);
    assert!(!a.pools[0].free[0].contains(ip_to_u128(ip("192.0.3.0"))));
}

#[test]
fn requested_ip_errors() {
    let mut a = alloc(vec![
        pool("p", &["192.0.2.0/29"]),
        pool("q", &["198.51.100.0/29", "2001:db8::/64"]),
    ]);
    a.allocate(&req("default/web").ips(&[ip("192.0.2.7")]))
        .unwrap();
    let err = a
        .allocate(&req("default/other").ips(&[ip("192.0.2.7")]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "requested 192.0.2.7 is held by default/web"
    );
    assert_eq!(err.reason(), "IPInUse");
    let err = a
        .allocate(&req("d/x").ips(&[ip("203.0.113.9")]))
        .unwrap_err();
    assert_eq!(err.to_string(), "203.0.113.9 is not in any pool");
    assert_eq!(err.reason(), "NotInPool");
    let err = a
        .allocate(&req("d/x").ips(&[ip("192.0.2.3")]).pool("q"))
        .unwrap_err();
    assert_eq!(err.to_string(), "requested 192.0.2.3 is not in pool q");
    let err = a.allocate(&req("d/x").pool("nope")).unwrap_err();
    assert_eq!(err.to_string(), "pool nope does not exist");
    assert_eq!(err.reason(), "UnknownPool");
    let dual = req("d/x")
        .families(FamilyPolicy::RequireDualStack, &[Family::V4, Family::V6])
        .ips(&[ip("192.0.2.3"), ip("2001:db8::3")]);
    let err = a.allocate(&dual).unwrap_err();
    assert_eq!(
        err.to_string(),
        "requested 192.0.2.3 (pool p) and 2001:db8::3 (pool q) are not in one pool"
    );
    let err = a
        .allocate(&req("d/x").ips(&[ip("192.0.2.3"), ip("192.0.2.4")]))
        .unwrap_err();
    assert_eq!(err.reason(), "InvalidRequest");
    assert!(
        err.to_string()
            .contains("192.0.2.3 and 192.0.2.4 are both IPv4")
    );
}

#[test]
fn namespace_and_service_selectors() {
    let team_b = ServiceAllocation {
        namespaces: ["team-b".to_owned()].into(),
        ..Default::default()
    };
    let labelled_ns = ServiceAllocation {
        namespace_selectors: vec![Arc::new(MatchLabels(
            [("env".to_owned(), "prod".to_owned())].into(),
        ))],
        ..Default::default()
    };
    let web_only = ServiceAllocation {
        service_selectors: vec![Arc::new(MatchLabels(
            [("app".to_owned(), "web".to_owned())].into(),
        ))],
        ..Default::default()
    };
    let mut a = alloc(vec![
        pool("b", &["192.0.2.0/30"]).service_allocation(team_b),
        pool("prod", &["198.51.100.0/30"]).service_allocation(labelled_ns),
    ]);
    let err = a.allocate(&req("team-a/web")).unwrap_err();
    assert_eq!(err.to_string(), "no pool serves namespace team-a");
    assert_eq!(err.reason(), "NoEligiblePool");
    assert_eq!(ips(&a.allocate(&req("team-b/web")).unwrap()), ["192.0.2.0"]);
    let prod_ns: Labels = [("env".to_owned(), "prod".to_owned())].into();
    assert_eq!(
        ips(&a
            .allocate(&req("team-a/web").namespace_labels(prod_ns))
            .unwrap()),
        ["198.51.100.0"]
    );
    let err = a.allocate(&req("team-a/x").pool("b")).unwrap_err();
    assert_eq!(err.to_string(), "pool b does not serve namespace team-a");

    let mut a = alloc(vec![
        pool("w", &["192.0.2.0/30"]).service_allocation(web_only),
    ]);
    let err = a.allocate(&req("d/db")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no pool serves Service d/db (its labels match no serviceSelectors)"
    );
    let web: Labels = [("app".to_owned(), "web".to_owned())].into();
    assert!(a.allocate(&req("d/web").labels(web)).is_ok());
}

#[test]
fn dual_stack_policies() {
    let mut a = alloc(vec![
        pool("v4only", &["192.0.2.0/30"]),
        pool("dual", &["198.51.100.0/30", "2001:db8::/64"]),
    ]);
    // "both if possible": the dual pool wins over the v4-only pool for PreferDualStack.
    let prefer =
        |n: &str| req(n).families(FamilyPolicy::PreferDualStack, &[Family::V6, Family::V4]);
    let got = a.allocate(&prefer("d/a")).unwrap();
    assert_eq!(
        ips(&got),
        ["2001:db8::", "198.51.100.0"],
        "primary family first"
    );
    let require =
        |n: &str| req(n).families(FamilyPolicy::RequireDualStack, &[Family::V4, Family::V6]);
    assert_eq!(
        ips(&a.allocate(&require("d/b")).unwrap()),
        ["198.51.100.1", "2001:db8::1"]
    );

    let mut a = alloc(vec![
        pool("v4", &["192.0.2.0/30"]),
        pool("v6", &["2001:db8::/64"]),
    ]);
    let err = a.allocate(&require("d/c")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RequireDualStack: no single pool serves both IPv4 and IPv6"
    );
    assert_eq!(err.reason(), "FamilyUnavailable");
    // PreferDualStack degrades to the primary family.
    assert_eq!(ips(&a.allocate(&prefer("d/d")).unwrap()), ["2001:db8::"]);
    let single6 = req("d/e").families(FamilyPolicy::SingleStack, &[Family::V6]);
    let mut only4 = alloc(vec![pool("v4", &["192.0.2.0/30"])]);
    let err = only4.allocate(&single6).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SingleStack: no eligible pool has IPv6 addresses"
    );
}

#[test]
fn prefer_dual_stack_adds_missing_family_from_the_same_pool_later() {
    let mut a = alloc(vec![pool("dual", &["192.0.2.0/32", "2001:db8::/127"])]);
    let v6 = |n: &str| req(n).families(FamilyPolicy::SingleStack, &[Family::V6]);
    a.allocate(&v6("d/x")).unwrap();
    a.allocate(&v6("d/y")).unwrap();
    let prefer = req("d/p").families(FamilyPolicy::PreferDualStack, &[Family::V4, Family::V6]);
    assert_eq!(ips(&a.allocate(&prefer).unwrap()), ["192.0.2.0"]);
    a.release(&key("d/y"));
    let got = a.allocate(&prefer).unwrap();
    assert_eq!(ips(&got), ["192.0.2.0", "2001:db8::1"], "v4 kept, v6 added");
    assert!(got.changed);
}

#[test]
fn sharing_rules() {
    let mut a = alloc(vec![pool("p", &["192.0.2.0/29"])]);
    let web = req("default/web").sharing(share("k1", &[Port::tcp(80)]));
    assert_eq!(ips(&a.allocate(&web).unwrap()), ["192.0.2.0"]);
    // Different port, same key: shares.
    let dns = req("default/dns").sharing(share("k1", &[Port::udp(53), Port::tcp(53)]));
    assert_eq!(ips(&a.allocate(&dns).unwrap()), ["192.0.2.0"]);
    assert_eq!(a.holders(ip("192.0.2.0")).len(), 2);
    // Same port, same key: a clear error, not a silent fresh address.
    let clash = req("other/web2").sharing(share("k1", &[Port::tcp(80)]));
    let err = a.allocate(&clash).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sharing key k1: port TCP/80 already used by default/web"
    );
    assert_eq!(err.reason(), "SharingConflict");
    // Local policy needs the same selector.
    let mut local = share("k1", &[Port::tcp(8080)]);
    local.local_selector = Some("app=x".to_owned());
    let err = a.allocate(&req("d/l").sharing(local)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sharing key k1: default/dns has a different externalTrafficPolicy or Local selector"
    );
    // No key: a fresh address; a different key: a fresh address.
    assert_eq!(ips(&a.allocate(&req("d/n")).unwrap()), ["192.0.2.1"]);
    let k2 = req("d/k2").sharing(share("k2", &[Port::tcp(80)]));
    assert_eq!(ips(&a.allocate(&k2).unwrap()), ["192.0.2.2"]);
    // Requesting an address held under another key.
    let err = a
        .allocate(
            &req("d/k3")
                .ips(&[ip("192.0.2.0")])
                .sharing(share("k3", &[Port::tcp(1)])),
        )
        .unwrap_err();
    assert_eq!(err.reason(), "IPInUse");
    // The shared address is freed only when its last holder leaves.
    assert!(a.release(&key("default/web")).is_empty());
    assert_eq!(a.release(&key("default/dns")), vec![ip("192.0.2.0")]);
}

#[test]
fn service_update_moves_only_on_its_own_change() {
    let mut a = alloc(vec![
        pool("p", &["192.0.2.0/29"]),
        pool("q", &["198.51.100.0/29"]),
    ]);
    a.allocate(&req("d/s")).unwrap();
    let moved = a.allocate(&req("d/s").ips(&[ip("192.0.2.5")])).unwrap();
    assert_eq!(ips(&moved), ["192.0.2.5"]);
    assert!(moved.changed);
    let pinned = a.allocate(&req("d/s").pool("q")).unwrap();
    assert_eq!(ips(&pinned), ["198.51.100.0"]);
    // A failing change keeps the old address.
    a.allocate(&req("d/t").ips(&[ip("192.0.2.1")])).unwrap();
    let err = a.allocate(&req("d/s").ips(&[ip("192.0.2.1")])).unwrap_err();
    assert_eq!(err.reason(), "IPInUse");
    assert_eq!(a.assigned(&key("d/s")), Some(&[ip("198.51.100.0")][..]));
}

#[test]
fn pool_edits_never_move_running_services() {
    let mut a = alloc(vec![pool("p", &["192.0.2.0/29"])]);
    for n in 0..4 {
        a.allocate(&req(&format!("d/s{n}"))).unwrap();
    }
    // Shrink to .2-.7: s0 and s1 are now outside every pool, but keep their addresses.
    let outside = a
        .set_pools(vec![pool("p", &["192.0.2.2-192.0.2.7"])])
        .unwrap();
    assert_eq!(
        outside,
        vec![
            OutsidePool {
                service: key("d/s0"),
                ip: ip("192.0.2.0")
            },
            OutsidePool {
                service: key("d/s1"),
                ip: ip("192.0.2.1")
            },
        ]
    );
    let kept = a.allocate(&req("d/s0")).unwrap();
    assert_eq!(ips(&kept), ["192.0.2.0"]);
    assert_eq!(kept.pool, None);
    assert!(!kept.changed);
    assert_eq!(ips(&a.allocate(&req("d/new")).unwrap()), ["192.0.2.4"]);
    // Making the pool serve only another namespace does not move them either.
    let other_ns = ServiceAllocation {
        namespaces: ["x".to_owned()].into(),
        ..Default::default()
    };
    a.set_pools(vec![
        pool("p", &["192.0.2.0/29"]).service_allocation(other_ns),
    ])
    .unwrap();
    assert_eq!(ips(&a.allocate(&req("d/s3")).unwrap()), ["192.0.2.3"]);
    assert!(a.allocate(&req("d/fresh")).is_err());
    // Growing back: inside again, usage counts them.
    let outside = a.set_pools(vec![pool("p", &["192.0.2.0/28"])]).unwrap();
    assert!(outside.is_empty());
    assert_eq!(a.pool_usage("p").unwrap().assigned_v4, 5);
    assert_eq!(a.pool_usage("p").unwrap().available_v4, 11);
    // Deleting the pool: all outside, none released.
    let outside = a.set_pools(vec![]).unwrap();
    assert_eq!(outside.len(), 5);
    assert_eq!(a.assignments().len(), 5);
}

#[test]
fn invalid_pools_are_rejected_without_change() {
    let mut a = alloc(vec![pool("p", &["192.0.2.0/29"])]);
    let err = a
        .set_pools(vec![
            pool("a", &["192.0.2.0/29"]),
            pool("b", &["192.0.2.4-192.0.2.20"]),
        ])
        .unwrap_err();
    assert_eq!(err.to_string(), "pools a and b overlap at 192.0.2.4");
    assert_eq!(err.reason(), "InvalidPools");
    let err = a
        .set_pools(vec![pool("a", &["192.0.2.0/29", "192.0.2.7/32"])])
        .unwrap_err();
    assert_eq!(err.to_string(), "pools a and a overlap at 192.0.2.7");
    let err = a
        .set_pools(vec![
            pool("d", &["192.0.2.0/30"]),
            pool("d", &["198.51.100.0/30"]),
        ])
        .unwrap_err();
    assert_eq!(err.to_string(), "pool d is defined twice");
    assert_eq!(
        a.pool_of(ip("192.0.2.1")),
        Some("p"),
        "old pools still in force"
    );
    let huge = pool("h", &["0.0.0.0/7"]).avoid_buggy_ips(true);
    let err = a.set_pools(vec![huge]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pool h: avoidBuggyIPs is supported on at most 16777216 IPv4 addresses (a /8), the pool has 33554432"
    );
    assert_eq!(err.reason(), "InvalidPools");
    // A /8 is fine (one interval per /24).
    a.set_pools(vec![pool("h", &["198.0.0.0/8"]).avoid_buggy_ips(true)])
        .unwrap();
    assert_eq!(a.pools[0].free[0].intervals(), 1 << 16);
    assert_eq!(
        a.pool_usage("h").unwrap().available_v4,
        (1 << 24) - 2 * (1 << 16)
    );
}

#[test]
fn restore_reproduces_state_and_reports() {
    let pools = || {
        vec![
            pool("p", &["192.0.2.0/29"]),
            pool("v6", &["2001:db8::/64", "198.51.100.0/30"]),
        ]
    };
    let mut a = alloc(pools());
    a.allocate(&req("d/a")).unwrap();
    a.allocate(&req("d/b").sharing(share("k", &[Port::tcp(80)])))
        .unwrap();
    a.allocate(&req("d/c").sharing(share("k", &[Port::tcp(81)])))
        .unwrap();
    a.allocate(&req("d/dual").families(FamilyPolicy::RequireDualStack, &[Family::V6, Family::V4]))
        .unwrap();
    a.allocate(&req("d/e")).unwrap();
    a.release(&key("d/a"));

    let mut b = alloc(pools());
    let mut list = a.assignments();
    list.reverse();
    let report = b.restore(list);
    assert_eq!(report, RestoreReport::default());
    assert_eq!(b.assignments(), a.assignments());
    assert_eq!(b.usage(), a.usage());
    // The next allocation is the same on both: free space was rebuilt identically.
    assert_eq!(
        a.allocate(&req("d/z")).unwrap(),
        b.allocate(&req("d/z")).unwrap()
    );

    // Conflicting statuses: the first in Service order wins, the other is reported.
    let mut c = alloc(pools());
    let report = c.restore(vec![
        Assignment {
            service: key("z/late"),
            ips: vec![ip("192.0.2.1")],
            sharing: None,
            pool: None,
        },
        Assignment {
            service: key("a/early"),
            ips: vec![ip("192.0.2.1")],
            sharing: None,
            pool: None,
        },
        Assignment {
            service: key("m/gone"),
            ips: vec![ip("203.0.113.5")],
            sharing: None,
            pool: None,
        },
    ]);
    assert_eq!(c.holders(ip("192.0.2.1")), vec![key("a/early")]);
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(report.conflicts[0].0, key("z/late"));
    assert_eq!(
        report.conflicts[0].1.to_string(),
        "requested 192.0.2.1 is held by a/early"
    );
    assert_eq!(
        report.outside,
        vec![OutsidePool {
            service: key("m/gone"),
            ip: ip("203.0.113.5")
        }]
    );
    // Restored-but-outside addresses stay with their Service.
    assert_eq!(ips(&c.allocate(&req("m/gone")).unwrap()), ["203.0.113.5"]);
}

#[test]
fn reasons_are_pascal_case_and_listed() {
    for r in AllocError::REASONS {
        assert!(r.chars().next().unwrap().is_ascii_uppercase());
    }
    let e = AllocError::NotInPool {
        ip: ip("192.0.2.7"),
    };
    assert_eq!(e.to_string(), "192.0.2.7 is not in any pool");
    assert_eq!(e.reason(), "NotInPool");
}

#[test]
fn pinned_service_keeps_address_when_its_range_moves_to_another_pool() {
    let mut a = alloc(vec![
        pool("p", &["192.0.2.0/30"]),
        pool("q", &["198.51.100.0/30"]),
    ]);
    a.allocate(&req("d/s").pool("p")).unwrap();
    // The edit swaps the ranges: the pinned Service's address is now in q.
    a.set_pools(vec![
        pool("p", &["198.51.100.0/30"]),
        pool("q", &["192.0.2.0/30"]),
    ])
    .unwrap();
    let kept = a.allocate(&req("d/s").pool("p")).unwrap();
    assert_eq!(ips(&kept), ["192.0.2.0"]);
    assert_eq!(kept.pool.as_deref(), Some("q"));
    assert!(!kept.changed);
    // Even deleting the pinned pool does not take it away.
    a.set_pools(vec![pool("q", &["192.0.2.0/30"])]).unwrap();
    assert_eq!(
        ips(&a.allocate(&req("d/s").pool("p")).unwrap()),
        ["192.0.2.0"]
    );
    // A new pin is checked: the address is already in q, so it stays.
    assert!(!a.allocate(&req("d/s").pool("q")).unwrap().changed);
    // Back to the deleted pool: now it is a new pin, and it does not exist.
    let err = a.allocate(&req("d/s").pool("p")).unwrap_err();
    assert_eq!(err.to_string(), "pool p does not exist");
    assert_eq!(a.assigned(&key("d/s")), Some(&[ip("192.0.2.0")][..]));
}

#[test]
fn allocator_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    send_sync::<Allocator>();
    clone::<Allocator>();
    send_sync::<AllocError>();
    send_sync::<crate::Error>();
}
