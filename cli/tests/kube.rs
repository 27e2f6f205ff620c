//! `kubectl ferrolb` against a real kube-apiserver (tests/src/kube_env.rs): the objects the
//! controller and speakers would write (pool status, Service status and condition, an Event,
//! SpeakerState, ConfigurationState) are created through the API, then the plugin binary reads
//! them with a kubeconfig, as an operator runs it.
mod common;

use ferrolb_tests::kube_env::{KubeEnv, SYSTEM_NAMESPACE};
use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

fn ferrolb(kind: &str) -> ApiResource {
    let plural = format!("{}s", kind.to_lowercase());
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ferrolb.io", "v1alpha1", kind),
        &plural,
    )
}

async fn create(client: &kube::Client, ns: &str, obj: serde_json::Value) {
    let kind = obj["kind"].as_str().unwrap().to_string();
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let status = obj.get("status").cloned();
    let (api, status_api): (Api<DynamicObject>, bool) = match kind.as_str() {
        "Service" | "Event" => {
            let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", &kind));
            (
                Api::namespaced_with(client.clone(), ns, &ar),
                kind == "Service",
            )
        }
        k => (Api::namespaced_with(client.clone(), ns, &ferrolb(k)), true),
    };
    let obj: DynamicObject = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    if let (Some(status), true) = (status, status_api) {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap();
    }
}

fn plugin(env: &KubeEnv, args: &[&str]) -> String {
    let kubeconfig = env.admin_kubeconfig();
    common::plugin(args, &[("KUBECONFIG", kubeconfig.as_os_str())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_why_from_the_api_server() {
    if !KubeEnv::available("status_and_why_from_the_api_server") {
        return;
    }
    let env = KubeEnv::shared();
    let shop = env.new_namespace("cli-shop");
    let other = env.new_namespace("cli-other");
    let c = env.admin_client();
    let sys = SYSTEM_NAMESPACE;
    create(&c, sys, json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "IPAddressPool",
        "metadata": {"name": "cli-pool"},
        "spec": {"addresses": ["192.0.2.40-192.0.2.41"], "serviceAllocation": {"namespaces": [shop]}},
        "status": {"assignedIPv4": 1, "availableIPv4": 1, "assignedIPv6": 0, "availableIPv6": 0}
    })).await;
    create(
        &c,
        sys,
        json!({
            "apiVersion": "ferrolb.io/v1alpha1", "kind": "L2Advertisement",
            "metadata": {"name": "cli-l2"}, "spec": {}
        }),
    )
    .await;
    create(&c, &shop, json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {
            "loadBalancer": {"ingress": [{"ip": "192.0.2.40"}]},
            "conditions": [{"type": "ferrolb.io/IPAllocated", "status": "True", "reason": "IPAllocated",
                "message": "assigned 192.0.2.40 from pool cli-pool", "lastTransitionTime": "2026-12-04T09:00:00Z"}]
        }
    })).await;
    create(
        &c,
        &other,
        json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"conditions": [{"type": "ferrolb.io/IPAllocated", "status": "False",
                "reason": "NoPoolAvailable", "message": "no pool serves namespace",
                "lastTransitionTime": "2026-12-04T09:00:00Z"}]}
        }),
    )
    .await;
    create(
        &c,
        &other,
        json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "api.1"},
            "involvedObject": {"kind": "Service", "name": "api", "namespace": other},
            "type": "Warning", "reason": "AllocationFailed", "message": "no pool serves namespace",
            "source": {"component": "ferrolb-controller"}
        }),
    )
    .await;
    create(&c, sys, json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "SpeakerState",
        "metadata": {"name": "node-a"}, "spec": {"nodeName": "node-a"},
        "status": {
            "bgpPeers": [{"name": "tor", "address": "203.0.113.1", "state": "Active",
                "lastError": "connection refused"}],
            "l2Addresses": [{"ip": "192.0.2.40", "interfaces": ["eth0"], "services": [format!("{shop}/web")]}],
            "l2Summary": "192.0.2.40"
        }
    })).await;
    create(&c, sys, json!({
        "apiVersion": "ferrolb.io/v1alpha1", "kind": "ConfigurationState",
        "metadata": {"name": "controller"}, "spec": {"component": "controller"},
        "status": {"result": "Invalid", "errorCount": 1, "errors": [{"kind": "IPAddressPool",
            "namespace": sys, "name": "typo", "field": "spec.addresses[0]", "message": "range start after end"}]}
    })).await;
    // Created through the API, visible to a list.
    let events: Api<Event> = Api::namespaced(c.clone(), &other);
    assert_eq!(
        events.list(&Default::default()).await.unwrap().items.len(),
        1
    );
    let svcs: Api<Service> = Api::namespaced(c.clone(), &shop);
    assert!(svcs.get("web").await.unwrap().status.is_some());

    let json: serde_json::Value =
        serde_json::from_str(&plugin(env, &["status", "-o", "json"])).unwrap();
    let pool = json["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cli-pool")
        .unwrap();
    assert_eq!(
        (pool["ipv4Used"].as_u64(), pool["ipv4Free"].as_u64()),
        (Some(1), Some(1)),
        "{json:#}"
    );
    let services = json["services"].as_array().unwrap();
    let web = services
        .iter()
        .find(|s| s["namespace"] == shop.as_str())
        .unwrap();
    assert_eq!(web["ips"][0], "192.0.2.40");
    assert_eq!(web["l2Nodes"][0], "node-a (eth0)");
    let api = services
        .iter()
        .find(|s| s["namespace"] == other.as_str())
        .unwrap();
    assert_eq!(api["state"], "NoPoolAvailable");
    let session = json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node"] == "node-a")
        .unwrap();
    assert_eq!(session["lastError"], "connection refused");
    assert!(
        json["configErrors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["object"] == format!("IPAddressPool {sys}/typo")),
        "{json:#}"
    );

    let why = plugin(env, &["why", &format!("{other}/api")]);
    assert!(why.contains("AllocationFailed"), "{why}");
    assert!(
        why.contains(&format!("namespace \"{other}\" is not allowed")),
        "{why}"
    );
}
