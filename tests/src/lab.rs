//! The end-to-end lab in Rust: the same topology as `examples/lab/run.sh`, built per test with
//! unique namespace names so tests run in parallel.
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

use crate::netns::{Netns, Proc, veth, wait_until};
use crate::peers_frr::Frr;

mod kube;

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

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("flb-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const NODE_NAMES: [&str; 3] = ["n1", "n2", "n3"];

pub fn node_ip(i: usize) -> String {
    format!("192.0.2.1{}", i + 1)
}

pub fn node_ip6(i: usize) -> String {
    format!("2001:db8:1::1{}", i + 1)
}

/// Options for [`Lab::new`].
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Extra lines inside `router bgp 64512` (e.g. graceful restart knobs).
    pub bgp_extra: String,
    /// Enable IPv6 on the segment and an IPv6 peer group on the router.
    pub ipv6: bool,
    /// Also run FRR's bfdd with this configuration (e.g. a `bfd` block with a profile the
    /// `bgp_extra` lines reference); `None`: zebra + bgpd only.
    pub bfdd: Option<String>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            bgp_extra: String::new(),
            ipv6: true,
            bfdd: None,
        }
    }
}

/// The whole lab. Fields are public so tests can reach every namespace.
pub struct Lab {
    pub manifests: TempDir,
    pub key: TempDir,
    pub speakers: BTreeMap<String, Proc>,
    pub controller: Option<Proc>,
    pub backends: Vec<Proc>,
    pub frr: Frr,
    pub r: Netns,
    pub nodes: Vec<Netns>,
    pub cl2: Netns,
    pub cout: Netns,
    pub ctl: Netns,
}

