//! Decision tests: configuration + Service + current status in, status/condition/Events out.

use std::net::IpAddr;

use ferrolb_crds::ClusterResources;
use ferrolb_crds::v1alpha1::IPAddressPool;
use k8s_openapi::api::core::v1::{Namespace, Service};
use serde_json::json;

use super::*;
use crate::sink::reasons;

fn pool(name: &str, addresses: &[&str]) -> IPAddressPool {
    serde_json::from_value(json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "ferrolb-system"},
        "spec": {"addresses": addresses},
    }))
    .unwrap()
}

fn res(pools: Vec<IPAddressPool>) -> ClusterResources {
    ClusterResources {
        pools,
        ..ClusterResources::default()
    }
}

/// A LoadBalancer Service `ns/name` with extra spec fields, annotations and status.
fn svc(ns: &str, name: &str, spec: serde_json::Value, annotations: serde_json::Value) -> Service {
    let mut s = json!({"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]});
    s.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": s,
    }))
    .unwrap()
}

fn plain(name: &str) -> Service {
    svc("default", name, json!({}), json!({}))
}

fn with_ingress(mut s: Service, ips: &[&str]) -> Service {
    s.status = Some(
        serde_json::from_value(json!({
            "loadBalancer": {"ingress": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>()}
        }))
        .unwrap(),
    );
    s
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name)
}

/// Reconciles and feeds the written status back as "current" (what the API server would
/// then show).
fn step(core: &mut Core, s: &Service, current: &mut CurrentStatus) -> ServiceDecision {
    let d = core.reconcile(s, current);
    if let Some(w) = &d.write {
        *current = CurrentStatus {
            ingress: w.ingress.clone(),
            condition: w.condition.clone(),
        };
    }
    d
}

fn core_with(pools: Vec<IPAddressPool>) -> Core {
    let mut core = Core::new(false);
    let d = core.apply_config(&res(pools));
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    core
}

#[test]
fn allocation_writes_status_condition_and_one_event() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10-192.0.2.20"])]);
    let mut cur = CurrentStatus::default();
    let d = step(&mut core, &plain("web"), &mut cur);
    let w = d.write.expect("a status write");
    assert_eq!(w.service, key("web"));
    assert_eq!(w.ingress, vec![ip("192.0.2.10")]);
    assert_eq!(w.pool.as_deref(), Some("prod"));
    assert_eq!(
        w.condition,
        Some(AllocCondition {
            allocated: true,
            reason: "IPAllocated".into(),
            message: "assigned 192.0.2.10 from pool prod".into(),
        })
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, reasons::IP_ALLOCATED);
    assert!(!d.events[0].warning);
    assert_eq!(d.events[0].object.to_string(), "Service default/web");
    assert_eq!(d.failure, None);

    // Idempotent: the same Service with its status written gives nothing to do.
    let d = step(&mut core, &plain("web"), &mut cur);
    assert_eq!(d.write, None);
    assert!(d.events.is_empty());
}

#[test]
fn restored_addresses_are_kept_and_new_ones_do_not_take_them() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10-192.0.2.20"])]);
    let old = with_ingress(plain("old"), &["192.0.2.10"]);
    let events = core.restore(std::slice::from_ref(&old));
    assert!(events.is_empty(), "{events:?}");
    // A new Service reconciled first still cannot take the restored address.
    let mut cur = CurrentStatus::default();
    let d = step(&mut core, &plain("new"), &mut cur);
    assert_eq!(d.write.unwrap().ingress, vec![ip("192.0.2.11")]);
    // The restored Service keeps its address; only the condition is added (no IPAllocated
    // event: the address did not change).
    let mut cur = CurrentStatus::of_service(&old);
    let d = step(&mut core, &old, &mut cur);
    let w = d.write.unwrap();
    assert_eq!(w.ingress, vec![ip("192.0.2.10")]);
    assert!(w.condition.unwrap().allocated);
    assert!(d.events.is_empty(), "{:?}", d.events);
}

