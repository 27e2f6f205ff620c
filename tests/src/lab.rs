//! The one lab: the only code that builds the namespaces, the router and the nodes, for the
//! tests (built per test with unique namespace names so tests run in parallel), the README
//! demo (`examples/lab/run.sh` runs `lab demo`, [`demo`]) and the benchmarks (`bench/lab/lab.sh`
//! runs `lab up`/`lab down`, [`detached`]). The router's config is the fixture
//! `tests/fixtures/frr/lab-bgpd.conf`; the links and addresses are in `lab/topology.rs`.
//!
//! ```text
//!  cout 198.51.100.2 ── r (FRR zebra+bgpd, AS 64512, ECMP, L4 hash) ── br0 192.0.2.1/24, 2001:db8:1::1/64
//!                         ├── n1 192.0.2.11  ├── n2 192.0.2.12  ├── n3 192.0.2.13  └── cl2 192.0.2.50
//! ```
//! Each node runs `ferrolb-speaker` and an HTTP backend that answers with its node name; the
//! controller runs in its own namespace. Everything is removed on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ferrolb_crds::standalone::StandaloneStatus;

use crate::netns::{Netns, Proc, wait_until};
use crate::peers_frr::Frr;

pub mod demo;
pub mod detached;
mod kube;
mod topology;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Binaries [`bin`] has brought up to date in this process.
static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Path of a workspace binary, brought up to date once per test process (`cargo build` is a
/// quick no-op when it is fresh). Building only when it was missing let `cargo test -p
/// ferrolb-tests` run a stale speaker after a source change.
pub fn bin(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let path = target.join("debug").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        // Only the caller's build settings: the variables cargo sets for a test process
        // would make this build differ from the user's and recompile much of the workspace.
        let keep = |k: &str| {
            const KEEP: [&str; 7] = [
                "PATH",
                "HOME",
                "CARGO_HOME",
                "RUSTUP_HOME",
                "RUSTUP_TOOLCHAIN",
                "RUSTFLAGS",
                "CARGO_TARGET_DIR",
            ];
            KEEP.contains(&k) || k.starts_with("CARGO_PROFILE_") || k.starts_with("CARGO_BUILD_")
        };
        // Every workspace binary is named after its package.
        let st = Command::new(env!("CARGO"))
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| keep(k)))
            .args(["build", "-q", "-p", name, "--bin", name])
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(st.success(), "cargo build of {name} failed");
        built.push(name.to_string());
    }
    path
}

/// A scratch directory removed on drop (unless [`TempDir::keep`] was called).
pub struct TempDir(PathBuf, bool);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("flb-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Self::at(p)
    }
    /// The directory `path` (created if missing, mode 755 so FRR's daemons, which drop to
    /// user frr, can reach their files below it), removed on drop.
    pub fn at(path: PathBuf) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(path, false)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Leaves the directory in place on drop (logs of a failed run).
    pub fn keep(&mut self) {
        self.1 = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub const NODE_NAMES: [&str; 3] = ["n1", "n2", "n3"];

/// Every namespace of a lab, by role: router, nodes, clients, controller.
pub const ROLES: [&str; 7] = ["r", "n1", "n2", "n3", "cl2", "cout", "ctl"];

pub fn node_ip(i: usize) -> String {
    format!("192.0.2.1{}", i + 1)
}

pub fn node_ip6(i: usize) -> String {
    format!("2001:db8:1::1{}", i + 1)
}

/// The router's bgpd configuration: the fixture with `extra` inside `router bgp 64512`.
pub fn router_conf(extra: &str) -> String {
    include_str!("../fixtures/frr/lab-bgpd.conf").replace("! extra\n", extra)
}

/// Options for [`Lab::new`].
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Extra lines inside `router bgp 64512` (e.g. graceful restart knobs).
    pub bgp_extra: String,
    /// Give the nodes and clients IPv6 addresses and routes too.
    pub ipv6: bool,
    /// Also run FRR's bfdd with this configuration (e.g. a `bfd` block with a profile the
    /// `bgp_extra` lines reference); `None`: zebra + bgpd only.
    pub bfdd: Option<String>,
    /// Namespace names `<prefix>-<role>` (the caller keeps the prefix unique); `None`:
    /// [`Netns::new`]'s names, unique per process.
    pub prefix: Option<String>,
    /// The lab's directory (manifests in `m/`, logs, FRR's files); `None`: a fresh one.
    pub work: Option<PathBuf>,
    /// Where `ferrolb-controller` and `ferrolb-speaker` are; `None`: [`bin`] (debug build).
    pub bin_dir: Option<PathBuf>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            bgp_extra: String::new(),
            ipv6: true,
            bfdd: None,
            prefix: None,
            work: None,
            bin_dir: None,
        }
    }
}

