//! `kubectl ferrolb --manifests DIR` on a status directory written by the real controller
//! (its standalone loop, in-process, as controller/tests/standalone.rs runs it), read by the
//! real plugin binary.
mod common;

use std::path::Path;
use std::time::Duration;

use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::standalone::{StandaloneOptions, run};
use ferrolb_crds::standalone::{STATUS_FILE, StandaloneStatus};
use ferrolb_tests::lab::TempDir;

const MANIFESTS: &str = "\
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: shop-pool, namespace: ferrolb-system}
spec:
  addresses: [192.0.2.10-192.0.2.11]
  serviceAllocation: {namespaces: [shop]}
---
apiVersion: ferrolb.io/v1alpha1
kind: L2Advertisement
metadata: {name: l2, namespace: ferrolb-system}
spec: {}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: other}
spec: {type: LoadBalancer, ports: [{port: 80}]}
";

const BROKEN: &str = "\
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bad, namespace: ferrolb-system}
spec: {addresses: [192.0.2.20-192.0.2.19]}
";

fn plugin(dir: &Path, args: &[&str]) -> String {
    let mut all = args.to_vec();
    let dir = dir.to_str().unwrap();
    all.extend(["--manifests", dir]);
    common::plugin(&all, &[])
}

#[tokio::test]
async fn status_and_why_on_a_directory_the_controller_wrote() {
    let dir = TempDir::new("cli-standalone");
    std::fs::write(dir.path().join("config.yaml"), MANIFESTS).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), BROKEN).unwrap();
    let opts = StandaloneOptions::new(dir.path());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(
        opts,
        Metrics::default(),
        ferrolb_telemetry::Health::default(),
        async move {
            let _ = rx.await;
        },
    ));
    // Bounded: 500 x 10 ms.
    let mut done = false;
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(dir.path().join(STATUS_FILE))
            && let Ok(st) = serde_saphyr::from_str::<StandaloneStatus>(&text)
            && st
                .service("shop", "web")
                .is_some_and(|s| !s.ingress.is_empty())
            && st.service("other", "api").is_some()
        {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = std::fs::read_to_string(dir.path().join(STATUS_FILE)).unwrap_or_default();
    assert!(
        done,
        "the controller never wrote the expected status:\n{status}"
    );
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&plugin(dir.path(), &["status", "-o", "json"])).unwrap();
    assert_eq!(json["pools"][0]["name"], "shop-pool", "{json:#}");
    assert_eq!(json["pools"][0]["ipv4Used"], 1, "{json:#}");
    assert_eq!(json["pools"][0]["ipv4Free"], 1, "{json:#}");
    let services = json["services"].as_array().unwrap();
    let web = services.iter().find(|s| s["name"] == "web").unwrap();
    assert_eq!(web["ips"][0], "192.0.2.10", "{json:#}");
    assert_eq!(web["state"], "IPAllocated");
    let api = services.iter().find(|s| s["name"] == "api").unwrap();
    assert_ne!(api["state"], "IPAllocated", "{json:#}");
    let errors = json["configErrors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["object"].as_str().unwrap().contains("bad")
                || e["message"].as_str().unwrap().contains("bad")),
        "{json:#}"
    );

    let table = plugin(dir.path(), &["status"]);
    assert!(
        table.contains("shop/web") && table.contains("192.0.2.10"),
        "{table}"
    );

    let why = plugin(dir.path(), &["why", "other/api"]);
    assert!(why.contains("namespace \"other\" is not allowed"), "{why}");
    let yaml = plugin(dir.path(), &["why", "other/api", "-o", "yaml"]);
    assert!(yaml.contains("usable: false"), "{yaml}");
}
