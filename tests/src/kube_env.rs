//! A real Kubernetes API server for tests: etcd + kube-apiserver (from `$KUBEBUILDER_ASSETS`,
//! the envtest convention) on free 127.0.0.1 ports in a temp dir, RBAC on, an audit log,
//! ferrolb's CRDs, namespace, ServiceAccounts and RBAC installed from the real manifests
//! (`examples/manifests/crds.yaml` and `install.yaml`, server-side apply; the Deployment and
//! DaemonSet are applied too, but nothing runs them: there is no kubelet).
//!
//! ```no_run
//! # async fn t() {
//! use ferrolb_tests::kube_env::KubeEnv;
//! if !KubeEnv::available("my_test") { return; }          // prints why it skips
//! let env = KubeEnv::shared();                            // or KubeEnv::start()
//! let ns = env.new_namespace("my-test");
//! let admin = env.admin_client();                         // system:masters
//! let ctl = env.controller_client();                      // as ferrolb-system/ferrolb-controller
//! let kubeconfig = env.speaker_kubeconfig();              // for `ferrolb-speaker --kubeconfig`
//! assert!(env.forbidden_requests().is_empty());           // no 403 so far
//! # }
//! ```
//!
//! * [`KubeEnv::shared`]: one apiserver per test process for tests that do not conflict
//!   (each in its own [`KubeEnv::new_namespace`]). Tests that run a controller or speaker
//!   want their own [`KubeEnv::start`]: those watch all namespaces, would see every other
//!   test's objects and write pool status and Leases in `ferrolb-system`. Likewise tests
//!   that kill or restart the apiserver, or count 403s, need their own.
//! * Clients are made for the tokio runtime of the caller (call them inside the test's
//!   runtime); everything else is synchronous and works from any thread or runtime.
//! * ServiceAccount clients use TokenRequest tokens, so every call goes through RBAC exactly
//!   as in a cluster; [`KubeEnv::forbidden_requests`] lists every 403 from the audit log.
//! * Teardown: drop the `KubeEnv`. The servers also die when the test process panics or is
//!   killed (parent-death signal), and a watchdog removes the temp dir. Names (dir, ports,
//!   namespaces) are unique, so test binaries run in parallel.
//! * Without assets: [`KubeEnv::available`] prints the skip reason and returns false, unless
//!   `CI=true` or `FERROLB_REQUIRE_KUBE=1`, where a missing asset is a panic.
//!   `scripts/test.sh` prepares the assets from `../shared/k8s` when it exists.

mod audit;
mod boot;
pub mod manifests;
mod pki;
mod procs;
mod relay;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};

use boot::{apiserver_args, config_from, crd_established, run_on, start_etcd, wait_ready};
use procs::{Server, TempDir};

/// The namespace of `examples/manifests/install.yaml`.
pub const SYSTEM_NAMESPACE: &str = "ferrolb-system";
/// The controller's ServiceAccount in install.yaml.
pub const CONTROLLER_SA: &str = "ferrolb-controller";
/// The speaker's ServiceAccount in install.yaml.
pub const SPEAKER_SA: &str = "ferrolb-speaker";

/// A running etcd + kube-apiserver with ferrolb installed. See the module docs.
pub struct KubeEnv {
    relays: Mutex<HashMap<String, relay::Relay>>,
    rt: Option<tokio::runtime::Runtime>,
    admin: kube::Client,
    admin_config: kube::Config,
    /// (namespace, service account) -> (kubeconfig path, client config)
    identities: Mutex<HashMap<(String, String), (PathBuf, kube::Config)>>,
    apiserver: Mutex<Server>,
    etcd: Mutex<Server>,
    port: u16,
    pki: pki::Pki,
    dir: TempDir,
}

/// Repository root (for the manifests).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn require_kube() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("FERROLB_REQUIRE_KUBE").is_ok_and(|v| v == "1")
}

/// The asset directory if it holds executable `kube-apiserver` and `etcd`, else why not.
fn assets() -> Result<PathBuf, String> {
    let dir = std::env::var_os("KUBEBUILDER_ASSETS")
        .map(PathBuf::from)
        .ok_or(
            "KUBEBUILDER_ASSETS is not set (run scripts/test.sh, or point it at \
                `setup-envtest use -p path` / `../shared/k8s/envtest-assets`)",
        )?;
    for bin in ["kube-apiserver", "etcd"] {
        let path = dir.join(bin);
        let executable = std::fs::metadata(&path)
            .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
        if !executable {
            return Err(format!(
                "KUBEBUILDER_ASSETS={}: {bin} is missing or not executable",
                dir.display()
            ));
        }
    }
    Ok(dir)
}