#[test]
fn pool_edit_never_moves_an_address_and_reports_outside_pool() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10-192.0.2.20"])]);
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("web"), &mut cur);
    assert_eq!(cur.ingress, vec![ip("192.0.2.10")]);

    // The pool is edited so that .10 is no longer in it.
    let d = core.apply_config(&res(vec![pool("prod", &["192.0.2.15-192.0.2.20"])]));
    assert!(d.pools_changed);
    assert_eq!(d.outside.len(), 1);
    assert_eq!(d.outside[0].ip, ip("192.0.2.10"));
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, reasons::IP_OUTSIDE_POOL);
    assert_eq!(d.events[0].object.to_string(), "Service default/web");

    let d = step(&mut core, &plain("web"), &mut cur);
    let w = d.write.expect("condition changes");
    assert_eq!(
        w.ingress,
        vec![ip("192.0.2.10")],
        "the address must not move"
    );
    let c = w.condition.unwrap();
    assert!(c.allocated);
    assert_eq!(c.reason, "IPOutsidePool");
    assert_eq!(w.pool, None);

    // Applying the same config again reports nothing new.
    let d = core.apply_config(&res(vec![pool("prod", &["192.0.2.15-192.0.2.20"])]));
    assert!(!d.pools_changed);
    assert!(d.events.is_empty());
}

#[test]
fn failure_messages_say_why() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10/32", "2001:db8::1/128"])]);
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("a"), &mut cur);

    // Exhausted.
    let mut cur = CurrentStatus::default();
    let d = step(&mut core, &plain("b"), &mut cur);
    let w = d.write.unwrap();
    assert!(w.ingress.is_empty());
    let c = w.condition.unwrap();
    assert!(!c.allocated);
    assert_eq!(c.reason, "PoolExhausted");
    assert_eq!(c.message, "pool prod has no free IPv4 address");
    assert_eq!(d.failure, Some("PoolExhausted"));
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, reasons::ALLOCATION_FAILED);
    assert!(d.events[0].warning);
    // Not repeated while nothing changes.
    let d = step(&mut core, &plain("b"), &mut cur);
    assert!(d.events.is_empty() && d.write.is_none());

    // IPv6 exhausted.
    let mut cur = CurrentStatus::default();
    let v6 = |n| svc("default", n, json!({"ipFamilies": ["IPv6"]}), json!({}));
    step(&mut core, &v6("six"), &mut cur);
    let mut cur = CurrentStatus::default();
    let d = step(&mut core, &v6("six2"), &mut cur);
    assert_eq!(
        d.write.unwrap().condition.unwrap().message,
        "pool prod has no free IPv6 address"
    );

    // Requested address held by another Service.
    let mut cur = CurrentStatus::default();
    let s = svc(
        "default",
        "want",
        json!({}),
        json!({"ferrolb.io/loadBalancerIPs": "192.0.2.10"}),
    );
    let d = step(&mut core, &s, &mut cur);
    assert_eq!(
        d.write.unwrap().condition.unwrap().message,
        "requested 192.0.2.10 is held by default/a"
    );
}

#[test]
fn namespace_restriction_is_explained() {
    let mut p = pool("prod", &["192.0.2.10/30"]);
    p.spec.service_allocation = Some(ferrolb_crds::v1alpha1::ServiceAllocation {
        namespaces: vec!["team-b".into()],
        ..Default::default()
    });
    let mut core = Core::new(false);
    let mut r = res(vec![p]);
    r.namespaces =
        vec![serde_json::from_value::<Namespace>(json!({"metadata": {"name": "team-a"}})).unwrap()];
    core.apply_config(&r);
    let mut cur = CurrentStatus::default();
    let d = step(
        &mut core,
        &svc("team-a", "web", json!({}), json!({})),
        &mut cur,
    );
    let c = d.write.unwrap().condition.unwrap();
    assert_eq!(c.reason, "NoEligiblePool");
    assert_eq!(c.message, "no pool serves namespace team-a");
    let mut cur = CurrentStatus::default();
    let d = step(
        &mut core,
        &svc("team-b", "web", json!({}), json!({})),
        &mut cur,
    );
    assert!(d.write.unwrap().condition.unwrap().allocated);
}

