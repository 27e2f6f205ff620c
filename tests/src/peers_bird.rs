//! BIRD 2 as a test peer: a private config directory, `bird -f` in a namespace, `birdc` on
//! its control socket. Reusable for BGP, BFD and end-to-end tests.
//!
//! ```text
//! let bird = Bird::start(&r, &format!("{}\n{}", Bird::bgp_protocol("node", ..), ..));
//! assert!(bird.wait_established("node", Duration::from_secs(10)));
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns::{Netns, Proc, run, wait_until};

pub struct Bird {
    dir: PathBuf,
    ctl: PathBuf,
    ns: String,
    proc: Proc,
}

/// Settings for one `protocol bgp` block (see [`Bird::bgp_protocol`]).
#[derive(Debug, Clone)]
pub struct BirdBgp<'a> {
    pub name: &'a str,
    pub local_addr: &'a str,
    pub local_as: u32,
    pub neighbor: &'a str,
    pub neighbor_as: u32,
    /// Extra statements inside the protocol block (`password "x";`, `hold time 3;`, ...).
    pub extra: &'a str,
    /// Statements inside the `ipv6 { }` channel (e.g. `next hop address 2001:db8::1;`);
    /// `None` leaves IPv6 out.
    pub ipv6: Option<&'a str>,
    /// Statements inside the `ipv4 { }` channel (e.g. `gateway direct;`).
    pub ipv4: &'a str,
}

impl Bird {
    /// Starts BIRD in `ns` with `body` after the standard header (log to a file, router id,
    /// `protocol device`). Waits until the control socket answers.
    pub fn start(ns: &Netns, router_id: &str, body: &str) -> Bird {
        let dir = crate::peers_dir("bird");
        let ctl = dir.join("bird.ctl");
        let conf = dir.join("bird.conf");
        let log = dir.join("bird.log");
        std::fs::write(
            &conf,
            format!(
                "log \"{}\" all;\nrouter id {router_id};\nprotocol device {{ scan time 1; }}\n{body}\n",
                log.display()
            ),
        )
        .expect("write bird.conf");
        let proc = ns.spawn(
            "bird",
            &[
                "-f",
                "-c",
                conf.to_str().unwrap(),
                "-s",
                ctl.to_str().unwrap(),
            ],
        );
        let mut bird = Bird {
            dir,
            ctl,
            ns: ns.name().to_string(),
            proc,
        };
        let up = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            bird.try_birdc(&["show", "status"])
                .ok()
                .filter(|s| s.contains("Daemon is up"))
        });
        if up.is_none() {
            let (out, err) = bird.proc.stop();
            panic!("BIRD did not start: {out}{err}{}", bird.log());
        }
        bird
    }

    /// A `protocol bgp` block with short timers (connect delay 1 s, error wait 1-5 s),
    /// importing everything into master4/master6 and exporting nothing.
    pub fn bgp_protocol(p: &BirdBgp<'_>) -> String {
        let v6 = p
            .ipv6
            .map(|x| format!("  ipv6 {{ import all; export none; {x} }};\n"))
            .unwrap_or_default();
        format!(
            "protocol bgp {name} {{\n  local {la} as {las};\n  neighbor {n} as {nas};\n  \
             connect delay time 1; connect retry time 1; error wait time 1, 5;\n  {extra}\n  \
             ipv4 {{ import all; export none; {v4} }};\n{v6}}}\n",
            v4 = p.ipv4,
            name = p.name,
            la = p.local_addr,
            las = p.local_as,
            n = p.neighbor,
            nas = p.neighbor_as,
            extra = p.extra,
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ns(&self) -> &str {
        &self.ns
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Sends a signal to the daemon (`STOP`/`CONT` simulate a hung router).
    pub fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    pub fn try_birdc(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-s", self.ctl.to_str().unwrap()];
        full.extend_from_slice(args);
        run("birdc", &full)
    }

    pub fn birdc(&self, args: &[&str]) -> String {
        self.try_birdc(args).expect("birdc")
    }

    /// `show protocols all NAME`.
    pub fn protocol(&self, name: &str) -> String {
        self.birdc(&["show", "protocols", "all", name])
    }

    pub fn is_established(&self, name: &str) -> bool {
        self.protocol(name).contains("Established")
    }

    pub fn wait_established(&self, name: &str, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(50), || {
            self.is_established(name).then_some(())
        })
        .is_some()
    }

    /// `show route all for PREFIX` in the right table (`all` details included).
    pub fn route(&self, prefix: &str) -> String {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        self.try_birdc(&["show", "route", "all", "table", table, "for", prefix])
            .unwrap_or_else(|e| e)
    }

    /// Whether `prefix` is in BIRD's table exactly (not a covering route).
    pub fn has_route(&self, prefix: &str) -> bool {
        let table = if prefix.contains(':') {
            "master6"
        } else {
            "master4"
        };
        // birdc exits 1 with "Network not found" when it is absent.
        self.try_birdc(&["show", "route", "table", table, prefix])
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(prefix))
    }

    /// Number of routes BIRD imported from protocol `name` (from `show route count`).
    pub fn route_count(&self, name: &str) -> usize {
        let out = self.birdc(&["show", "route", "protocol", name, "count"]);
        out.lines()
            .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
            .sum()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bird.log")).unwrap_or_default()
    }

    /// Stops BIRD (TERM, then KILL) and returns its stderr.
    pub fn stop(&mut self) -> String {
        self.proc.stop().1
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.proc.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
