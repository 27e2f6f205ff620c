//! L2 test bench for the ARP/NDP responder: a "node" namespace running our responder on a
//! tokio runtime of its own, and a "client" namespace running arping/ndisc6 and the kernel's
//! neighbour code, joined by a veth pair (`eth0` on both sides).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use ferrolb_arp::{Config, Counters, L2Event, L2Handle, L2Responder};
use tokio::sync::{mpsc, oneshot};

use crate::netns::{Netns, run, veth, wait_until};

pub const NODE_MAC: &str = "02:00:00:00:0a:01";
pub const CLIENT_MAC: &str = "02:00:00:00:0c:01";

/// Two namespaces and a veth pair; the client has 192.0.2.1/24 and 2001:db8::1/64 (no DAD),
/// the node has no address in the test subnets (only our responder answers there).
pub struct L2Bench {
    pub node: Netns,
    pub client: Netns,
}

impl L2Bench {
    pub fn new() -> L2Bench {
        let node = Netns::new("l2n");
        let client = Netns::new("l2c");
        for ns in [&node, &client] {
            // No DAD and no router solicitations: no 1-2 s waits, no stray ICMPv6.
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.router_solicitations=0",
                "net.ipv6.conf.default.router_solicitations=0",
            ] {
                ns.sysctl(key).expect("sysctl");
            }
        }
        veth(&node, "eth0", &client, "eth0");
        for (ns, mac) in [(&node, NODE_MAC), (&client, CLIENT_MAC)] {
            ns.ip(&["link", "set", "eth0", "down"]).expect("down");
            ns.ip(&["link", "set", "eth0", "address", mac])
                .expect("mac");
            ns.ip(&["link", "set", "eth0", "up"]).expect("up");
        }
        // Both ends operationally up before anything starts, so a responder never sees a
        // late carrier-up (which would count as a link change and re-announce).
        for ns in [&node, &client] {
            let up = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
                ns.ip(&["-br", "link", "show", "eth0"])
                    .ok()
                    .filter(|s| s.split_whitespace().nth(1) == Some("UP"))
            });
            assert!(up.is_some(), "eth0 in {} did not come up", ns.name());
        }
        client
            .ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"])
            .expect("client v4");
        client
            .ip(&["addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad"])
            .expect("client v6");
        L2Bench { node, client }
    }

    /// Starts our responder inside the node namespace.
    pub fn start_responder(&self, config: Config) -> RunningResponder {
        RunningResponder::start(&self.node, config)
    }

    /// `ip neigh show IP dev eth0` in the client.
    pub fn client_neigh(&self, ip: &str) -> String {
        self.client
            .ip(&["neigh", "show", ip, "dev", "eth0"])
            .unwrap_or_default()
    }
}

impl Default for L2Bench {
    fn default() -> Self {
        Self::new()
    }
}

/// Our responder running on its own runtime in a thread inside a namespace; stopped on drop.
pub struct RunningResponder {
    pub handle: L2Handle,
    pub events: mpsc::Receiver<L2Event>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningResponder {
    pub fn start(ns: &Netns, config: Config) -> RunningResponder {
        let (tx, rx) = std_mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = ns.spawn_thread(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let started = L2Responder::start(config).expect("start L2 responder");
                tx.send(started).expect("hand over the responder");
                let _ = stop_rx.await;
            });
        });
        let (handle, events) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("responder started");
        RunningResponder {
            handle,
            events,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn set_owned(&self, iface: &str, ips: &[&str]) {
        let set: BTreeSet<IpAddr> = ips.iter().map(|s| s.parse().expect("ip")).collect();
        self.handle.set_owned(iface, set).expect("set_owned");
    }

    pub fn counters(&self) -> Counters {
        self.handle.counters()
    }

    /// Waits (bounded) for an event matching `f`, skipping others.
    pub fn wait_event(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&L2Event) -> bool,
    ) -> Option<L2Event> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            match self.events.try_recv() {
                Ok(ev) if f(&ev) => return Some(ev),
                Ok(_) => {}
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            }
        }
        None
    }
}

impl Drop for RunningResponder {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// True if `arping` from the client got a reply from `mac` for `ip`.
pub fn arping(client: &Netns, args: &[&str]) -> (bool, String) {
    let out = client.exec_output("arping", args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `ndisc6` in the client; success and its output.
pub fn ndisc6(client: &Netns, args: &[&str]) -> (bool, String) {
    let out = client.exec_output("ndisc6", args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Link-layer multicast groups of `dev` in `ns` (`ip maddr show dev DEV`).
pub fn maddrs(ns: &Netns, dev: &str) -> String {
    run("ip", &["-n", ns.name(), "maddr", "show", "dev", dev]).unwrap_or_default()
}

/// Sends each frame of `frames` `repeat` times on `iface` of `ns` from an AF_PACKET socket
/// (the crate's `PacketSocket`), at most `per_ms` frames per millisecond (a veth's receive
/// backlog, 1000 frames, would otherwise overflow and drop frames before any responder sees
/// them); returns how many went out and how long it took. Refused frames are not retried.
pub fn send_frames(
    ns: &Netns,
    iface: &str,
    frames: Vec<Vec<u8>>,
    repeat: usize,
    per_ms: usize,
) -> (usize, Duration) {
    let iface = iface.to_string();
    ns.run_in(move || {
        let sock = ferrolb_arp::PacketSocket::open(&iface).expect("open packet socket");
        let start = std::time::Instant::now();
        let mut sent = 0;
        let all = frames.iter().cycle().take(frames.len() * repeat);
        for (i, f) in all.enumerate() {
            if i % per_ms.max(1) == 0 {
                let due = start + Duration::from_millis((i / per_ms.max(1)) as u64);
                std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            }
            sent += usize::from(sock.send(f).is_ok());
        }
        (sent, start.elapsed())
    })
}

/// A broadcast ARP request from `mac` (Ethernet source and sender hardware address).
pub fn arp_request(mac: &str, spa: &str, tpa: &str) -> Vec<u8> {
    ferrolb_arp::packet::Frame::arp_request(
        mac.parse().expect("MAC"),
        spa.parse().expect("sender IP"),
        tpa.parse().expect("target IP"),
    )
    .to_bytes()
    .to_vec()
}
