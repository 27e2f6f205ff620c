//! Helpers of `kube_controller.rs` (and of the bench in `bench/kube/`): the controller as a
//! child process, Services and pools through the admin client, polling with bounded waits.

#![allow(dead_code)] // each user takes a part

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_crds::v1alpha1::IPAddressPool;
use ferrolb_tests::kube_env::{KubeEnv, SYSTEM_NAMESPACE};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The controller binary, built once per test process (so a stale binary is never tested);
/// `FERROLB_TEST_CONTROLLER_BIN` runs these tests against another build instead.
pub fn controller_bin() -> PathBuf {
    match std::env::var_os("FERROLB_TEST_CONTROLLER_BIN") {
        Some(p) => PathBuf::from(p),
        None => ferrolb_tests::lab::bin("ferrolb-controller"),
    }
}

/// A `ferrolb-controller` process as the controller's ServiceAccount; SIGKILLed (by PID) on
/// drop.
pub struct Controller {
    child: Option<Child>,
    pub identity: String,
    pub log: PathBuf,
}

impl Controller {
    /// Starts the binary with `--kubeconfig` (the ServiceAccount's), `POD_NAMESPACE` (as
    /// install.yaml sets it) and `--pod-name identity`; logs go to a file in the env's dir.
    pub fn start(env: &KubeEnv, identity: &str) -> Controller {
        Self::start_with(env, identity, &[])
    }

