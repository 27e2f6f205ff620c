//! The whole system on a real API server: the controller and three speakers (the real
//! binaries, each speaker in its own node namespace, as the ServiceAccounts of install.yaml,
//! reaching kube-apiserver through the harness relay) and an FRR ToR (see
//! `ferrolb_tests::lab` and `ferrolb_tests::kube_env`). Nodes, EndpointSlices and speaker
//! Pods are created through the API by the test. One test, one API server, run in phases:
//! BGP ECMP, ETP Local, L2 ownership and failover, configuration errors, withdraw on delete,
//! API server outage, and no 403 for the speakers. Outcomes only; timings live in `bench/`
//! except the 2 s resync bound the issue asks for.

use std::time::{Duration, Instant};

use ferrolb_crds::v1alpha1::{ConfigurationResult, ConfigurationState, SpeakerState};
use ferrolb_tests::kube_env::{KubeEnv, SYSTEM_NAMESPACE, manifests::apply_yaml};
use ferrolb_tests::lab::{Lab, LabOptions, NODE_NAMES, node_ip};
use ferrolb_tests::{require_root, wait_until};
use k8s_openapi::api::core::v1::{Event, Node, Service};
use kube::api::{Api, DeleteParams, ListParams};
use tokio::runtime::Runtime;

const TEST: &str = "cluster_on_a_real_api_server";
const POLL: Duration = Duration::from_millis(100);
const HEARTBEAT_S: u64 = 2;

const CONFIG: &str = r#"
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: l2-pool, namespace: ferrolb-system}
spec:
  addresses: ["192.0.2.200-192.0.2.210"]
  autoAssign: false
---
apiVersion: ferrolb.io/v1alpha1
kind: L2Advertisement
metadata: {name: l2, namespace: ferrolb-system}
spec:
  ipAddressPools: [l2-pool]
---
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: ferrolb-system}
spec:
  addresses: ["203.0.113.0/28"]
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ferrolb-system}
spec:
  ipAddressPools: [bgp-pool]