/// The whole lab. Fields are public so tests can reach every namespace.
pub struct Lab {
    pub speakers: BTreeMap<String, Proc>,
    pub controller: Option<Proc>,
    pub backends: Vec<Proc>,
    pub frr: Frr,
    pub r: Netns,
    pub nodes: Vec<Netns>,
    pub cl2: Netns,
    pub cout: Netns,
    pub ctl: Netns,
    pub bin_dir: Option<PathBuf>,
    /// Manifests in `m/`, `members.key`, the backends' `www-*`, logs, `frr/`.
    pub work: TempDir,
}

impl Lab {
    /// Creates the namespaces, links and the FRR router; starts the HTTP backends. Speakers
    /// and the controller are started by the caller (after it wrote its manifests).
    pub fn new(opts: LabOptions) -> Lab {
        let ns = |role: &str| match &opts.prefix {
            Some(p) => Netns::named(format!("{p}-{role}")),
            None => Netns::new(role),
        };
        let r = ns("r");
        let nodes: Vec<Netns> = NODE_NAMES.iter().map(|n| ns(n)).collect();
        let (cl2, cout, ctl) = (ns("cl2"), ns("cout"), ns("ctl"));
        let work = match &opts.work {
            Some(w) => TempDir::at(w.clone()),
            None => TempDir::new("lab"),
        };
        topology::wire(&r, &nodes, &cl2, &cout, opts.ipv6);
        let conf = router_conf(&opts.bgp_extra);
        let frr = Frr::start_in(work.path().join("frr"), &r, &conf, opts.bfdd.as_deref());
        std::fs::write(
            work.path().join("members.key"),
            b"ferrolb-e2e-test-key-0123456789ab",
        )
        .unwrap();
        // The backends' www dirs are not YAML; the manifests go in m/.
        std::fs::create_dir_all(work.path().join("m")).unwrap();
        let mut lab = Lab {
            speakers: BTreeMap::new(),
            controller: None,
            backends: Vec::new(),
            frr,
            r,
            nodes,
            cl2,
            cout,
            ctl,
            bin_dir: opts.bin_dir,
            work,
        };
        lab.start_backends();
        lab
    }