    /// [`Controller::start`] with extra environment variables.
    pub fn start_with(env: &KubeEnv, identity: &str, vars: &[(&str, &str)]) -> Controller {
        let log = env.dir().join(format!("controller-{identity}.log"));
        let out = std::fs::File::create(&log).expect("create the controller log");
        let err = out.try_clone().expect("clone the log handle");
        let mut cmd = Command::new(controller_bin());
        cmd.arg("--kubeconfig")
            .arg(env.controller_kubeconfig())
            .args(["--metrics-addr", "127.0.0.1:0", "--pod-name", identity])
            .env("POD_NAMESPACE", SYSTEM_NAMESPACE)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start ferrolb-controller");
        Controller {
            child: Some(child),
            identity: identity.to_string(),
            log,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL (no Lease release).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (releases the Lease), then waits up to 10 s for the exit.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if matches!(c.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!(
            "controller {} ignored SIGTERM for 10 s:\n{}",
            self.identity,
            self.log_tail()
        );
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_alive(&self) {
        let mut c = self.child.as_ref().map(|c| c.id());
        if let Some(pid) = c.take() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|s| s.split(' ').next());
            assert!(
                matches!(state, Some(s) if s != "Z"),
                "controller {} exited:\n{}",
                self.identity,
                self.log_tail()
            );
        }
    }

    /// The last 40 lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Server-side applies IPAddressPool `name` in ferrolb-system with `spec`.
pub async fn apply_pool(client: &Client, name: &str, spec: Value) {
    let api: Api<IPAddressPool> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let obj = json!({"apiVersion": "ferrolb.io/v1alpha1", "kind": "IPAddressPool",
                     "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE}, "spec": spec});
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply IPAddressPool {name}: {e}"));
}

pub async fn delete_pool(client: &Client, name: &str) {
    let api: Api<IPAddressPool> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    api.delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete IPAddressPool {name}: {e}"));
}

/// The Service object: `type: LoadBalancer`, TCP `port`, `annotations`, extra `spec` fields.
pub fn service_object(ns: &str, name: &str, annotations: Value, spec: Value, port: u16) -> Service {
    let mut s = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "ports": [{"port": port, "protocol": "TCP"}]}});
    if let Value::Object(extra) = spec {
        for (k, v) in extra {
            s["spec"][k] = v;
        }
    }
    serde_json::from_value(s).expect("a Service")
}

pub async fn create_service(
    client: &Client,
    ns: &str,
    name: &str,
    annotations: Value,
    spec: Value,
) {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    api.create(
        &PostParams::default(),
        &service_object(ns, name, annotations, spec, 80),
    )
    .await
    .unwrap_or_else(|e| panic!("create Service {ns}/{name}: {e}"));
}

pub async fn create_service_ports(
    client: &Client,
    ns: &str,
    name: &str,
    annotations: Value,
    port: u16,
) {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc = service_object(ns, name, annotations, json!({}), port);
    api.create(&PostParams::default(), &svc)
        .await
        .unwrap_or_else(|e| panic!("create Service {ns}/{name}: {e}"));
}

/// Creates `names` in `ns` (without NodePorts) from `tasks` concurrent tasks, each with its
/// own admin client (its own connections). A create the API server answers with 429/5xx is retried (at most
/// 20 times per Service).
pub async fn create_concurrently(env: &KubeEnv, ns: &str, names: &[String], tasks: usize) {
    let mut set = tokio::task::JoinSet::new();
    for chunk in 0..tasks {
        let mine: Vec<String> = names.iter().skip(chunk).step_by(tasks).cloned().collect();
        let client = env.admin_client();
        let ns = ns.to_string();
        set.spawn(async move {
            let api: Api<Service> = Api::namespaced(client, &ns);
            for n in mine {
                // No NodePort: the API server has only 2768 of them (bench: 10,000 Services).
                let spec = json!({"allocateLoadBalancerNodePorts": false});
                let svc = service_object(&ns, &n, json!({}), spec, 80);
                let mut tries = 0;
                loop {
                    match api.create(&PostParams::default(), &svc).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => break,
                        Err(e) if tries < 20 => {
                            tries += 1;
                            tracing_free_sleep(e, tries).await;
                        }
                        Err(e) => panic!("create Service {ns}/{n}: {e}"),
                    }
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("create task");
    }
}

async fn tracing_free_sleep(e: kube::Error, tries: u32) {
    eprintln!("create retried ({tries}): {e}");
    tokio::time::sleep(Duration::from_millis(50 * u64::from(tries))).await;
}

pub async fn get_service(client: &Client, ns: &str, name: &str) -> Service {
    Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get Service {ns}/{name}: {e}"))
}

/// `status.loadBalancer.ingress[].ip`.
pub fn ingress(s: &Service) -> Vec<IpAddr> {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|l| {
            l.iter()
                .filter_map(|i| i.ip.as_ref()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (polling every 100 ms, at most `limit`) until every Service of `names` in `ns` has
/// an address; returns them. Panics with the controller's log on timeout.
pub async fn wait_ips(
    client: &Client,
    ns: &str,
    names: &[String],
    limit: Duration,
    ctl: &Controller,
) -> BTreeMap<String, Vec<IpAddr>> {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let want: BTreeSet<&String> = names.iter().collect();
    let t0 = Instant::now();
    let mut missing = want.len();
    loop {
        if let Ok(list) = api.list(&ListParams::default()).await {
            let got: BTreeMap<String, Vec<IpAddr>> = list
                .items
                .iter()
                .filter(|s| s.metadata.name.as_ref().is_some_and(|n| want.contains(n)))
                .map(|s| (s.metadata.name.clone().unwrap_or_default(), ingress(s)))
                .filter(|(_, ips)| !ips.is_empty())
                .collect();
            if got.len() == want.len() {
                return got;
            }
            missing = want.len() - got.len();
        }
        assert!(
            t0.elapsed() < limit,
            "{missing} of {} Services in {ns} have no address after {limit:?}; controller {}:\n{}",
            want.len(),
            ctl.identity,
            ctl.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `ferrolb.io/IPAllocated` condition.
#[derive(Debug, Clone)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

pub fn condition(s: &Service) -> Option<Condition> {
    let c = s
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ferrolb.io/IPAllocated")?;
    Some(Condition {
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    })
}

/// Waits (at most 15 s) until the Service's condition satisfies `pred`.
pub async fn wait_condition(
    client: &Client,
    ns: &str,
    name: &str,
    pred: impl Fn(&Condition) -> bool,
    ctl: &Controller,
) -> Condition {
    let t0 = Instant::now();
    loop {
        let s = get_service(client, ns, name).await;
        let c = condition(&s);
        if let Some(c) = c.as_ref().filter(|c| pred(c)) {
            return c.clone();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{ns}/{name}: condition {c:?} after 15 s; controller {}:\n{}",
            ctl.identity,
            ctl.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Notes of the Events with `reason` about Service `ns/name`, found the way `kubectl describe`
/// finds them (core/v1, field selector on the involved object's name, namespace, kind and
/// uid). Waits up to 10 s for at least one.
pub async fn wait_events_for(client: &Client, ns: &str, name: &str, reason: &str) -> Vec<String> {
    let uid = get_service(client, ns, name)
        .await
        .metadata
        .uid
        .expect("a uid");
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let selector = format!(
        "involvedObject.name={name},involvedObject.namespace={ns},involvedObject.kind=Service,involvedObject.uid={uid}"
    );
    let t0 = Instant::now();
    loop {
        let list = api
            .list(&ListParams::default().fields(&selector))
            .await
            .expect("list Events");
        let notes: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.message.clone())
            .collect();
        if !notes.is_empty() {
            return notes;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no {reason} Event found for {ns}/{name} by uid {uid}: {:?}",
            list.items
                .iter()
                .map(|e| (&e.reason, &e.message))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs kubectl (from `$KUBEBUILDER_ASSETS`, else PATH) with the admin kubeconfig; `None`
/// (and a note) when there is no kubectl.
pub fn kubectl(env: &KubeEnv, args: &[&str]) -> Option<String> {
    let from_assets = std::env::var_os("KUBEBUILDER_ASSETS")
        .map(|d| PathBuf::from(d).join("kubectl"))
        .filter(|p| p.exists());
    let program = from_assets.unwrap_or_else(|| PathBuf::from("kubectl"));
    let out = match Command::new(&program)
        .arg("--kubeconfig")
        .arg(env.admin_kubeconfig())
        .args(args)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("note: no kubectl ({e}); the Event was checked through the API only");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until the Lease names `identity` as holder.
pub async fn wait_leader(client: &Client, identity: &str, limit: Duration) {
    let api: Api<Lease> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let t0 = Instant::now();
    loop {
        let holder = api
            .get_opt("ferrolb-controller")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity);
        if holder.as_deref() == Some(identity) {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "{identity} is not the leader after {limit:?} (holder {holder:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub type Snapshot = BTreeMap<(String, String), Vec<IpAddr>>;

/// Every Service's addresses in `namespaces`.
pub async fn snapshot(client: &Client, namespaces: &[&str]) -> Snapshot {
    let mut all = Snapshot::new();
    for ns in namespaces {
        let list = Api::<Service>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .expect("list Services");
        for s in list.items {
            all.insert(
                (ns.to_string(), s.metadata.name.clone().unwrap_or_default()),
                ingress(&s),
            );
        }
    }
    all
}

/// No Service of `before` changed addresses (and none vanished).
pub fn assert_unchanged(before: &Snapshot, after: &Snapshot) {
    let moved: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .map(|(k, v)| (k, v, after.get(k)))
        .collect();
    assert!(moved.is_empty(), "addresses moved: {moved:#?}");
}

pub fn in_net(ip: IpAddr, net: &str) -> bool {
    net.parse::<ipnet::IpNet>()
        .expect("a network")
        .contains(&ip)
}

/// Waits (at most 10 s) until each pool's status (`assignedIPv4`, `assignedIPv6`) equals the
/// distinct addresses in its networks held by the Services of `namespaces`, then checks it
/// still does 1 s later (no late stale write).
pub async fn pool_status_matches(
    client: &Client,
    namespaces: &[&str],
    pools: &[(&str, &str, &str)],
    ctl: &Controller,
) {
    let api: Api<IPAddressPool> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let t0 = Instant::now();
    let mut settled_at: Option<Instant> = None;
    loop {
        let held: BTreeSet<IpAddr> = snapshot(client, namespaces)
            .await
            .into_values()
            .flatten()
            .collect();
        let mut diff = Vec::new();
        for (pool, v4, v6) in pools {
            let want = (
                held.iter().filter(|ip| in_net(**ip, v4)).count() as i64,
                held.iter().filter(|ip| in_net(**ip, v6)).count() as i64,
            );
            let p = api.get(pool).await.expect("get pool");
            let st = p.status.unwrap_or_default();
            let got = (st.assigned_ipv4, st.assigned_ipv6);
            if got != want {
                diff.push(format!("{pool}: status {got:?}, real {want:?}"));
            }
        }
        match (diff.is_empty(), settled_at) {
            (true, Some(t)) if t.elapsed() >= Duration::from_secs(1) => return,
            (true, None) => settled_at = Some(Instant::now()),
            (true, Some(_)) => {}
            (false, Some(_)) => panic!("pool status went stale after matching: {diff:?}"),
            (false, None) => assert!(
                t0.elapsed() < Duration::from_secs(10),
                "pool status differs from the real count after 10 s: {diff:?}; controller {}:\n{}",
                ctl.identity,
                ctl.log_tail()
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
