//! The slim copy must decide exactly like the whole Service: same request (or the same
//! errors), same current status, same identity.

use ferrolb_crds::service::ServiceRequest;
use serde_json::{Value, json};

use super::*;
use crate::decide::CurrentStatus;

fn services() -> Vec<Value> {
    let rich = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "0b5c1f0e-8d5a-4c55-9f3e-2f1b7c9d0a11",
            "resourceVersion": "4711", "generation": 3, "creationTimestamp": "2026-12-04T10:00:00Z",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {
                "ferrolb.io/address-pool": "public",
                "metallb.io/allow-shared-ip": "k1",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"huge\": true}",
                "unrelated.example/x": "y"
            },
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            "finalizers": ["service.kubernetes.io/load-balancer-cleanup"]
        },
        "spec": {
            "type": "LoadBalancer", "loadBalancerClass": "ferrolb.io/lb",
            "loadBalancerIP": "192.0.2.10",
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
            "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None", "healthCheckNodePort": 31000,
            "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"],
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080},
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                {"port": 9000}
            ]
        },
        "status": {
            "loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "VIP"}, {"hostname": "lb.example"}]},
            "conditions": [
                {"type": "other.example/Thing", "status": "True", "reason": "X", "message": "",
                 "lastTransitionTime": "2026-12-04T10:00:00Z"},
                {"type": "ferrolb.io/IPAllocated", "status": "True", "reason": "IPAllocated",
                 "message": "192.0.2.10 from public", "lastTransitionTime": "2026-12-04T10:00:01Z"}
            ]
        }
    });
    let bad = json!({
        "metadata": {"name": "bad", "namespace": "default",
                     "annotations": {"ferrolb.io/loadBalancerIPs": "not-an-ip"}},
        "spec": {"type": "LoadBalancer", "ipFamilyPolicy": "Sometimes",
                 "ports": [{"port": 80, "protocol": "ICMP"}]}
    });
    let bare = json!({"metadata": {"name": "bare"}});
    let cluster_ip = json!({
        "metadata": {"name": "cip", "namespace": "default"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1"},
        "status": {"loadBalancer": {}}
    });
    vec![rich, bad, bare, cluster_ip]
}

#[test]
fn the_slim_copy_decides_like_the_whole_service() {
    for v in services() {
        let full: Service = serde_json::from_value(v.clone()).unwrap();
        let slim: SlimService = serde_json::from_value(v).unwrap();
        let back = slim.to_service();
        let name = full.metadata.name.clone();
        assert_eq!(
            ServiceRequest::from_service(&back),
            ServiceRequest::from_service(&full),
            "{name:?}"
        );
        assert_eq!(
            CurrentStatus::of_service(&back),
            CurrentStatus::of_service(&full),
            "{name:?}"
        );
        assert_eq!(back.metadata.name, full.metadata.name);
        assert_eq!(back.metadata.namespace, full.metadata.namespace);
        assert_eq!(back.metadata.uid, full.metadata.uid);
        assert_eq!(
            back.metadata.resource_version,
            full.metadata.resource_version
        );
        assert_eq!(back.metadata.labels, full.metadata.labels);
        assert_eq!(
            back.spec.as_ref().and_then(|s| s.type_.clone()),
            full.spec.as_ref().and_then(|s| s.type_.clone())
        );
    }
}

#[test]
fn the_rich_service_parses_and_keeps_only_what_is_read() {
    let v = services().remove(0);
    let slim: SlimService = serde_json::from_value(v).unwrap();
    let req = ServiceRequest::from_service(&slim.to_service()).expect("valid");
    assert_eq!(req.ports.len(), 3);
    assert_eq!(req.pool.as_deref(), Some("public"));
    assert_eq!(
        req.ingress_ips,
        vec!["192.0.2.10".parse::<std::net::IpAddr>().unwrap()]
    );
    let back = slim.to_service();
    let a = back.metadata.annotations.unwrap();
    assert!(!a.contains_key(LAST_APPLIED));
    assert_eq!(a.len(), 3);
    assert!(back.metadata.managed_fields.is_none());
    assert!(back.metadata.finalizers.is_none());
    let cond = back.status.unwrap().conditions.unwrap();
    assert_eq!(cond.len(), 1, "only the controller's own condition is kept");
    assert_eq!(cond[0].type_, CONDITION_TYPE);
}

#[test]
fn it_is_keyed_by_namespace_and_name_and_keeps_its_identity() {
    let slim: SlimService = serde_json::from_value(services().remove(0)).unwrap();
    assert_eq!(slim.key(), "shop/web");
    assert_eq!((slim.namespace(), slim.name()), ("shop", "web"));
    assert_eq!(slim.service_key(), ServiceKey::new("shop", "web"));
    assert_eq!(slim.uid(), Some("0b5c1f0e-8d5a-4c55-9f3e-2f1b7c9d0a11"));
    assert_eq!(slim.resource_version(), Some("4711"));
    let bare: SlimService = serde_json::from_value(json!({"metadata": {"name": "bare"}})).unwrap();
    assert_eq!(
        (bare.key(), bare.namespace(), bare.name()),
        ("/bare", "", "bare")
    );
    assert_eq!(bare.to_service().metadata.namespace, None);
}
