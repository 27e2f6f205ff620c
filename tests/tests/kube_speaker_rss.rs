//! Benchmark (ignored; run by `bench/kube/speaker_rss.sh`): the speaker's resident memory on
//! a real API server with N LoadBalancer Services (default 10,000; `FERROLB_BENCH_SERVICES`)
//! announced to 4 BGP peers. The Services, their EndpointSlices (one ready endpoint on the
//! node) and their `status.loadBalancer` are written by the test (no controller: this
//! measures the speaker alone), from 198.18.0.0/15. One speaker, node n1 of the lab; the FRR
//! router takes four sessions from four source addresses of n1. Prints one line of numbers.

use std::time::{Duration, Instant};

use ferrolb_tests::kube_env::{KubeEnv, SYSTEM_NAMESPACE, manifests::apply_yaml};
use ferrolb_tests::lab::{Lab, LabOptions};
use ferrolb_tests::{require_root, wait_until};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};

const PEERS: [(&str, &str); 4] = [
    ("192.0.2.1", "192.0.2.11"),
    ("192.0.2.2", "192.0.2.61"),
    ("192.0.2.3", "192.0.2.62"),
    ("192.0.2.4", "192.0.2.63"),
];

fn config() -> String {
    let mut y = String::from(
        r#"apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bulk, namespace: ferrolb-system}
spec:
  addresses: ["198.18.0.0/17"]
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bulk, namespace: ferrolb-system}
spec:
  ipAddressPools: [bulk]
---
apiVersion: v1
kind: Node
metadata: {name: n1}
"#,
    );
    for (i, (peer, source)) in PEERS.iter().enumerate() {
        y.push_str(&format!(
            "---\napiVersion: ferrolb.io/v1alpha1\nkind: BGPPeer\nmetadata: {{name: p{i}, namespace: ferrolb-system}}\n\
             spec: {{myASN: 64513, peerASN: 64512, peerAddress: \"{peer}\", sourceAddress: \"{source}\", holdTime: 90s, connectTime: 1s}}\n"
        ));
    }
    y
}

fn ip_of(i: u32) -> String {
    format!("198.18.{}.{}", i / 256, i % 256)
}

async fn create_one(client: kube::Client, ns: String, i: u32) {
    let name = format!("s{i}");
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                 "selector": {"app": name},
                 "ports": [{"name": "http", "protocol": "TCP", "port": 80}]},
    }))
    .unwrap();
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-1"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
        "endpoints": [{"addresses": ["192.0.2.11"], "nodeName": "n1", "conditions": {"ready": true}}],
    }))
    .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client, &ns);
    let pp = PostParams::default();
    for attempt in 0.. {
        let r = async {
            // A retry after a partial success finds the object there: fine.
            let exists =
                |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.is_already_exists());
            match services.create(&pp, &svc).await {
                Err(e) if !exists(&e) => return Err(e),
                _ => {}
            }
            match slices.create(&pp, &slice).await {
                Err(e) if !exists(&e) => return Err(e),
                _ => {}
            }
            let status =
                serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": ip_of(i)}]}}});
            services
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await?;
            Ok::<(), kube::Error>(())
        }
        .await;
        match r {
            Ok(()) => return,
            Err(e) if attempt < 5 => {
                eprintln!("s{i}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("s{i}: {e}"),
        }
    }
}

/// `VmRSS`, `VmHWM`, `RssAnon` (heap, stacks) and `RssFile` (the binary's pages) of `pid`,
/// in KiB.
fn rss_kib(pid: u32) -> (u64, u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:"),
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:"),
    )
}

#[test]
#[ignore = "benchmark: bench/kube/speaker_rss.sh"]
fn speaker_rss_with_many_services_and_four_peers() {
    let test = "speaker_rss_with_many_services_and_four_peers";
    if !require_root(test) || !KubeEnv::available(test) {
        return;
    }
    let n: u32 = std::env::var("FERROLB_BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let env = KubeEnv::start();
    let mut lab = Lab::new(LabOptions {
        ipv6: false,
        ..LabOptions::default()
    });
    for (peer, source) in &PEERS[1..] {
        lab.r
            .ip(&["addr", "add", &format!("{peer}/24"), "dev", "br0"])
            .unwrap();
        lab.nodes[0]
            .ip(&["addr", "add", &format!("{source}/24"), "dev", "eth0"])
            .unwrap();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = rt.block_on(async { env.admin_client() });
    for a in rt.block_on(apply_yaml(&admin, &config(), SYSTEM_NAMESPACE, false)) {
        a.result.unwrap_or_else(|e| panic!("{}: {e}", a.what));
    }
    let ns = env.new_namespace("bulk");
    let t0 = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            while set.len() >= 64 {
                set.join_next().await.unwrap().unwrap();
            }
            set.spawn(create_one(admin.clone(), ns.clone(), i));
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    });
    let created = t0.elapsed();

    let t1 = Instant::now();
    lab.start_speaker_kube(0, &env, &[]);
    let pid = lab.speakers["n1"].pid();
    let all = wait_until(Duration::from_secs(300), Duration::from_secs(1), || {
        let sum = lab.frr.vtysh(&["show bgp ipv4 unicast summary json"]);
        let v: serde_json::Value = serde_json::from_str(&sum).ok()?;
        let peers = v["peers"].as_object()?;
        let full = peers
            .values()
            .filter(|p| p["pfxRcd"].as_u64() == Some(u64::from(n)))
            .count();
        (full == PEERS.len()).then_some(())
    });
    let announced = t1.elapsed();
    assert!(
        all.is_some(),
        "not every peer got {n} prefixes: {}",
        lab.diag_kube()
    );
    // Steady state: a few heartbeats and polls later.
    std::thread::sleep(Duration::from_secs(5));
    let (rss, hwm, anon, file) = rss_kib(pid);
    println!(
        "speaker_rss services={n} peers={} rss_kib={rss} peak_kib={hwm} anon_kib={anon} file_kib={file} create_s={:.1} announce_s={:.1}",
        PEERS.len(),
        created.as_secs_f64(),
        announced.as_secs_f64()
    );
}
