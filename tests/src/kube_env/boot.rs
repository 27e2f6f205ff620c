//! Starting the servers: etcd, the kube-apiserver's flags, readiness, and the small async
//! plumbing between the caller's thread and the environment's runtime.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::pki;
use super::procs::{self, Server};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

pub(super) fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .expect("kube-env task panicked (see its message above)")
}

pub(super) async fn config_from(path: PathBuf) -> kube::Config {
    let kc = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("kube config from {}: {e}", path.display()))
}

/// Polls `/readyz` until it says `ok`, the process exits, or [`READY_TIMEOUT`].
pub(super) fn wait_ready(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    server: &mut Server,
) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(why) = server.exited() {
            return Err(why);
        }
        let c = client.clone();
        let body = run_on(rt, async move {
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("request");
            tokio::time::timeout(Duration::from_secs(2), c.request_text(req)).await
        });
        if matches!(body, Ok(Ok(ref b)) if b == "ok") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("/readyz not ok after {READY_TIMEOUT:?}: {body:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts etcd on two free ports (retrying on a port clash); returns it and its client port.
pub(super) fn start_etcd(assets: &Path, dir: &Path) -> (Server, u16) {
    for attempt in 1..=3 {
        let (client_port, peer_port) = (procs::free_port(), procs::free_port());
        let data = dir.join("etcd-data");
        let _ = std::fs::remove_dir_all(&data);
        let peer = format!("http://127.0.0.1:{peer_port}");
        let client = format!("http://127.0.0.1:{client_port}");
        let args: Vec<OsString> = [
            "--name=ferrolb-test".to_string(),
            format!("--data-dir={}", data.display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=ferrolb-test={peer}"),
            "--initial-cluster-state=new".to_string(),
            "--logger=zap".to_string(),
            "--log-outputs=stderr".to_string(),
            "--log-level=warn".to_string(),
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let mut server = Server::start("etcd", &assets.join("etcd"), args, &dir.join("etcd.log"))
            .expect("spawn etcd");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if procs::etcd_healthy(client_port) {
                return (server, client_port);
            }
            if let Some(why) = server.exited() {
                if attempt < 3 && server.log_tail(50).contains("address already in use") {
                    break;
                }
                panic!(
                    "etcd failed to start: {why}\n--- log tail ---\n{}",
                    server.log_tail(30)
                );
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy after 30 s\n--- log tail ---\n{}",
                server.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    unreachable!("etcd start loop returns or panics")
}

pub(super) fn apiserver_args(
    dir: &Path,
    pki: &pki::Pki,
    port: u16,
    etcd_port: u16,
) -> Vec<OsString> {
    let f = |name: &str| pki.file(name).display().to_string();
    [
        "--advertise-address=127.0.0.1".to_string(),
        "--bind-address=127.0.0.1".to_string(),
        format!("--secure-port={port}"),
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        format!("--cert-dir={}", pki.dir.display()),
        format!("--tls-cert-file={}", f("apiserver.crt")),
        format!("--tls-private-key-file={}", f("apiserver.key")),
        format!("--client-ca-file={}", f("ca.crt")),
        format!("--token-auth-file={}", f("tokens.csv")),
        "--authorization-mode=RBAC".to_string(),
        format!("--service-account-issuer=https://127.0.0.1:{port}"),
        format!("--service-account-key-file={}", f("sa.pub")),
        format!("--service-account-signing-key-file={}", f("sa.key")),
        // Dual-stack, so dual-stack Services are accepted. Only a flag: no traffic goes there
        // (the IPv6 range is documentation space, away from the test pools).
        "--service-cluster-ip-range=10.96.0.0/12,2001:db8:ffff:96::/112".to_string(),
        // envtest convention: no controller-manager makes default ServiceAccounts.
        "--disable-admission-plugins=ServiceAccount".to_string(),
        // A 127.0.0.1 endpoint for default/kubernetes fails validation; nothing needs it.
        "--endpoint-reconciler-type=none".to_string(),
        "--allow-privileged=true".to_string(),
        "--profiling=false".to_string(),
        format!(
            "--audit-policy-file={}",
            dir.join("audit-policy.yaml").display()
        ),
        format!("--audit-log-path={}", dir.join("audit.log").display()),
        "--audit-log-format=json".to_string(),
        "--audit-log-mode=blocking".to_string(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}
