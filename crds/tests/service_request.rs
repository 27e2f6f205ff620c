//! Service -> ServiceRequest: annotations (with MetalLB spellings), class, families, ports.

mod common;

use common::res;
use ferrolb_crds::ServiceRequest;
use ferrolb_crds::config::{Family, Kind};
use ferrolb_crds::service::{IpFamilyPolicy, LbClass, PortKey, Protocol, TrafficPolicy};
use std::net::IpAddr;

fn svc(annotations: &str, spec: &str) -> Result<ServiceRequest, Vec<ferrolb_crds::ConfigError>> {
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n  labels: {{app: web}}\n  annotations: {{{annotations}}}\nspec:\n  type: LoadBalancer\n  selector: {{app: web}}\n{spec}"
    );
    let r = res(&yaml);
    ServiceRequest::from_service(&r.services[0])
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn full_request() {
    let r = svc(
        "\"ferrolb.io/loadBalancerIPs\": \"192.0.2.10, 2001:db8::10\", \"ferrolb.io/address-pool\": prod, \"ferrolb.io/allow-shared-ip\": team-a",
        "  loadBalancerClass: ferrolb.io/lb\n  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n  clusterIPs: [\"2001:db8:1::5\", 10.96.0.5]\n  externalTrafficPolicy: Local\n  ports: [{port: 80}, {port: 53, protocol: UDP}]\n",
    )
    .unwrap();
    assert_eq!(r.key(), "shop/web");
    assert_eq!(r.requested_ips, ips(&["192.0.2.10", "2001:db8::10"]));
    assert_eq!(r.pool.as_deref(), Some("prod"));
    assert_eq!(r.sharing_key.as_deref(), Some("team-a"));
    assert_eq!(r.class, LbClass::Ours);
    assert_eq!(r.ip_family_policy, IpFamilyPolicy::RequireDualStack);
    assert_eq!(r.ip_families, [Family::V6, Family::V4]);
    assert_eq!(r.cluster_ips.len(), 2);
    assert_eq!(r.external_traffic_policy, TrafficPolicy::Local);
    assert_eq!(
        r.ports,
        [
            PortKey {
                protocol: Protocol::Tcp,
                port: 80
            },
            PortKey {
                protocol: Protocol::Udp,
                port: 53
            }
        ]
    );
    assert_eq!(r.backend_key(), "app=web");
    assert!(r.is_ours(true) && r.is_ours(false));
    assert!(r.alias_annotations.is_empty());
}

#[test]
fn metallb_spellings_are_aliases() {
    let r = svc(
        "\"metallb.universe.tf/loadBalancerIPs\": 192.0.2.11, \"metallb.io/address-pool\": prod, \"metallb.io/allow-shared-ip\": k",
        "",
    )
    .unwrap();
    assert_eq!(r.requested_ips, ips(&["192.0.2.11"]));
    assert_eq!(r.pool.as_deref(), Some("prod"));
    assert_eq!(r.sharing_key.as_deref(), Some("k"));
    assert_eq!(
        r.alias_annotations,
        [
            "metallb.universe.tf/loadBalancerIPs",
            "metallb.io/address-pool",
            "metallb.io/allow-shared-ip"
        ]
    );
    assert_eq!(r.class, LbClass::Unset);
    assert_eq!(r.allocated_from_pool, None);
    assert!(r.is_ours(false) && !r.is_ours(true));
    assert_eq!(r.backend_key(), "", "Cluster policy");
}

#[test]
fn conflicting_spellings_name_the_annotation() {
    let errs = svc(
        "\"ferrolb.io/address-pool\": a, \"metallb.io/address-pool\": b",
        "",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1);
    let e = &errs[0];
    assert_eq!(e.object.kind, Kind::Service);
    assert_eq!(
        (e.object.namespace.as_str(), e.object.name.as_str()),
        ("shop", "web")
    );
    assert_eq!(e.field, "metadata.annotations[metallb.io/address-pool]");
    assert_eq!(e.value.as_deref(), Some("b"));
    assert!(e.message.contains("ferrolb.io/address-pool"));
}

#[test]
fn same_value_under_two_spellings_is_fine() {
    let r = svc(
        "\"ferrolb.io/address-pool\": a, \"metallb.universe.tf/address-pool\": a",
        "",
    )
    .unwrap();
    assert_eq!(r.pool.as_deref(), Some("a"));
}

#[test]
fn spec_load_balancer_ip_is_honoured() {
    let r = svc("", "  loadBalancerIP: 198.51.100.7\n").unwrap();
    assert_eq!(r.requested_ips, ips(&["198.51.100.7"]));
}

#[test]
fn spec_load_balancer_ip_conflicting_with_annotation() {
    let errs = svc(
        "\"ferrolb.io/loadBalancerIPs\": 192.0.2.1",
        "  loadBalancerIP: 192.0.2.2\n",
    )
    .unwrap_err();
    assert_eq!(errs[0].field, "spec.loadBalancerIP");
    assert!(errs[0].message.contains("ferrolb.io/loadBalancerIPs"));
}

#[test]
fn bad_and_too_many_requested_ips() {
    let errs = svc("\"ferrolb.io/loadBalancerIPs\": \"192.0.2.1,banana\"", "").unwrap_err();
    assert_eq!(
        errs[0].field,
        "metadata.annotations[ferrolb.io/loadBalancerIPs]"
    );
    assert_eq!(errs[0].value.as_deref(), Some("banana"));
    let errs = svc(
        "\"ferrolb.io/loadBalancerIPs\": \"192.0.2.1,192.0.2.2\"",
        "",
    )
    .unwrap_err();
    assert!(errs[0].message.contains("different families"));
}

#[test]
fn requested_family_not_in_service_families() {
    let errs = svc(
        "\"ferrolb.io/loadBalancerIPs\": 2001:db8::1",
        "  ipFamilies: [IPv4]\n",
    )
    .unwrap_err();
    assert_eq!(errs[0].field, "spec.ipFamilies");
    assert_eq!(errs[0].value.as_deref(), Some("2001:db8::1"));
}

#[test]
fn other_class_and_other_types_are_not_ours() {
    let r = svc("", "  loadBalancerClass: example.com/other\n").unwrap();
    assert!(!r.is_ours(false));
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: d}\nspec: {type: ClusterIP}\n";
    let r = ServiceRequest::from_service(&res(yaml).services[0]).unwrap();
    assert!(!r.is_ours(false));
}

#[test]
fn allocated_pool_and_ingress_are_read_back() {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: d\n  annotations: {metallb.io/ip-allocated-from-pool: old}\nspec: {type: LoadBalancer}\nstatus:\n  loadBalancer:\n    ingress: [{ip: 192.0.2.9}, {hostname: x.example}, {ip: \"2001:db8::9\"}]\n";
    let r = ServiceRequest::from_service(&res(yaml).services[0]).unwrap();
    assert_eq!(r.allocated_from_pool.as_deref(), Some("old"));
    assert_eq!(r.ingress_ips, ips(&["192.0.2.9", "2001:db8::9"]));
}
