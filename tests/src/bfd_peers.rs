//! Minimal real BFD peers for the BFD namespace tests: FRR `bfdd` (with zebra) and BIRD's
//! `protocol bfd`, each in a namespace the test made, plus our own `bfd_peer` example binary
//! as a separate process (so a test can freeze it with SIGSTOP).
//!
//! Follows /work/shared/reference/lab-recipes.md: FRR with private directories owned by
//! frr:frr, `--vty_socket`, vtysh `--config_dir`; BIRD with `-s`. Everything is removed on
//! drop (processes through [`Proc`], directories here).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::netns::{Netns, Proc, run, wait_until};

fn scratch_dir(ns: &Netns, what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{}-{what}", ns.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// FRR zebra + bfdd in a namespace.
pub struct FrrBfdd {
    dir: PathBuf,
    // Field order = drop order: bfdd before zebra.
    bfdd: Proc,
    zebra: Proc,
}

/// One entry of `show bfd peers json`.
#[derive(Clone, Debug)]
pub struct FrrPeer {
    pub peer: String,
    pub status: String,
    pub diagnostic: String,
    pub remote_diagnostic: String,
    pub receive_interval: u64,
    pub transmit_interval: u64,
    pub detect_multiplier: u64,
    pub remote_receive_interval: u64,
    pub remote_transmit_interval: u64,
    pub remote_detect_multiplier: u64,
}

impl FrrBfdd {
    /// Starts zebra and bfdd with `bfdd_conf` (the body of bfdd.conf) inside `ns`.
    pub fn start(ns: &Netns, bfdd_conf: &str) -> FrrBfdd {
        let dir = scratch_dir(ns, "frr");
        let d = dir.display().to_string();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::write(dir.join("vtysh.conf"), "").unwrap();
        std::fs::write(
            dir.join("zebra.conf"),
            format!("hostname r\nlog file {d}/zebra.log\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("bfdd.conf"),
            format!("log file {d}/bfdd.log\n{bfdd_conf}"),
        )
        .unwrap();
        run("chown", &["-R", "frr:frr", &d]).expect("chown frr dir");
        let vty = format!("{d}/run");
        let zserv = format!("{d}/run/zserv.api");
        let common = ["-u", "frr", "-g", "frr", "--vty_socket", &vty, "-z", &zserv];
        let zebra_conf = format!("{d}/zebra.conf");
        let zebra_pid = format!("{d}/run/zebra.pid");
        let mut args: Vec<&str> = common.to_vec();
        args.extend(["-f", &zebra_conf, "-i", &zebra_pid]);
        let zebra = ns.spawn("/usr/lib/frr/zebra", &args);
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            Path::new(&zserv).exists().then_some(())
        })
        .expect("zebra did not create its zserv socket within 5 s");
        let bfdd_conf = format!("{d}/bfdd.conf");
        let bfdd_pid = format!("{d}/run/bfdd.pid");
        let bfdctl = format!("{d}/run/bfdd.sock");
        let mut args: Vec<&str> = common.to_vec();
        args.extend(["-f", &bfdd_conf, "-i", &bfdd_pid, "--bfdctl", &bfdctl]);
        let bfdd = ns.spawn("/usr/lib/frr/bfdd", &args);
        let vty_sock = dir.join("run/bfdd.vty");
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            vty_sock.exists().then_some(())
        })
        .expect("bfdd did not create its vty socket within 5 s");
        FrrBfdd { dir, bfdd, zebra }
    }

    /// Runs vtysh commands (`-c` each) against this instance.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<String, String> {
        let d = self.dir.display().to_string();
        let vty = format!("{d}/run");
        let mut args = vec!["--config_dir", &d, "--vty_socket", &vty];
        for c in cmds {
            args.push("-c");
            args.push(c);
        }
        run("vtysh", &args)
    }

    /// Parsed `show bfd peers json`.
    pub fn peers(&self) -> Vec<FrrPeer> {
        let Ok(out) = self.vtysh(&["show bfd peers json"]) else {
            return Vec::new();
        };
        let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&out) else {
            return Vec::new();
        };
        let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_default();
        items
            .iter()
            .map(|v| FrrPeer {
                peer: s(v, "peer"),
                status: s(v, "status"),
                diagnostic: s(v, "diagnostic"),
                remote_diagnostic: s(v, "remote-diagnostic"),
                receive_interval: n(v, "receive-interval"),
                transmit_interval: n(v, "transmit-interval"),
                detect_multiplier: n(v, "detect-multiplier"),
                remote_receive_interval: n(v, "remote-receive-interval"),
                remote_transmit_interval: n(v, "remote-transmit-interval"),
                remote_detect_multiplier: n(v, "remote-detect-multiplier"),
            })
            .collect()
    }

    pub fn peer(&self, addr: &str) -> Option<FrrPeer> {
        self.peers().into_iter().find(|p| p.peer == addr)
    }

    /// Waits (bounded) until FRR reports `addr` with `status` ("up", "down", "init").
    pub fn wait_status(&self, addr: &str, status: &str, timeout: Duration) -> Option<FrrPeer> {
        wait_until(timeout, Duration::from_millis(50), || {
            self.peer(addr).filter(|p| p.status == status)
        })
    }

    /// bfdd's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bfdd.log")).unwrap_or_default()
    }
}