---
apiVersion: ferrolb.io/v1alpha1
kind: BGPPeer
metadata: {name: tor, namespace: ferrolb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 192.0.2.1
  holdTime: 9s
  connectTime: 1s
"#;

/// A pool overlapping `bgp-pool`: valid for the API server (CEL), invalid for ferrolb.
const OVERLAP: &str = r#"
apiVersion: ferrolb.io/v1alpha1
kind: IPAddressPool
metadata: {name: overlap, namespace: ferrolb-system}
spec:
  addresses: ["203.0.113.8/29"]
"#;

/// Node `i` and its speaker Pod (labels of install.yaml's DaemonSet).
fn node_and_pod(i: usize) -> String {
    let n = NODE_NAMES[i];
    format!(
        r#"apiVersion: v1
kind: Node
metadata: {{name: {n}, labels: {{kubernetes.io/hostname: {n}}}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: ferrolb-speaker-{n}
  namespace: ferrolb-system
  labels: {{app.kubernetes.io/name: ferrolb, app.kubernetes.io/component: speaker}}
spec:
  nodeName: {n}
  hostNetwork: true
  containers: [{{name: speaker, image: ghcr.io/ferrolb/ferrolb:0.1.0}}]
"#
    )
}

/// A LoadBalancer Service in `ns` from `pool`, plus its EndpointSlice with a ready endpoint
/// on each of `nodes`.
fn service(ns: &str, name: &str, pool: &str, local: bool, nodes: &[usize]) -> String {
    let etp = if local { "Local" } else { "Cluster" };
    let eps: String = nodes
        .iter()
        .map(|&i| {
            format!(
                "- {{addresses: [{}], nodeName: {}, conditions: {{ready: true}}}}\n",
                node_ip(i),
                NODE_NAMES[i]
            )
        })
        .collect();
    let eps = if eps.is_empty() {
        "[]\n".to_string()
    } else {
        format!("\n{eps}")
    };
    format!(
        r#"apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  annotations: {{ferrolb.io/address-pool: {pool}}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: {etp}
  selector: {{app: {name}}}
  ports: [{{name: http, protocol: TCP, port: 8080, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: {ns}
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, protocol: TCP, port: 8080}}]
endpoints: {eps}"#
    )
}

/// The test's view of the API server: an admin client on its own runtime.
struct Cluster {
    rt: Runtime,
    admin: kube::Client,
}

impl Cluster {
    fn new(env: &KubeEnv) -> Cluster {
        let rt = Runtime::new().unwrap();
        let admin = rt.block_on(async { env.admin_client() });
        Cluster { rt, admin }
    }

    /// Server-side applies `yaml`; panics naming the object the server refused.
    fn apply(&self, yaml: &str) {
        for a in self
            .rt
            .block_on(apply_yaml(&self.admin, yaml, "default", false))
        {
            if let Err(e) = a.result {
                panic!("apply {}: {e}", a.what);
            }
        }
    }

    /// Marks the speaker Pod of node `i` Running and Ready with the node's IP.
    fn pod_ready(&self, i: usize) {
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.admin.clone(), SYSTEM_NAMESPACE);
        let status = serde_json::json!({"status": {
            "phase": "Running", "podIP": node_ip(i), "podIPs": [{"ip": node_ip(i)}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }});
        let name = format!("ferrolb-speaker-{}", NODE_NAMES[i]);
        self.rt
            .block_on(api.patch_status(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&status),
            ))
            .unwrap_or_else(|e| panic!("Pod {name} status: {e}"));
    }

    fn service(&self, ns: &str, name: &str) -> Option<Service> {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), ns);
        self.rt.block_on(api.get_opt(name)).ok().flatten()
    }

    /// The Service's first ingress IP, waited for (bounded).
    fn wait_ip(&self, ns: &str, name: &str, timeout: Duration) -> Option<String> {
        wait_until(timeout, POLL, || {
            let s = self.service(ns, name)?;
            s.status?.load_balancer?.ingress?.first()?.ip.clone()
        })
    }

    fn delete_service(&self, ns: &str, name: &str) {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), ns);
        self.rt
            .block_on(api.delete(name, &DeleteParams::default()))
            .unwrap_or_else(|e| panic!("delete Service {ns}/{name}: {e}"));
    }

    fn get<K>(&self, name: &str) -> Option<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.admin.clone(), SYSTEM_NAMESPACE);
        self.rt.block_on(api.get_opt(name)).ok().flatten()
    }

    fn node_uid(&self, name: &str) -> String {
        let api: Api<Node> = Api::all(self.admin.clone());
        let node = self.rt.block_on(api.get(name)).expect("Node");
        node.metadata.uid.expect("Node uid")
    }

    /// Events about the object with `uid`, as `kubectl describe` selects them (core/v1
    /// `involvedObject.uid`), from `reporter`: (reason, reporting instance, message).
    fn events_about(&self, ns: &str, uid: &str, reporter: &str) -> Vec<(String, String, String)> {
        let api: Api<Event> = Api::namespaced(self.admin.clone(), ns);
        let lp = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
        let list = self.rt.block_on(api.list(&lp)).expect("list events");
        list.items
            .into_iter()
            .filter(|e| e.reporting_component.as_deref() == Some(reporter))
            .map(|e| {
                (
                    e.reason.unwrap_or_default(),
                    e.reporting_instance.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// `kubectl describe KIND NAME` as the admin.
fn describe(env: &KubeEnv, ns: &str, what: &[&str]) -> String {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(env.admin_kubeconfig())
        .args(["-n", ns, "describe"])
        .args(what)
        .output()
        .expect("run kubectl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when the router's route to `ip` has exactly one next hop, via node `i`.
fn only_via(lab: &Lab, ip: &str, i: usize) -> bool {
    let r = lab.r.ip(&["route", "show", ip]).unwrap_or_default();
    r.contains(&format!("via {}", node_ip(i))) && lab.router_paths(ip) == 1
}

/// The speaker ServiceAccount's 403s in the audit log: how many were received while the API
/// server was down or starting (`from`..`to`), and the others (`verb URI at time`).
fn speaker_403s(
    env: &KubeEnv,
    from: k8s_openapi::jiff::Timestamp,
    to: k8s_openapi::jiff::Timestamp,
) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(env.audit_log()).unwrap_or_default();
    let mut starting = 0;
    let mut refused = Vec::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_speaker = e["user"]["username"]
            .as_str()
            .is_some_and(|u| u.ends_with(":ferrolb-speaker"));
        if e["stage"] != "ResponseComplete" || e["responseStatus"]["code"] != 403 || !is_speaker {
            continue;
        }
        let at = e["requestReceivedTimestamp"].as_str().unwrap_or_default();
        match at.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(t) if t >= from && t <= to => starting += 1,
            _ => refused.push(format!("{} {} at {at}", e["verb"], e["requestURI"])),
        }
    }
    (starting, refused)
}

#[test]
fn cluster_on_a_real_api_server() {
    if !require_root(TEST) || !KubeEnv::available(TEST) {
        return;
    }
    let t_start = Instant::now();
    let env = KubeEnv::start();
    let k = Cluster::new(&env);
    let ns = env.new_namespace("e2e");
    let mut lab = Lab::new(LabOptions {
        ipv6: false,
        ..LabOptions::default()
    });
    k.apply(CONFIG);
    for i in 0..3 {
        k.apply(&node_and_pod(i));
        k.pod_ready(i);
    }
    k.apply(&service(&ns, "web", "bgp-pool", false, &[0, 1, 2]));
    k.apply(&service(&ns, "loc", "bgp-pool", true, &[1]));
    k.apply(&service(&ns, "l2web", "l2-pool", false, &[0, 1, 2]));
    lab.start_controller_kube(&env);
    let heartbeat = HEARTBEAT_S.to_string();
    for i in 0..3 {
        lab.start_speaker_kube(i, &env, &["--state-heartbeat", &heartbeat]);
    }

    // BGP, ETP Cluster: three equal next hops in the router's FIB.
    let wait = Duration::from_secs(30);
    let web = k.wait_ip(&ns, "web", wait).expect("web got no IP");
    assert!(
        lab.wait_paths(&web, 3, wait),
        "no 3 ECMP paths to {web}: {}",
        lab.diag_kube()
    );

    // ETP Local follows the EndpointSlice: n2, then n3.
    let loc = k.wait_ip(&ns, "loc", wait).expect("loc got no IP");
    let via = |i, t| wait_until(t, POLL, || only_via(&lab, &loc, i).then_some(())).is_some();
    assert!(via(1, wait), "loc not only via n2: {}", lab.diag_kube());
    k.apply(&service(&ns, "loc", "bgp-pool", true, &[2]));
    assert!(
        via(2, Duration::from_secs(10)),
        "loc did not follow its endpoint to n3: {}",
        lab.diag_kube()
    );

    // L2: one owner answers; its L2Announced Event is on the Service (kubectl describe).
    let l2 = k.wait_ip(&ns, "l2web", wait).expect("l2web got no IP");
    lab.accept_on_nodes(&l2);
    let owner = wait_until(wait, Duration::from_millis(200), || {
        Lab::curl(&lab.cl2, &l2, None, "1")
    })
    .unwrap_or_else(|| panic!("{l2} never answered: {}", lab.diag_kube()));
    let described = wait_until(Duration::from_secs(10), POLL, || {
        let d = describe(&env, &ns, &["service", "l2web"]);
        d.contains(&format!("announced by node {owner}"))
            .then_some(d)
    });
    assert!(
        described.is_some(),
        "kubectl describe service l2web does not show {owner}'s L2Announced Event:\n{}",
        describe(&env, &ns, &["service", "l2web"])
    );
    let owners: Vec<SpeakerState> = NODE_NAMES.iter().filter_map(|n| k.get(n)).collect();
    let claiming: Vec<&str> = owners
        .iter()
        .filter(|s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.l2_summary.contains(&l2))
        })
        .map(|s| s.spec.node_name.as_str())
        .collect();
    assert_eq!(
        claiming,
        [owner.as_str()],
        "exactly one SpeakerState owns {l2}"
    );

    // SpeakerState goes with its Node (owner reference) and carries a heartbeat.
    let state: SpeakerState = k.get("n1").expect("SpeakerState n1");
    let refs = state.metadata.owner_references.unwrap_or_default();
    assert!(
        refs.iter()
            .any(|r| r.kind == "Node" && r.name == "n1" && r.uid == k.node_uid("n1")),
        "SpeakerState n1 not owned by Node n1: {refs:?}"
    );

    // An invalid object (an overlapping pool) is reported by every speaker in
    // ConfigurationState speaker-<node> and as an Event on the pool; routes stay.
    k.apply(OVERLAP);
    let pool_uid = wait_until(Duration::from_secs(10), POLL, || {
        k.get::<ferrolb_crds::v1alpha1::IPAddressPool>("overlap")?
            .metadata
            .uid
    })
    .expect("pool overlap");
    for n in NODE_NAMES {
        let invalid = wait_until(Duration::from_secs(10), POLL, || {
            let cs: ConfigurationState = k.get(&format!("speaker-{n}"))?;
            let st = cs.status?;
            (st.result == ConfigurationResult::Invalid
                && st
                    .errors
                    .iter()
                    .any(|e| e.name == "overlap" && e.field == "spec.addresses[0]"))
            .then_some(())
        });
        assert!(
            invalid.is_some(),
            "ConfigurationState speaker-{n} does not name pool overlap: {}",
            lab.diag_kube()
        );
    }
    let events = wait_until(Duration::from_secs(10), POLL, || {
        let ev = k.events_about(SYSTEM_NAMESPACE, &pool_uid, "ferrolb-speaker");
        (ev.len() >= 3).then_some(ev)
    });
    assert!(
        events.as_ref().is_some_and(|ev| ev
            .iter()
            .all(|(r, _, m)| r == "InvalidConfiguration" && m.contains("spec.addresses[0]"))),
        "InvalidConfiguration Events from the three speakers on pool overlap: {events:?}"
    );
    assert_eq!(lab.router_paths(&web), 3, "an invalid pool withdrew routes");
    let api: Api<ferrolb_crds::v1alpha1::IPAddressPool> =
        Api::namespaced(k.admin.clone(), SYSTEM_NAMESPACE);
    k.rt.block_on(api.delete("overlap", &DeleteParams::default()))
        .expect("delete overlap");
    let valid = wait_until(Duration::from_secs(10), POLL, || {
        let cs: ConfigurationState = k.get("speaker-n1")?;
        (cs.status?.result == ConfigurationResult::Valid).then_some(())
    });
    assert!(valid.is_some(), "speaker-n1 not Valid again");

    // The L2 owner is SIGKILLed (and its link goes down): another node takes over.
    let oi = NODE_NAMES.iter().position(|n| *n == owner).unwrap();
    lab.speakers[&owner].signal("KILL");
    lab.nodes[oi].ip(&["link", "set", "eth0", "down"]).unwrap();
    let new = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        Lab::curl(&lab.cl2, &l2, None, "0.3").filter(|n| *n != owner)
    });
    let new =
        new.unwrap_or_else(|| panic!("nobody took over {l2} from {owner}: {}", lab.diag_kube()));
    let live: Vec<usize> = (0..3).filter(|i| *i != oi).collect();

    // Heartbeat: the live speakers' lastUpdate keeps moving, the dead one's stops.
    let stamp = |n: &str| -> Option<k8s_openapi::jiff::Timestamp> {
        Some(k.get::<SpeakerState>(n)?.status?.last_update?.0)
    };
    let dead_before = stamp(&owner);
    let live_before = stamp(NODE_NAMES[live[0]]);
    std::thread::sleep(Duration::from_secs(HEARTBEAT_S * 2 + 1));
    assert_eq!(
        stamp(&owner),
        dead_before,
        "a SIGKILLed speaker cannot write"
    );
    assert!(
        stamp(NODE_NAMES[live[0]]) > live_before,
        "no heartbeat from a live speaker"
    );

    // Deleting the Service withdraws its route.
    k.delete_service(&ns, "web");
    assert!(
        lab.wait_paths(&web, 0, Duration::from_secs(10)),
        "{web} still routed after the Service was deleted: {}",
        lab.diag_kube()
    );

    // API server outage: SIGKILL, 10 s, restart. The speakers resync within 2 s of its
    // return (an EndpointSlice change made at once is routed), and a Service created then is
    // announced.
    let killed_at = k8s_openapi::jiff::Timestamp::now();
    env.kill_apiserver();
    std::thread::sleep(Duration::from_secs(10));
    env.restart_apiserver();
    let back = Instant::now();
    let back_at = k8s_openapi::jiff::Timestamp::now();
    let target = live[0];
    k.apply(&service(&ns, "loc", "bgp-pool", true, &[target]));
    let moved = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        only_via(&lab, &loc, target).then(|| back.elapsed())
    });
    let moved = moved.unwrap_or_else(|| {
        panic!(
            "loc never moved to {} after the outage: {}",
            NODE_NAMES[target],
            lab.diag_kube()
        )
    });
    assert!(
        moved <= Duration::from_secs(2),
        "speakers took {moved:?} after the API server's return (at {back_at}) to route an EndpointSlice change: {}",
        lab.diag_kube()
    );
    // The controller's own reconnect decides when `late` gets its IP (bounded generously:
    // that is the controller's business); from then on the speakers announce it at once.
    k.apply(&service(&ns, "late", "bgp-pool", false, &[0, 1, 2]));
    // A controller that lost its Lease during the outage goes back to standby in-process
    // and competes for it again once the API server is back (kubernetes::run); it does not
    // exit. Should it have exited anyway, its Deployment would restart it, so the test does.
    let mut restarted = false;
    let late = wait_until(Duration::from_secs(40), POLL, || {
        if !lab.controller.as_mut().is_some_and(|c| c.is_running()) && !restarted {
            eprintln!("controller exited during the outage; restarting it as its Deployment would");
            lab.start_controller_kube(&env);
            restarted = true;
        }
        let s = k.service(&ns, "late")?;
        s.status?.load_balancer?.ingress?.first()?.ip.clone()
    })
    .unwrap_or_else(|| panic!("late got no IP after the outage: {}", lab.diag_kube()));
    let late_ip_after = back.elapsed();
    assert!(
        lab.wait_paths(&late, live.len(), Duration::from_secs(5)),
        "{late} not announced by the {} live speakers after the outage: {}",
        live.len(),
        lab.diag_kube()
    );
    eprintln!(
        "outage: EndpointSlice change routed {moved:?}, late's IP {late_ip_after:?} after the API server returned"
    );

    // A speaker stopped with SIGTERM leaves a state that announces nothing (given the grace
    // period a Pod has: its shutdown withdraws first, then publishes; on a loaded machine that
    // took longer than the 2 s of a plain stop, which then SIGKILLed it mid-way).
    let last = NODE_NAMES[live[1]];
    let stopping = Instant::now();
    lab.speakers
        .get_mut(last)
        .unwrap()
        .stop_within(Duration::from_secs(15));
    eprintln!("speaker {last} stopped in {:?}", stopping.elapsed());
    let st: SpeakerState = k.get(last).expect("SpeakerState");
    let st = st.status.unwrap_or_default();
    assert!(
        st.bgp_peers.is_empty() && st.l2_addresses.is_empty() && st.announced_prefixes == 0,
        "stopped speaker {last} still claims something: {st:?}\nits log ends:\n{}",
        lab.log_tail(last, 30)
    );

    // RBAC: not one request of the speakers was refused — except while the restarted API
    // server was starting (before /readyz): it serves requests before its RBAC caches are
    // filled and refuses them all; the speakers retry (seen with timestamps, and counted).
    let (starting, refused) = speaker_403s(&env, killed_at, back_at);
    assert!(
        refused.is_empty(),
        "403s for the speaker ServiceAccount outside the API server's start-up:\n{}",
        refused.join("\n")
    );
    eprintln!(
        "403s for the speakers while the API server was starting (before /readyz): {starting}"
    );
    let others: Vec<String> = env
        .forbidden_requests()
        .into_iter()
        .filter(|r| !r.contains(":ferrolb-speaker "))
        .collect();
    if !others.is_empty() {
        eprintln!("403s for other users (not this test's subject): {others:?}");
    }
    eprintln!("{TEST}: {:?} wall, new L2 owner {new}", t_start.elapsed());
}
