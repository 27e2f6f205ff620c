//! Benchmark driver (bench/kube/run.sh): the controller on a real kube-apiserver with N
//! Services created as fast as the API server takes them.
//!
//!   kube_controller_bench [N] [TASKS]     (default 10000 Services, 64 client tasks)
//!
//! Needs KUBEBUILDER_ASSETS; the controller binary comes from FERROLB_TEST_CONTROLLER_BIN
//! (run.sh builds it in release). Measures: create rate; time from the last create until
//! every Service has an address (a watch in this process sees each address); status writes
//! per Service, Service writes, Events and pool-status writes by the controller's
//! ServiceAccount (from the API server's audit log); the controller's RSS (now and peak).

#[path = "../tests/kube_controller_util/mod.rs"]
mod util;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrolb_tests::kube_env::KubeEnv;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use util::*;

const CONTROLLER_USER: &str = "system:serviceaccount:ferrolb-system:ferrolb-controller";

/// Requests by the controller in the audit log: (status patches on Services in `ns`, other
/// Service writes in `ns`, Events created, pool status writes).
fn audit_counts(log: &std::path::Path, ns: &str) -> (usize, usize, usize, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut status, mut svc, mut events, mut pools) = (0, 0, 0, 0);
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if e["stage"] != "ResponseComplete" || e["user"]["username"] != CONTROLLER_USER {
            continue;
        }
        let verb = e["verb"].as_str().unwrap_or_default();
        if !matches!(verb, "create" | "update" | "patch") {
            continue;
        }
        let o = &e["objectRef"];
        match (o["resource"].as_str(), o["subresource"].as_str()) {
            (Some("services"), Some("status")) if o["namespace"] == ns => status += 1,
            (Some("services"), None) if o["namespace"] == ns => svc += 1,
            (Some("events"), _) if o["namespace"] == ns => events += 1,
            (Some("ipaddresspools"), Some("status")) => pools += 1,
            _ => {}
        }
    }
    (status, svc, events, pools)
}

/// `VmRSS` and `VmHWM` of `pid`, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10_000, |a| a.parse().expect("N"));
    let tasks: usize = args.next().map_or(64, |a| a.parse().expect("TASKS"));
    assert!(KubeEnv::available("kube_controller_bench"));
    let env = tokio::task::block_in_place(KubeEnv::start);
    let admin = env.admin_client();
    apply_pool(&admin, "bench", json!({"addresses": ["198.18.0.0/15"]})).await;
    let ns = env.new_namespace("bench");
    let ctl = Controller::start(&env, "ctl-bench");
    wait_leader(&admin, "ctl-bench", Duration::from_secs(30)).await;
    let pid = ctl.pid().expect("controller pid");
    let (rss0, _) = rss_mib(pid);

    // Watch the namespace: the time each Service first shows an address.
    let with_ip: Arc<Mutex<(HashSet<String>, Option<Instant>)>> = Arc::default();
    let watch = {
        let with_ip = with_ip.clone();
        let api: Api<Service> = Api::namespaced(admin.clone(), &ns);
        tokio::spawn(async move {
            let mut s = watcher(api, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(ev) = s.next().await {
                let Ok(svc) = ev else { continue };
                if ingress(&svc).is_empty() {
                    continue;
                }
                let mut g = with_ip.lock().unwrap();
                if g.0.insert(svc.metadata.name.clone().unwrap_or_default()) && g.0.len() == n {
                    g.1 = Some(Instant::now());
                    return;
                }
            }
        })
    };

    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let t0 = Instant::now();
    create_concurrently(&env, &ns, &names, tasks).await;
    let last_create = Instant::now();
    let create_s = (last_create - t0).as_secs_f64();
    eprintln!("created {n} Services in {create_s:.1} s");
    let limit = Duration::from_secs(600);
    let all = loop {
        if let Some(t) = with_ip.lock().unwrap().1 {
            break t;
        }
        let have = with_ip.lock().unwrap().0.len();
        assert!(
            last_create.elapsed() < limit,
            "only {have} of {n} have an address after {limit:?}:\n{}",
            ctl.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    watch.abort();
    let (rss, hwm) = rss_mib(pid);
    // Let the pool-status writer finish, then count writes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, svc_writes, events, pools) = audit_counts(&env.audit_log(), &ns);
    let after_last = all.saturating_duration_since(last_create).as_secs_f64();
    let first_to_all = (all - t0).as_secs_f64();
    println!(
        "services={n} client_tasks={tasks} create_s={create_s:.2} create_rate_per_s={:.0} \
         all_allocated_after_last_create_s={after_last:.2} first_create_to_all_s={first_to_all:.2} \
         status_writes={status} status_writes_per_service={:.3} other_service_writes={svc_writes} \
         events={events} pool_status_writes={pools} rss_idle_mib={rss0:.1} rss_mib={rss:.1} \
         rss_peak_mib={hwm:.1}",
        n as f64 / create_s,
        status as f64 / n as f64,
    );
    ctl.assert_alive();
    // SIGTERM, not the SIGKILL of drop: a wrapper (bench/kube/heap.sh) passes it on.
    let mut ctl = ctl;
    ctl.stop();
}
