//! GoBGP 3.x (`gobgpd` + `gobgp` CLI) as a test peer inside a namespace. The gRPC API listens
//! on the namespace's own loopback, so every instance can use the same port.

use std::path::PathBuf;
use std::time::Duration;

use crate::netns::{Netns, Proc, run, wait_until};

pub const GOBGP_API: &str = "127.0.0.1:50051";

pub struct Gobgp {
    dir: PathBuf,
    ns: String,
    proc: Proc,
}

impl Gobgp {
    /// Starts gobgpd with `toml` as its config file; waits until the API answers.
    pub fn start(ns: &Netns, toml: &str) -> Gobgp {
        let dir = crate::peers_dir("gobgp");
        let conf = dir.join("gobgpd.toml");
        std::fs::write(&conf, toml).expect("write gobgpd.toml");
        // gobgpd logs only to stdout/stderr: send them to a file so a long test can never
        // fill a pipe nobody reads. `exec` keeps the daemon's PID for the Proc guard.
        let log = dir.join("gobgpd.log");
        let cmd = format!(
            "exec gobgpd -f '{}' --api-hosts {GOBGP_API} -l debug >'{}' 2>&1",
            conf.display(),
            log.display()
        );
        let proc = ns.spawn("sh", &["-c", &cmd]);
        let g = Gobgp {
            dir,
            ns: ns.name().to_string(),
            proc,
        };
        let ok = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            g.try_cli(&["global"]).ok()
        });
        assert!(ok.is_some(), "gobgpd did not start");
        g
    }

    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec![
            "netns",
            "exec",
            self.ns.as_str(),
            "gobgp",
            "-u",
            "127.0.0.1",
            "-p",
            "50051",
        ];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args).expect("gobgp cli")
    }

    /// `gobgp neighbor ADDR -j` parsed.
    pub fn neighbor(&self, addr: &str) -> serde_json::Value {
        serde_json::from_str(&self.cli(&["neighbor", addr, "-j"])).unwrap_or_default()
    }

    pub fn is_established(&self, addr: &str) -> bool {
        self.neighbor(addr)["state"]["session_state"].as_i64() == Some(6)
            || self
                .cli(&["neighbor"])
                .lines()
                .any(|l| l.contains(addr) && l.contains("Establ"))
    }

    pub fn wait_established(&self, addr: &str, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || {
            self.is_established(addr).then_some(())
        })
        .is_some()
    }

    /// `gobgp global rib [-a ipv6] PREFIX -j` parsed (paths for the prefix).
    pub fn route(&self, prefix: &str) -> serde_json::Value {
        let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let out = self
            .try_cli(&["global", "rib", "-a", fam, prefix, "-j"])
            .unwrap_or_default();
        serde_json::from_str(&out).unwrap_or_default()
    }

    pub fn has_route(&self, prefix: &str) -> bool {
        self.route(prefix).as_object().is_some_and(|m| {
            m.values()
                .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        })
    }

    /// gobgpd's log so far (debug level, JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gobgpd.log")).unwrap_or_default()
    }

    /// Stops the daemon and returns its whole log.
    pub fn stop(&mut self) -> String {
        self.proc.stop();
        self.log()
    }
}

impl Drop for Gobgp {
    fn drop(&mut self) {
        self.proc.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