#[test]
fn class_filtering() {
    let p = || vec![pool("prod", &["192.0.2.10/30"])];
    let other = svc(
        "default",
        "other",
        json!({"loadBalancerClass": "example.com/lb"}),
        json!({}),
    );
    let ours = svc(
        "default",
        "ours",
        json!({"loadBalancerClass": "ferrolb.io/lb"}),
        json!({}),
    );
    // Another class, with an address some other implementation wrote: untouched.
    let mut core = core_with(p());
    let mut cur = CurrentStatus::of_service(&with_ingress(other.clone(), &["203.0.113.9"]));
    let d = step(&mut core, &other, &mut cur);
    assert_eq!(d.write, None);
    assert!(d.events.is_empty());
    assert!(!d.ours);
    assert!(core.allocator().assigned(&key("other")).is_none());

    // No class: ours by default, not with --lb-class-only.
    let mut cur = CurrentStatus::default();
    assert!(step(&mut core, &plain("noclass"), &mut cur).ours);
    let mut strict = Core::new(true);
    strict.apply_config(&res(p()));
    let mut cur = CurrentStatus::default();
    let d = step(&mut strict, &plain("noclass"), &mut cur);
    assert!(!d.ours && d.write.is_none());
    let mut cur = CurrentStatus::default();
    let d = step(&mut strict, &ours, &mut cur);
    assert!(d.ours);
    assert_eq!(d.write.unwrap().ingress, vec![ip("192.0.2.8")]);
}

#[test]
fn type_change_and_delete_release_the_address() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10/32"])]);
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("web"), &mut cur);
    assert_eq!(cur.ingress, vec![ip("192.0.2.10")]);

    // type: ClusterIP -> our status is removed, the address freed.
    let mut clusterip = plain("web");
    clusterip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    let d = step(&mut core, &clusterip, &mut cur);
    let w = d.write.expect("status cleared");
    assert!(w.ingress.is_empty());
    assert_eq!(w.condition, None);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, reasons::IP_RELEASED);
    assert_eq!(core.allocator().pool_usage("prod").unwrap().assigned_v4, 0);
    // Nothing more to do afterwards.
    let d = step(&mut core, &clusterip, &mut cur);
    assert_eq!(d.write, None);

    // The freed address goes to the next Service; deleting it frees it again.
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("next"), &mut cur);
    assert_eq!(cur.ingress, vec![ip("192.0.2.10")]);
    assert_eq!(core.release(&key("next")), vec![ip("192.0.2.10")]);
    assert_eq!(core.allocator().pool_usage("prod").unwrap().available_v4, 1);
}

#[test]
fn sharing_conflict_has_its_own_event() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10/32"])]);
    let share = |n| {
        svc(
            "default",
            n,
            json!({}),
            json!({"ferrolb.io/allow-shared-ip": "k", "ferrolb.io/loadBalancerIPs": "192.0.2.10"}),
        )
    };
    let mut cur = CurrentStatus::default();
    step(&mut core, &share("a"), &mut cur);
    let mut cur = CurrentStatus::default();
    let d = step(&mut core, &share("b"), &mut cur);
    let c = d.write.unwrap().condition.unwrap();
    assert_eq!(c.reason, "SharingConflict");
    assert_eq!(d.events[0].reason, reasons::SHARING_CONFLICT);
    assert!(
        c.message.contains("port TCP/80 already used by default/a"),
        "{}",
        c.message
    );
}

#[test]
fn invalid_annotation_is_reported_and_keeps_the_address() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10/30"])]);
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("web"), &mut cur);
    let bad = svc(
        "default",
        "web",
        json!({}),
        json!({"ferrolb.io/loadBalancerIPs": "not-an-ip"}),
    );
    let d = step(&mut core, &bad, &mut cur);
    let w = d.write.unwrap();
    assert_eq!(w.ingress, vec![ip("192.0.2.8")], "kept");
    let c = w.condition.unwrap();
    assert_eq!(c.reason, "InvalidRequest");
    assert!(c.message.contains("not-an-ip"), "{}", c.message);
    assert_eq!(d.events[0].reason, reasons::ALLOCATION_FAILED);
}