impl KubeEnv {
    /// True when the Kubernetes assets are there. Otherwise prints why `test` skips and
    /// returns false — or panics under `CI=true` / `FERROLB_REQUIRE_KUBE=1`, so CI can never
    /// pass by skipping.
    pub fn available(test: &str) -> bool {
        match assets() {
            Ok(_) => true,
            Err(why) if require_kube() => {
                panic!("{test}: needs a kube-apiserver and CI=true/FERROLB_REQUIRE_KUBE=1: {why}")
            }
            Err(why) => {
                eprintln!("skipping {test}: {why}");
                false
            }
        }
    }

    /// One environment per test process, started on first use and never stopped before the
    /// process exits (its servers die with the process; the watchdog removes its files).
    pub fn shared() -> &'static KubeEnv {
        static SHARED: OnceLock<KubeEnv> = OnceLock::new();
        SHARED.get_or_init(KubeEnv::start)
    }

    /// Starts a private environment (~4 s on 2 cores). Panics with the server's log tail if
    /// it cannot start.
    pub fn start() -> KubeEnv {
        let t0 = Instant::now();
        let assets = assets().unwrap_or_else(|why| panic!("KubeEnv::start: {why}"));
        let dir = TempDir::new("kube");
        let pki = pki::generate(&dir.path().join("pki"));
        let etcd = start_etcd(&assets, dir.path());
        let etcd_port = etcd.1;
        std::fs::write(dir.path().join("audit-policy.yaml"), pki::AUDIT_POLICY)
            .expect("write audit policy");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kube-env")
            .enable_all()
            .build()
            .expect("kube-env runtime");
        let mut attempt = 0;
        let (apiserver, port, admin_config, admin) = loop {
            attempt += 1;
            let port = procs::free_port();
            let args = apiserver_args(dir.path(), &pki, port, etcd_port);
            let log = dir.path().join("kube-apiserver.log");
            let mut server =
                Server::start("kube-apiserver", &assets.join("kube-apiserver"), args, &log)
                    .expect("spawn kube-apiserver");
            let admin_kc = dir.path().join("kubeconfig-admin");
            pki::write_kubeconfig(
                &admin_kc,
                &format!("https://127.0.0.1:{port}"),
                &pki.ca_crt(),
                "ferrolb-admin",
                &pki.admin_token,
            );
            let config = run_on(&rt, config_from(admin_kc));
            let client = run_on(&rt, {
                let config = config.clone();
                async move { kube::Client::try_from(config).expect("admin client") }
            });
            match wait_ready(&rt, &client, &mut server) {
                Ok(()) => break (server, port, config, client),
                Err(why)
                    if attempt < 3 && server.log_tail(50).contains("address already in use") =>
                {
                    eprintln!("kube-env: apiserver port {port} taken ({why}); retrying");
                }
                Err(why) => panic!(
                    "kube-apiserver did not become ready: {why}\n--- log tail ---\n{}",
                    server.log_tail(40)
                ),
            }
        };
        let env = KubeEnv {
            relays: Mutex::default(),
            rt: Some(rt),
            admin,
            admin_config,
            identities: Mutex::default(),
            apiserver: Mutex::new(apiserver),
            etcd: Mutex::new(etcd.0),
            port,
            pki,
            dir,
        };
        env.install();
        eprintln!(
            "kube-env: ready in {} ms at https://127.0.0.1:{port} ({})",
            t0.elapsed().as_millis(),
            env.dir().display()
        );
        env
    }

    /// Applies crds.yaml and install.yaml and waits until the CRDs are established.
    fn install(&self) {
        let root = repo_root().join("examples/manifests");
        for file in ["crds.yaml", "install.yaml"] {
            let text = std::fs::read_to_string(root.join(file))
                .unwrap_or_else(|e| panic!("read examples/manifests/{file}: {e}"));
            let client = self.admin.clone();
            let results =
                self.block(
                    async move { manifests::apply_yaml(&client, &text, "default", false).await },
                );
            for a in results {
                if let Err(e) = a.result {
                    panic!("kube-env: applying {file}: {}: {e}", a.what);
                }
            }
        }
        let client = self.admin.clone();
        let pending = self.block(async move {
            let crds: Api<CustomResourceDefinition> = Api::all(client);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let list = crds.list(&Default::default()).await.expect("list CRDs");
                let pending: Vec<String> = list
                    .items
                    .iter()
                    .filter(|c| !crd_established(c))
                    .filter_map(|c| c.metadata.name.clone())
                    .collect();
                if pending.is_empty() || Instant::now() > deadline {
                    return pending;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        assert!(
            pending.is_empty(),
            "CRDs not established after 30 s: {pending:?}"
        );
    }

    /// Runs `fut` to completion on the environment's own runtime (from any thread, inside
    /// another runtime or not).
    pub fn block<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        run_on(self.rt.as_ref().expect("runtime"), fut)
    }

    /// The temp dir holding logs (`etcd.log`, `kube-apiserver.log`, `audit.log`), PKI and
    /// kubeconfig files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:PORT`
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn apiserver_port(&self) -> u16 {
        self.port
    }

    pub fn apiserver_pid(&self) -> Option<u32> {
        self.apiserver.lock().expect("apiserver lock").pid()
    }

    pub fn etcd_pid(&self) -> Option<u32> {
        self.etcd.lock().expect("etcd lock").pid()
    }

    /// The admin (`system:masters`) client config (static token).
    pub fn admin_config(&self) -> kube::Config {
        self.admin_config.clone()
    }

    /// An admin client for the caller's tokio runtime.
    pub fn admin_client(&self) -> kube::Client {
        kube::Client::try_from(self.admin_config()).expect("admin client")
    }

    /// The admin kubeconfig file (for `kubectl --kubeconfig`).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir().join("kubeconfig-admin")
    }

    /// A client acting as ServiceAccount `namespace/service_account` (a TokenRequest token,
    /// so RBAC applies), for the caller's tokio runtime.
    pub fn client_as(&self, namespace: &str, service_account: &str) -> kube::Client {
        let (_, config) = self.identity(namespace, service_account);
        kube::Client::try_from(config).expect("service account client")
    }

    /// As the controller's ServiceAccount from install.yaml.
    pub fn controller_client(&self) -> kube::Client {
        self.client_as(SYSTEM_NAMESPACE, CONTROLLER_SA)
    }

    /// As the speaker's ServiceAccount from install.yaml.
    pub fn speaker_client(&self) -> kube::Client {
        self.client_as(SYSTEM_NAMESPACE, SPEAKER_SA)
    }

    /// A kubeconfig file logging in as `namespace/service_account`, for running the real
    /// binaries with `--kubeconfig` on the host.
    pub fn kubeconfig_as(&self, namespace: &str, service_account: &str) -> PathBuf {
        self.identity(namespace, service_account).0
    }

    pub fn controller_kubeconfig(&self) -> PathBuf {
        self.kubeconfig_as(SYSTEM_NAMESPACE, CONTROLLER_SA)
    }

    pub fn speaker_kubeconfig(&self) -> PathBuf {
        self.kubeconfig_as(SYSTEM_NAMESPACE, SPEAKER_SA)
    }

    /// A kubeconfig for a process inside network namespace `netns` (a name under
    /// `/run/netns`, e.g. [`crate::Netns::name`]): starts (once per namespace) a relay that
    /// listens on 127.0.0.1:PORT inside it and forwards to this apiserver. The relay lives
    /// until the env is dropped (or [`KubeEnv::stop_relay`]); it survives apiserver restarts.
    pub fn kubeconfig_in_netns(
        &self,
        netns: &str,
        namespace: &str,
        service_account: &str,
    ) -> PathBuf {
        let mut relays = self.relays.lock().expect("relays lock");
        if !relays.contains_key(netns) {
            let relay = relay::Relay::start(netns, self.port)
                .unwrap_or_else(|e| panic!("kube-env: relay into netns {netns}: {e}"));
            relays.insert(netns.to_string(), relay);
        }
        drop(relays);
        self.kubeconfig_as(namespace, service_account)
    }

    /// Stops the relay into `netns` (before deleting the namespace, so it goes away at once).
    pub fn stop_relay(&self, netns: &str) {
        self.relays.lock().expect("relays lock").remove(netns);
    }

    fn identity(&self, namespace: &str, sa: &str) -> (PathBuf, kube::Config) {
        let key = (namespace.to_string(), sa.to_string());
        if let Some(found) = self.identities.lock().expect("identities lock").get(&key) {
            return found.clone();
        }
        let (client, ns, name) = (self.admin.clone(), key.0.clone(), key.1.clone());
        let token = self.block(async move {
            let api: Api<ServiceAccount> = Api::namespaced(client, &ns);
            let req = TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(24 * 3600),
                    ..Default::default()
                },
                ..Default::default()
            };
            api.create_token_request(&name, &PostParams::default(), &req)
                .await
                .unwrap_or_else(|e| panic!("TokenRequest for {ns}/{name}: {e}"))
                .status
                .map(|s| s.token)
                .unwrap_or_default()
        });
        assert!(
            !token.is_empty(),
            "empty TokenRequest token for {namespace}/{sa}"
        );
        let path = self.dir().join(format!("kubeconfig-{namespace}-{sa}"));
        pki::write_kubeconfig(
            &path,
            &self.server_url(),
            &self.pki.ca_crt(),
            &format!("{namespace}-{sa}"),
            &token,
        );
        let config = self.block(config_from(path.clone()));
        let value = (path, config);
        self.identities
            .lock()
            .expect("identities lock")
            .insert(key, value.clone());
        value
    }

    /// Creates a fresh namespace `PREFIX-PID-N` and returns its name.
    pub fn new_namespace(&self, prefix: &str) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let (client, ns) = (self.admin.clone(), name.clone());
        self.block(async move {
            let api: Api<Namespace> = Api::all(client);
            let obj = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            api.create(&PostParams::default(), &obj)
                .await
                .unwrap_or_else(|e| panic!("create namespace {ns}: {e}"));
        });
        name
    }

    /// [`manifests::apply_yaml`] as admin: server-side apply (or, with `dry_run`, a server-side
    /// dry run) of every document of `yaml`, one result per document.
    pub fn apply_yaml(
        &self,
        yaml: &str,
        default_namespace: &str,
        dry_run: bool,
    ) -> Vec<manifests::Applied> {
        let (client, yaml, ns) = (
            self.admin.clone(),
            yaml.to_string(),
            default_namespace.to_string(),
        );
        self.block(async move { manifests::apply_yaml(&client, &yaml, &ns, dry_run).await })
    }

    /// Creates namespace `name` unless it exists (for manifests that name their namespace).
    pub fn ensure_namespace(&self, name: &str) {
        let (client, ns) = (self.admin.clone(), name.to_string());
        self.block(async move {
            let api: Api<Namespace> = Api::all(client);
            let obj = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("create namespace {ns}: {e}"),
            }
        });
    }

    /// SIGKILLs the kube-apiserver (no drain), for outage tests. etcd keeps running.
    pub fn kill_apiserver(&self) {
        self.apiserver.lock().expect("apiserver lock").kill();
    }

    /// Starts the kube-apiserver again with the same flags, port and etcd (killing it first
    /// if it still runs) and waits until `/readyz` is ok.
    pub fn restart_apiserver(&self) {
        let mut server = self.apiserver.lock().expect("apiserver lock");
        server.restart().expect("respawn kube-apiserver");
        if let Err(why) = wait_ready(self.rt.as_ref().expect("runtime"), &self.admin, &mut server) {
            panic!(
                "kube-apiserver restart: {why}\n--- log tail ---\n{}",
                server.log_tail(40)
            );
        }
    }

    /// Path of the audit log (JSON lines, Metadata level, one per completed request).
    pub fn audit_log(&self) -> PathBuf {
        self.dir().join("audit.log")
    }

    /// Every request answered 403 so far, as `USER VERB RESOURCE[/SUB] [NS/][NAME]`
    /// (e.g. `system:serviceaccount:ferrolb-system:ferrolb-speaker create services default/`).
    pub fn forbidden_requests(&self) -> Vec<String> {
        audit::requests_with_code(&self.audit_log(), 403)
    }

    /// [`KubeEnv::forbidden_requests`] without those received from `from` to `to` (an API
    /// server restart: until its RBAC caches have synced it denies every client).
    pub fn forbidden_requests_outside(
        &self,
        from: k8s_openapi::jiff::Timestamp,
        to: k8s_openapi::jiff::Timestamp,
    ) -> Vec<String> {
        audit::requests_with_code_outside(&self.audit_log(), 403, Some((from, to)))
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        self.relays.lock().map(|mut r| r.clear()).ok();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        if let Ok(mut s) = self.apiserver.lock() {
            s.kill();
        }
        if let Ok(mut s) = self.etcd.lock() {
            s.kill();
        }
        // `dir` (a TempDir) is dropped last and removes the files.
    }
}
