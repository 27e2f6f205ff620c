//! Our own BGP speaker inside a namespace: a tokio runtime whose worker threads were created
//! in the namespace (threads inherit the namespace of the thread that creates them), so
//! every socket the speaker opens lives there.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use ferrolb_bgp::{BgpSpeaker, PeerStatus, SpeakerConfig, State};

use crate::netns::{Netns, wait_until};

pub struct Speaker {
    rt: Option<tokio::runtime::Runtime>,
    pub speaker: BgpSpeaker,
}

impl Speaker {
    pub fn start(ns: &Netns, cfg: SpeakerConfig) -> Speaker {
        let rt = ns.run_in(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime in netns")
        });
        let speaker = rt
            .block_on(rt.spawn(async move { BgpSpeaker::new(cfg) }))
            .expect("join")
            .expect("BgpSpeaker::new");
        Speaker {
            rt: Some(rt),
            speaker,
        }
    }

    /// Runs `f(speaker)` on the namespace's runtime and waits for its result.
    pub fn run<T, F>(&self, f: impl FnOnce(BgpSpeaker) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = self.rt.as_ref().expect("runtime");
        rt.block_on(rt.spawn(f(self.speaker.clone())))
            .expect("task panicked")
    }

    pub fn status(&self, peer: IpAddr) -> Option<PeerStatus> {
        self.speaker.peer_status(peer)
    }

    pub fn wait_state(&self, peer: IpAddr, state: State, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(20), || {
            (self.status(peer).map(|s| s.state) == Some(state)).then_some(())
        })
        .is_some()
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Addresses of the two-namespace lab made by [`link_lab`].
pub const ROUTER_V4: &str = "192.0.2.1";
pub const NODE_V4: &str = "192.0.2.10";
pub const ROUTER_V6: &str = "2001:db8::1";
pub const NODE_V6: &str = "2001:db8::10";

/// Two namespaces joined by a veth: `router` (192.0.2.1/24, 2001:db8::1/64) and `node`
/// (192.0.2.10/24, 2001:db8::10/64), IPv6 DAD off so addresses work at once.
pub fn link_lab(tag: &str) -> (Netns, Netns) {
    let r = Netns::new(&format!("{tag}-r"));
    let n = Netns::new(&format!("{tag}-n"));
    crate::netns::veth(&r, "eth0", &n, "eth0");
    for (ns, v4, v6) in [(&r, ROUTER_V4, ROUTER_V6), (&n, NODE_V4, NODE_V6)] {
        ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])
            .expect("v4 addr");
        ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])
            .expect("v6 addr");
    }
    (r, n)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP address")
}

/// GoBGP as the router of [`link_lab`]: AS 64513 on ROUTER_V4, one IPv4 neighbour NODE_V4
/// (AS 64512), connect retry 1 s.
pub fn gobgp_router_toml() -> String {
    format!(
        r#"[global.config]
  as = 64513
  router-id = "{ROUTER_V4}"
  local-address-list = ["{ROUTER_V4}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{NODE_V4}"
    peer-as = 64512
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
    )
}