impl Drop for FrrBfdd {
    fn drop(&mut self) {
        let pids = [("bfdd", self.bfdd.pid()), ("zebra", self.zebra.pid())];
        self.bfdd.stop();
        self.zebra.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        // A daemon that needed SIGKILL leaves /var/tmp/frr/<daemon>.<pid> (lab-recipes
        // pitfall 7); a clean exit removes it itself.
        for (name, pid) in pids {
            let _ = std::fs::remove_dir_all(format!("/var/tmp/frr/{name}.{pid}"));
        }
    }
}

/// BIRD 2 in a namespace, controlled through its own socket.
pub struct Bird {
    dir: PathBuf,
    proc: Proc,
}

/// One row of `birdc show bfd sessions`.
#[derive(Clone, Debug, PartialEq)]
pub struct BirdBfdSession {
    pub addr: String,
    pub iface: String,
    pub state: String,
    /// Negotiated TX interval, seconds.
    pub interval: f64,
    /// Detection time, seconds.
    pub timeout: f64,
}

impl Bird {
    /// Starts `bird -f` with `conf` (the whole bird.conf) inside `ns`.
    pub fn start(ns: &Netns, conf: &str) -> Bird {
        let dir = scratch_dir(ns, "bird");
        let conf_path = dir.join("bird.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let ctl = dir.join("bird.ctl");
        let proc = ns.spawn(
            "bird",
            &[
                "-f",
                "-c",
                conf_path.to_str().unwrap(),
                "-s",
                ctl.to_str().unwrap(),
            ],
        );
        let bird = Bird { dir, proc };
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            bird.birdc("show status").ok()
        })
        .expect("bird did not answer on its control socket within 5 s");
        bird
    }

    pub fn birdc(&self, cmd: &str) -> Result<String, String> {
        let ctl = self.dir.join("bird.ctl");
        let mut args = vec!["-s", ctl.to_str().unwrap()];
        args.extend(cmd.split_whitespace());
        run("birdc", &args)
    }

    /// Parsed `show bfd sessions`.
    pub fn bfd_sessions(&self) -> Vec<BirdBfdSession> {
        let Ok(out) = self.birdc("show bfd sessions") else {
            return Vec::new();
        };
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() < 6 || f[0].parse::<std::net::IpAddr>().is_err() {
                    return None;
                }
                Some(BirdBfdSession {
                    addr: f[0].to_string(),
                    iface: f[1].to_string(),
                    state: f[2].to_string(),
                    interval: f[f.len() - 2].parse().ok()?,
                    timeout: f[f.len() - 1].parse().ok()?,
                })
            })
            .collect()
    }

    pub fn wait_state(&self, addr: &str, state: &str, timeout: Duration) -> Option<BirdBfdSession> {
        wait_until(timeout, Duration::from_millis(50), || {
            self.bfd_sessions()
                .into_iter()
                .find(|s| s.addr == addr && s.state == state)
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        // Thaw first in case a test froze it, so TERM can work.
        self.proc.signal("CONT");
        self.proc.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Path of the `bfd_peer` example, built once per test process with the same cargo.
pub fn bfd_peer_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = std::process::Command::new(&cargo)
            .current_dir(&root)
            .args(["build", "-q", "-p", "ferrolb-bfd", "--example", "bfd_peer"])
            .status()
            .expect("run cargo build for bfd_peer");
        assert!(status.success(), "cargo build --example bfd_peer failed");
        // target/<profile>/deps/<test binary> -> target/debug/examples/bfd_peer
        let exe = std::env::current_exe().expect("current exe");
        let target = exe
            .ancestors()
            .find(|p| p.join("debug").is_dir() && p.file_name().is_some_and(|n| n == "target"))
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
            .unwrap_or_else(|| root.join("target"));
        let bin = target.join("debug/examples/bfd_peer");
        assert!(bin.exists(), "bfd_peer not found at {}", bin.display());
        bin
    })
    .clone()
}