    /// An HTTP server on port 8080 of every node that answers with the node's name.
    fn start_backends(&mut self) {
        for (i, n) in self.nodes.iter().enumerate() {
            let www = self.work.path().join(format!("www-{}", NODE_NAMES[i]));
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("index.html"), NODE_NAMES[i]).unwrap();
            let log = self.log_path(&format!("backend-{}", NODE_NAMES[i]));
            let args = ["-m", "http.server", "--bind", "::", "--directory"];
            let www = www.to_str().unwrap();
            let args: Vec<&str> = args.into_iter().chain([www, "8080"]).collect();
            self.backends
                .push(n.spawn_logged(&log, &[], "python3", &args));
        }
    }

    /// Where the output of `who` (`controller`, `n1`, `backend-n1`, ...) goes.
    pub fn log_path(&self, who: &str) -> PathBuf {
        self.work.path().join(format!("{who}.log"))
    }

    /// The output of `who` so far (empty if it never ran).
    pub fn log(&self, who: &str) -> String {
        std::fs::read_to_string(self.log_path(who)).unwrap_or_default()
    }

    /// The last `n` lines of [`Lab::log`].
    pub fn log_tail(&self, who: &str, n: usize) -> String {
        let log = self.log(who);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Path of the workspace binary `name`: in [`Lab::bin_dir`], else [`bin`].
    pub fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(d) => d.join(name),
            None => bin(name),
        }
    }

    /// The manifests directory the binaries read.
    pub fn dir(&self) -> PathBuf {
        self.work.path().join("m")
    }

    /// Writes (or replaces) one manifest file.
    pub fn write(&self, file: &str, yaml: &str) {
        let tmp = self.dir().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.dir().join(file)).unwrap();
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.dir().join(file)).unwrap();
    }

    pub fn start_controller(&mut self) {
        let dir = self.dir();
        let p = self.ctl.spawn_logged(
            &self.log_path("controller"),
            &[],
            self.program("ferrolb-controller").to_str().unwrap(),
            &[
                "--manifests",
                dir.to_str().unwrap(),
                "--metrics-addr",
                "127.0.0.1:7472",
            ],
        );
        self.controller = Some(p);
    }

    /// Starts the speaker of node `i` in standalone mode (see [`speaker_args`]).
    pub fn start_speaker(&mut self, i: usize) {
        let args = speaker_args(i, &self.dir(), self.work.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let p = self.nodes[i].spawn_logged(
            &self.log_path(NODE_NAMES[i]),
            &[],
            self.program("ferrolb-speaker").to_str().unwrap(),
            &args,
        );
        self.speakers.insert(NODE_NAMES[i].to_string(), p);
    }

    /// The addresses the controller wrote for Service `default/<name>` in the standalone
    /// status file (empty while there is none or the file is not there yet).
    pub fn assigned_ips(&self, name: &str) -> Vec<String> {
        let path = self.dir().join(".ferrolb").join("status.yaml");
        let Ok(text) = std::fs::read_to_string(path) else {
            return vec![];
        };
        let Ok(status) = serde_saphyr::from_str::<StandaloneStatus>(&text) else {
            return vec![];
        };
        status
            .service("default", name)
            .map(|s| s.ips().iter().map(|ip| ip.to_string()).collect())
            .unwrap_or_default()
    }

    /// Waits (bounded) for the controller to assign `n` IPs to Service `name`.
    pub fn wait_assigned(&self, name: &str, n: usize) -> Vec<String> {
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            let ips = self.assigned_ips(name);
            (ips.len() >= n).then_some(ips)
        })
        .unwrap_or_else(|| panic!("controller did not assign {n} IP(s) to {name}"))
    }

    /// Puts a Service IP on every node's `lo` (kube-proxy's job on a real node).
    pub fn accept_on_nodes(&self, ip: &str) {
        let plen = if ip.contains(':') { "128" } else { "32" };
        for n in &self.nodes {
            let mut args = vec!["addr", "add"];
            let a = format!("{ip}/{plen}");
            args.push(&a);
            args.extend(["dev", "lo"]);
            n.ip(&args).unwrap();
        }
    }

    /// `curl` from a client namespace; returns the node name that answered, if any.
    pub fn curl(ns: &Netns, ip: &str, local_port: Option<u16>, timeout_s: &str) -> Option<String> {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let url = format!("http://{host}:8080/");
        let lp = local_port.map(|p| p.to_string());
        let mut args = vec!["-s", "--max-time", timeout_s];
        if let Some(lp) = lp.as_deref() {
            args.extend(["--local-port", lp]);
        }
        args.push(&url);
        let out = ns.exec_output("curl", &args);
        let body = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !body.is_empty()).then_some(body)
    }

    /// Number of next hops the router's kernel has for `ip` (0 when there is no route).
    pub fn router_paths(&self, ip: &str) -> usize {
        let fam = if ip.contains(':') { "-6" } else { "-4" };
        let out = self.r.ip(&[fam, "route", "show", ip]).unwrap_or_default();
        if out.trim().is_empty() {
            return 0;
        }
        let n = out.matches("nexthop via").count();
        if n == 0 { 1 } else { n }
    }

    /// Waits (bounded) until the router has exactly `n` paths for `ip`.
    pub fn wait_paths(&self, ip: &str, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || {
            (self.router_paths(ip) == n).then_some(())
        })
        .is_some()
    }

    /// A diagnostic dump for assertion messages: BGP summary, routes, the status file.
    pub fn diag(&mut self) -> String {
        let mut s = self.frr.vtysh(&["show bgp summary"]);
        s.push_str(&self.r.ip(&["route"]).unwrap_or_default());
        if let Ok(st) = std::fs::read_to_string(self.dir().join(".ferrolb/status.yaml")) {
            s.push_str("\n--- status.yaml\n");
            s.push_str(&st);
        }
        s
    }
}

/// The membership and metrics flags of node `i`'s speaker: the three nodes as seeds, the
/// lab's key in `work`, metrics on the node's address.
pub fn member_args(i: usize, work: &Path) -> Vec<String> {
    let seeds: Vec<String> = (0..NODE_NAMES.len())
        .map(|j| format!("{}:7946", node_ip(j)))
        .collect();
    let key = work.join("members.key");
    [
        "--members-bind",
        &format!("{}:7946", node_ip(i)),
        "--members-seeds",
        &seeds.join(","),
        "--members-key-file",
        key.to_str().unwrap(),
        "--metrics-addr",
        &format!("{}:7473", node_ip(i)),
    ]
    .map(String::from)
    .to_vec()
}

/// The arguments of node `i`'s speaker in standalone mode, reading `manifests`.
pub fn speaker_args(i: usize, manifests: &Path, work: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["--node", NODE_NAMES[i], "--manifests"]
        .map(String::from)
        .to_vec();
    args.push(manifests.to_str().unwrap().to_string());
    args.extend(member_args(i, work));
    args
}
