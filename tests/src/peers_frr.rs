//! FRR 8.4 (zebra + bgpd, optionally bfdd) as a test peer inside a namespace, with every
//! path on the command line (no /etc/frr). `vtysh` talks to the private socket directory.
//! Reusable for BGP, BFD and end-to-end tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns::{Netns, Proc, run, wait_until};

pub struct Frr {
    dir: PathBuf,
    ns: String,
    zebra: Proc,
    bfdd: Option<Proc>,
    bgpd: Option<Proc>,
}

impl Frr {
    /// Starts zebra, then bfdd if `bfdd_conf` is given, then bgpd with `bgpd_conf`.
    pub fn start(ns: &Netns, bgpd_conf: &str, bfdd_conf: Option<&str>) -> Frr {
        Self::start_in(crate::peers_dir("frr"), ns, bgpd_conf, bfdd_conf)
    }

    /// [`Frr::start`] with its files in `dir` (created; removed on drop). The daemons'
    /// own output goes to `DIR/<daemon>.out`.
    pub fn start_in(dir: PathBuf, ns: &Netns, bgpd_conf: &str, bfdd_conf: Option<&str>) -> Frr {
        let run_dir = dir.join("run");
        std::fs::create_dir_all(&run_dir).expect("frr run dir");
        std::fs::write(dir.join("vtysh.conf"), "").unwrap();
        std::fs::write(
            dir.join("zebra.conf"),
            format!("log file {}/zebra.log\n", dir.display()),
        )
        .unwrap();
        // bgpd logs to DIR/bgpd.log (see [`Frr::log`]) unless the config says otherwise.
        let bgpd_conf = if bgpd_conf.contains("log file") {
            bgpd_conf.to_string()
        } else {
            format!("log file {}/bgpd.log\n{bgpd_conf}", dir.display())
        };
        std::fs::write(dir.join("bgpd.conf"), bgpd_conf).unwrap();
        if let Some(b) = bfdd_conf {
            // Same for bfdd: DIR/bfdd.log, so nothing piles up in a pipe.
            let b = if b.contains("log file") {
                b.to_string()
            } else {
                format!("log file {}/bfdd.log\n{b}", dir.display())
            };
            std::fs::write(dir.join("bfdd.conf"), b).unwrap();
        }
        run("chown", &["-R", "frr:frr", dir.to_str().unwrap()]).expect("chown frr dir");
        let zebra = Self::daemon(ns, &dir, "zebra", &[]);
        let sock = run_dir.join("zserv.api");
        let ok = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            sock.exists().then_some(())
        });
        assert!(ok.is_some(), "zebra did not start");
        let bfdd = bfdd_conf.map(|_| {
            let ctl = run_dir.join("bfdd.sock");
            Self::daemon(ns, &dir, "bfdd", &["--bfdctl", ctl.to_str().unwrap()])
        });
        let mut frr = Frr {
            dir,
            ns: ns.name().to_string(),
            zebra,
            bfdd,
            bgpd: None,
        };
        frr.start_bgpd(ns);
        frr
    }

    fn daemon(ns: &Netns, dir: &Path, name: &str, extra: &[&str]) -> Proc {
        let run_dir = dir.join("run");
        let conf = dir.join(format!("{name}.conf"));
        let pid = run_dir.join(format!("{name}.pid"));
        let zserv = run_dir.join("zserv.api");
        let mut args = vec![
            "-u",
            "frr",
            "-g",
            "frr",
            "--vty_socket",
            run_dir.to_str().unwrap(),
            "-z",
            zserv.to_str().unwrap(),
            "-f",
            conf.to_str().unwrap(),
            "-i",
            pid.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = dir.join(format!("{name}.out"));
        ns.spawn_logged(&out, &[], &format!("/usr/lib/frr/{name}"), &args)
    }

    /// (Re)starts bgpd with the config file in the directory; waits until vtysh answers.
    pub fn start_bgpd(&mut self, ns: &Netns) {
        self.bgpd = Some(Self::daemon(ns, &self.dir, "bgpd", &[]));
        let ok = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            self.try_vtysh(&["show bgp summary"]).ok()
        });
        assert!(ok.is_some(), "bgpd did not start");
    }

    /// Stops bgpd only (zebra keeps running).
    pub fn stop_bgpd(&mut self) {
        if let Some(mut p) = self.bgpd.take() {
            p.stop();
        }
    }

    /// Lets the daemons run on after this value is gone (a lab that outlives its builder);
    /// returns their PIDs. Their directory stays too.
    pub fn detach(self) -> Vec<u32> {
        let mut me = std::mem::ManuallyDrop::new(self);
        let mut pids: Vec<u32> = [me.bgpd.take(), me.bfdd.take()]
            .into_iter()
            .flatten()
            .map(|p| p.detach())
            .collect();
        // zebra's `Proc` is never dropped (ManuallyDrop), so it is not stopped.
        pids.push(me.zebra.pid());
        pids
    }

    /// The daemons' PIDs.
    pub fn pids(&self) -> Vec<u32> {
        [Some(&self.zebra), self.bfdd.as_ref(), self.bgpd.as_ref()]
            .into_iter()
            .flatten()
            .map(Proc::pid)
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ns(&self) -> &str {
        &self.ns
    }

    pub fn try_vtysh(&self, cmds: &[&str]) -> Result<String, String> {
        let run_dir = self.dir.join("run");
        let mut args = vec![
            "--config_dir",
            self.dir.to_str().unwrap(),
            "--vty_socket",
            run_dir.to_str().unwrap(),
        ];
        for c in cmds {
            args.push("-c");
            args.push(c);
        }
        run("vtysh", &args)
    }

    pub fn vtysh(&self, cmds: &[&str]) -> String {
        self.try_vtysh(cmds).expect("vtysh")
    }

    /// `show bgp neighbors ADDR json` parsed.
    pub fn neighbor(&self, addr: &str) -> serde_json::Value {
        let out = self.vtysh(&[&format!("show bgp neighbors {addr} json")]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v.get(addr).cloned().unwrap_or_default()
    }

    pub fn neighbor_state(&self, addr: &str) -> String {
        self.neighbor(addr)["bgpState"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn wait_established(&self, addr: &str, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || {
            (self.neighbor_state(addr) == "Established").then_some(())
        })
        .is_some()
    }

    /// `show bgp ipv4|ipv6 unicast PREFIX json` parsed (null when absent).
    pub fn route(&self, prefix: &str) -> serde_json::Value {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let out = self.vtysh(&[&format!("show bgp {afi} unicast {prefix} json")]);
        serde_json::from_str(&out).unwrap_or_default()
    }

    pub fn has_route(&self, prefix: &str) -> bool {
        self.route(prefix)["paths"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    }

    pub fn log(&self, daemon: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.log"))).unwrap_or_default()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        if let Some(mut p) = self.bgpd.take() {
            p.stop();
        }
        if let Some(mut p) = self.bfdd.take() {
            p.stop();
        }
        self.zebra.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        // FRR writes /var/tmp/frr/<daemon>.<pid>/ whatever we say; remove what is empty.
        let _ = std::fs::remove_dir("/var/tmp/frr");
    }
}