impl Lab {
    /// Creates the namespaces, links and the FRR router; starts the HTTP backends. Speakers
    /// and the controller are started by the test (after it wrote its manifests).
    pub fn new(opts: LabOptions) -> Lab {
        let r = Netns::new("r");
        let nodes: Vec<Netns> = NODE_NAMES.iter().map(|n| Netns::new(n)).collect();
        let cl2 = Netns::new("cl2");
        let cout = Netns::new("cout");
        let ctl = Netns::new("ctl");
        r.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
        r.ip(&["link", "set", "br0", "up"]).unwrap();
        r.ip(&["addr", "add", "192.0.2.1/24", "dev", "br0"])
            .unwrap();
        r.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "br0", "nodad"])
            .unwrap();
        for (i, n) in nodes.iter().enumerate() {
            let port = format!("p-{}", NODE_NAMES[i]);
            veth(&r, &port, n, "eth0");
            r.ip(&["link", "set", &port, "master", "br0"]).unwrap();
            n.ip(&["addr", "add", &format!("{}/24", node_ip(i)), "dev", "eth0"])
                .unwrap();
            if opts.ipv6 {
                n.ip(&[
                    "addr",
                    "add",
                    &format!("{}/64", node_ip6(i)),
                    "dev",
                    "eth0",
                    "nodad",
                ])
                .unwrap();
                n.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"])
                    .unwrap();
            }
            n.ip(&["route", "add", "default", "via", "192.0.2.1"])
                .unwrap();
            n.sysctl("net.ipv4.conf.all.arp_ignore=1").unwrap();
            n.sysctl("net.ipv4.conf.all.arp_announce=2").unwrap();
        }
        veth(&r, "p-cl2", &cl2, "eth0");
        r.ip(&["link", "set", "p-cl2", "master", "br0"]).unwrap();
        cl2.ip(&["addr", "add", "192.0.2.50/24", "dev", "eth0"])
            .unwrap();
        cl2.ip(&["addr", "add", "2001:db8:1::50/64", "dev", "eth0", "nodad"])
            .unwrap();
        veth(&r, "p-cout", &cout, "eth0");
        r.ip(&["addr", "add", "198.51.100.1/24", "dev", "p-cout"])
            .unwrap();
        r.ip(&["addr", "add", "2001:db8:2::1/64", "dev", "p-cout", "nodad"])
            .unwrap();
        cout.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"])
            .unwrap();
        cout.ip(&["addr", "add", "2001:db8:2::2/64", "dev", "eth0", "nodad"])
            .unwrap();
        cout.ip(&["route", "add", "203.0.113.0/24", "via", "198.51.100.1"])
            .unwrap();
        cout.ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:100::/48",
            "via",
            "2001:db8:2::1",
        ])
        .unwrap();
        r.sysctl("net.ipv4.ip_forward=1").unwrap();
        r.sysctl("net.ipv4.fib_multipath_hash_policy=1").unwrap();
        r.sysctl("net.ipv6.conf.all.forwarding=1").unwrap();
        r.sysctl("net.ipv6.fib_multipath_hash_policy=1").unwrap();

        let mut conf = String::from(
            "router bgp 64512\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n \
             no bgp default ipv4-unicast\n bgp bestpath as-path multipath-relax\n \
             neighbor NODES peer-group\n neighbor NODES remote-as 64513\n \
             neighbor NODES timers connect 1\n bgp listen range 192.0.2.0/24 peer-group NODES\n",
        );
        if opts.ipv6 {
            conf.push_str(
                " neighbor NODES6 peer-group\n neighbor NODES6 remote-as 64513\n \
                 neighbor NODES6 timers connect 1\n bgp listen range 2001:db8:1::/64 peer-group NODES6\n",
            );
        }
        conf.push_str(&opts.bgp_extra);
        conf.push_str(" address-family ipv4 unicast\n  neighbor NODES activate\n  maximum-paths 8\n exit-address-family\n");
        if opts.ipv6 {
            conf.push_str(" address-family ipv6 unicast\n  neighbor NODES6 activate\n  maximum-paths 8\n exit-address-family\n");
        }
        conf.push_str("exit\n");
        let frr = Frr::start(&r, &conf, opts.bfdd.as_deref());

        let manifests = TempDir::new("manifests");
        let key = TempDir::new("key");
        std::fs::write(
            key.path().join("members.key"),
            b"ferrolb-e2e-test-key-0123456789ab",
        )
        .unwrap();
        let mut backends = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let www = manifests.path().join(format!("www-{}", NODE_NAMES[i]));
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("index.html"), NODE_NAMES[i]).unwrap();
            backends.push(n.spawn(
                "python3",
                &[
                    "-m",
                    "http.server",
                    "--bind",
                    "::",
                    "--directory",
                    www.to_str().unwrap(),
                    "8080",
                ],
            ));
        }
        // The backends' www dirs are not YAML; the speakers ignore them. Manifests go in m/.
        std::fs::create_dir_all(manifests.path().join("m")).unwrap();
        Lab {
            manifests,
            key,
            speakers: BTreeMap::new(),
            controller: None,
            backends,
            frr,
            r,
            nodes,
            cl2,
            cout,
            ctl,
        }
    }

    /// The manifests directory the binaries read.
    pub fn dir(&self) -> PathBuf {
        self.manifests.path().join("m")
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
        let p = self.ctl.spawn(
            bin("ferrolb-controller").to_str().unwrap(),
            &[
                "--manifests",
                dir.to_str().unwrap(),
                "--metrics-addr",
                "127.0.0.1:7472",
            ],
        );
        self.controller = Some(p);
    }

    pub fn start_speaker(&mut self, i: usize) {
        let seeds = (0..3)
            .map(|j| format!("{}:7946", node_ip(j)))
            .collect::<Vec<_>>()
            .join(",");
        let dir = self.dir();
        let key = self.key.path().join("members.key");
        let p = self.nodes[i].spawn(
            bin("ferrolb-speaker").to_str().unwrap(),
            &[
                "--node",
                NODE_NAMES[i],
                "--manifests",
                dir.to_str().unwrap(),
                "--members-bind",
                &format!("{}:7946", node_ip(i)),
                "--members-seeds",
                &seeds,
                "--members-key-file",
                key.to_str().unwrap(),
                "--metrics-addr",
                &format!("{}:7473", node_ip(i)),
            ],
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

    /// A diagnostic dump for assertion messages: BGP summary and speaker stderr tails.
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