/// Our BFD speaker as a separate process (`bfd_peer` example) in a namespace; its stdout goes
/// to a file so events can be read while it runs.
pub struct OurBfdPeer {
    out: PathBuf,
    proc: Proc,
}

impl OurBfdPeer {
    /// `extra` are further flags (`--rx 100 --tx 100 --mult 3 --passive --ifname eth0`).
    pub fn spawn(ns: &Netns, local: &str, peer: &str, extra: &[&str]) -> OurBfdPeer {
        let bin = bfd_peer_binary();
        let out = std::env::temp_dir().join(format!(
            "{}-bfd_peer-{}.out",
            ns.name(),
            peer.replace(':', "_")
        ));
        let mut cmd = format!("exec {} --local {local} --peer {peer}", bin.display());
        for a in extra {
            cmd.push(' ');
            cmd.push_str(a);
        }
        cmd.push_str(&format!(" > {} 2>&1", out.display()));
        let proc = ns.spawn("sh", &["-c", &cmd]);
        let me = OurBfdPeer { out, proc };
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            me.output().contains("ready").then_some(())
        })
        .unwrap_or_else(|| panic!("bfd_peer did not start: {}", me.output()));
        me
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The `event ...` lines printed so far.
    pub fn events(&self) -> Vec<String> {
        self.output()
            .lines()
            .filter(|l| l.starts_with("event "))
            .map(str::to_string)
            .collect()
    }

    /// Waits (bounded) for an event line containing `needle`.
    pub fn wait_event(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(20), || {
            self.events()
                .iter()
                .any(|e| e.contains(needle))
                .then_some(())
        })
        .is_some()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    /// SIGTERM (AdminDown to the peer), bounded wait, and the final output.
    pub fn stop(&mut self) -> String {
        self.proc.signal("CONT");
        self.proc.stop();
        self.output()
    }
}

impl Drop for OurBfdPeer {
    fn drop(&mut self) {
        self.proc.signal("CONT");
        self.proc.stop();
        let _ = std::fs::remove_file(&self.out);
    }
}

/// Two namespaces joined by a veth (`eth0` on both): `a` gets 192.0.2.1/24 and 2001:db8::1/64,
/// `b` gets 192.0.2.2/24 and 2001:db8::2/64 (no DAD, so IPv6 works at once).
pub fn bfd_pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}a"));
    let b = Netns::new(&format!("{tag}b"));
    crate::netns::veth(&a, "eth0", &b, "eth0");
    for (ns, v4, v6) in [
        (&a, "192.0.2.1/24", "2001:db8::1/64"),
        (&b, "192.0.2.2/24", "2001:db8::2/64"),
    ] {
        ns.ip(&["addr", "add", v4, "dev", "eth0"]).unwrap();
        ns.ip(&["addr", "add", v6, "dev", "eth0", "nodad"]).unwrap();
    }
    (a, b)
}