#[test]
fn config_errors_are_reported_once_and_last_good_pool_stays() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10/30"])]);
    let bad = || res(vec![pool("prod", &["192.0.2.20-192.0.2.10"])]);
    let d = core.apply_config(&bad());
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].kept_previous);
    assert!(d.errors_changed);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, reasons::INVALID_CONFIGURATION);
    assert_eq!(
        d.events[0].object.to_string(),
        "IPAddressPool ferrolb-system/prod"
    );
    assert!(!d.pools_changed, "the last good version stays in force");
    let d = core.apply_config(&bad());
    assert!(d.events.is_empty() && !d.errors_changed);
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("web"), &mut cur);
    assert_eq!(cur.ingress, vec![ip("192.0.2.8")]);
}

#[test]
fn restore_keeps_the_address_of_a_service_with_broken_annotations() {
    let mut core = core_with(vec![pool("prod", &["192.0.2.10/31"])]);
    let broken = with_ingress(
        svc(
            "default",
            "broken",
            json!({}),
            json!({"ferrolb.io/loadBalancerIPs": "not-an-ip"}),
        ),
        &["192.0.2.10"],
    );
    let other_class = with_ingress(
        svc(
            "default",
            "theirs",
            json!({"loadBalancerClass": "example.com/lb"}),
            json!({}),
        ),
        &["192.0.2.11"],
    );
    core.restore(&[broken, other_class]);
    assert_eq!(
        core.allocator().assigned(&key("broken")),
        Some(&[ip("192.0.2.10")][..])
    );
    assert_eq!(core.allocator().assigned(&key("theirs")), None);
    // So a new Service gets .11, not .10.
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("new"), &mut cur);
    assert_eq!(cur.ingress, vec![ip("192.0.2.11")]);
}

#[test]
fn a_pool_the_allocator_refuses_is_reported_and_the_others_apply() {
    let mut huge = pool("huge", &["10.0.0.0/7"]);
    huge.spec.avoid_buggy_ips = Some(true);
    let mut core = Core::new(false);
    let d = core.apply_config(&res(vec![huge.clone(), pool("prod", &["192.0.2.10/32"])]));
    assert!(d.pools_changed);
    let e = d
        .errors
        .iter()
        .find(|e| e.object.name == "huge")
        .unwrap_or_else(|| panic!("{:?}", d.errors));
    assert!(e.message.contains("avoidBuggyIPs"), "{e}");
    assert!(
        d.events
            .iter()
            .any(|ev| ev.reason == reasons::INVALID_CONFIGURATION && ev.object.name == "huge")
    );
    let mut cur = CurrentStatus::default();
    step(&mut core, &plain("web"), &mut cur);
    assert_eq!(cur.ingress, vec![ip("192.0.2.10")]);
    // Same config again: the error stays listed, no new Event.
    let d = core.apply_config(&res(vec![huge, pool("prod", &["192.0.2.10/32"])]));
    assert_eq!(d.errors.len(), 1);
    assert!(d.events.is_empty() && !d.errors_changed);
}

#[test]
fn overlapping_pools_are_one_config_error_naming_both_pools_and_the_field() {
    // The config function rejects the overlap; the allocator never sees it, so there is one
    // error (not a second "pools a and b overlap" from the allocator).
    let mut core = Core::new(false);
    let d = core.apply_config(&res(vec![
        pool("a", &["192.0.2.0/28"]),
        pool("b", &["198.51.100.0/30", "192.0.2.8/29"]),
    ]));
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert_eq!(
        d.errors[0].to_string(),
        "IPAddressPool ferrolb-system/b: spec.addresses[1] \"192.0.2.8/29\": overlaps \
         192.0.2.0/28 of IPAddressPool ferrolb-system/a"
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].reason, reasons::INVALID_CONFIGURATION);
    assert_eq!(
        d.events[0].object.to_string(),
        "IPAddressPool ferrolb-system/b"
    );
    assert_eq!(core.allocator().pool_of(ip("192.0.2.9")), Some("a"));
    assert_eq!(core.allocator().pool_of(ip("198.51.100.1")), None);
}
