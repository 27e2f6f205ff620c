//! Neighbour discovery for unnumbered BGP peering (BGPPeer `interface`): on one interface,
//! send periodic ICMPv6 Router Advertisements from our link-local address and learn the
//! peer's link-local address from the Router Advertisements it sends.
//!
//! Why Router Advertisements: FRR (zebra) learns an unnumbered neighbour only from the RAs
//! it receives on the interface and hands their source to bgpd; without ours, FRR never
//! accepts our session. FRR in turn enables RAs on every interface with an interface
//! neighbour, so listening to them finds the peer without netlink (the kernel neighbour
//! table would need a parser and its unsafe; RAs reuse this crate's AF_PACKET socket and NDP
//! codec). Our RAs carry router lifetime 0, so hosts on the link never take us as their
//! default router, and hop limit 255 (RFC 4861 §6.1.2, checked by receivers).
//!
//! The link is expected to be point-to-point (the router and this node). The neighbour is the
//! source of a valid RA that is not ours ([`NeighbourChoice`]): the first one heard; kept when
//! RAs stop (the BGP session's hold timer judges a dead peer); replaced by another sender only
//! once the current one has been silent for [`RaConfig::keep`], so a second sender on the link
//! cannot flap the session. The interface (index, MAC, link-local address) is looked up again
//! on every send, so a re-created interface is picked up.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::Error;
use crate::link::{LinkInfo, poll_links};
use crate::packet::{ALL_NODES, RouterAdvert, multicast_mac, router_advert_source};
use crate::socket::{PacketSocket, TAG_ROOM};

/// How often Router Advertisements go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaConfig {
    /// The first `initial_count` RAs go out this far apart (so a peer finds us fast)...
    pub initial_interval: Duration,
    pub initial_count: u32,
    /// ...then this far apart (FRR's interface neighbours use 10 s).
    pub interval: Duration,
    /// A neighbour heard within this long is not replaced by another RA sender.
    pub keep: Duration,
}

impl Default for RaConfig {
    fn default() -> Self {
        RaConfig {
            initial_interval: Duration::from_secs(1),
            initial_count: 3,
            interval: Duration::from_secs(10),
            keep: Duration::from_secs(60),
        }
    }
}

impl RaConfig {
    /// The wait after the `sent`-th RA (1-based).
    pub fn after(&self, sent: u32) -> Duration {
        if sent < self.initial_count {
            self.initial_interval
        } else {
            self.interval
        }
    }
}

/// The peer found on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Neighbour {
    /// Its link-local address.
    pub addr: Ipv6Addr,
    /// The interface's index (the address's scope).
    pub ifindex: u32,
}

/// Which RA sender is the neighbour (pure; see the module docs).
#[derive(Debug, Clone, Default)]
pub struct NeighbourChoice {
    current: Option<(Ipv6Addr, std::time::Instant)>,
}

impl NeighbourChoice {
    /// An RA from neighbour `src` heard at `now`; returns the neighbour when it changed.
    pub fn heard(
        &mut self,
        src: Ipv6Addr,
        now: std::time::Instant,
        keep: Duration,
    ) -> Option<Ipv6Addr> {
        match self.current {
            Some((cur, _)) if cur == src => {
                self.current = Some((src, now));
                None
            }
            Some((_, last)) if now.saturating_duration_since(last) < keep => None,
            _ => {
                self.current = Some((src, now));
                Some(src)
            }
        }
    }
}

/// Whether an RA from `src` names a neighbour: a link-local sender that is not us.
pub fn is_neighbour(src: Ipv6Addr, own: &[Ipv6Addr]) -> bool {
    src.is_unicast_link_local() && !own.contains(&src)
}

/// Our link-local addresses on a link.
pub fn link_locals(link: &LinkInfo) -> Vec<Ipv6Addr> {
    link.addresses
        .iter()
        .filter_map(|n| match n {
            IpNet::V6(n) if n.addr().is_unicast_link_local() => Some(n.addr()),
            _ => None,
        })
        .collect()
}

/// RA sending and listening on one interface; stops when dropped.
pub struct NeighbourDiscovery {
    rx: watch::Receiver<Option<Neighbour>>,
    task: JoinHandle<()>,
}

impl Drop for NeighbourDiscovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NeighbourDiscovery {
    /// Starts on `iface` (which may not exist yet). Must be called inside a tokio runtime.
    pub fn start(iface: &str, cfg: RaConfig) -> Result<NeighbourDiscovery, Error> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (tx, rx) = watch::channel(None);
        let span = info_span!("unnumbered", iface = %iface);
        let task = rt.spawn(run(iface.to_string(), cfg, tx).instrument(span));
        Ok(NeighbourDiscovery { rx, task })
    }

    /// The neighbour found so far.
    pub fn neighbour(&self) -> Option<Neighbour> {
        *self.rx.borrow()
    }

    /// Changes of [`Self::neighbour`].
    pub fn subscribe(&self) -> watch::Receiver<Option<Neighbour>> {
        self.rx.clone()
    }
}

/// The socket of the interface as it is now, and what we send from.
struct Bound {
    ifindex: u32,
    sock: AsyncFd<PacketSocket>,
}

async fn run(iface: String, cfg: RaConfig, tx: watch::Sender<Option<Neighbour>>) {
    let mut bound: Option<Bound> = None;
    let mut own: Vec<Ipv6Addr> = Vec::new();
    let mut sent = 0u32;
    let mut next_send = Instant::now();
    let mut buf = vec![0u8; 2048 + TAG_ROOM];
    let mut choice = NeighbourChoice::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_send) => {
                own = send_one(&iface, &mut bound).unwrap_or_default();
                sent = sent.saturating_add(1);
                next_send = Instant::now() + cfg.after(sent);
            }
            guard = async { bound.as_ref().expect("guarded").sock.readable().await }, if bound.is_some() => {
                let Ok(mut guard) = guard else {
                    bound = None;
                    continue;
                };
                let b = bound.as_ref().expect("guarded");
                let (drained, heard) = read_all(&b.sock, &own, &mut buf);
                if drained {
                    guard.clear_ready();
                }
                let now = std::time::Instant::now();
                for src in heard {
                    if let Some(addr) = choice.heard(src, now, cfg.keep) {
                        info!(neighbour = %addr, ifindex = b.ifindex, "unnumbered neighbour found (router advertisement)");
                        tx.send_replace(Some(Neighbour { addr, ifindex: b.ifindex }));
                    }
                }
            }
        }
    }
}

/// Sends one RA, (re)opening the socket when the interface is new or was re-created.
/// Returns our link-local addresses on it (empty: nothing sent).
fn send_one(iface: &str, bound: &mut Option<Bound>) -> Option<Vec<Ipv6Addr>> {
    let links = match poll_links() {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot list interfaces");
            return None;
        }
    };
    let Some(link) = links.get(iface) else {
        debug!("interface not present; no router advertisement sent");
        *bound = None;
        return None;
    };
    if bound.as_ref().is_none_or(|b| b.ifindex != link.ifindex) {
        let opened = PacketSocket::open_router_advert(iface, link.ifindex).and_then(|s| {
            // The kernel's IPv6 stack has joined all-nodes already; this keeps the group
            // even if IPv6 is disabled on the link.
            let _ = s.membership(multicast_mac(&ALL_NODES), true);
            s.into_async().map_err(|source| Error::Register {
                iface: iface.to_string(),
                source,
            })
        });
        match opened {
            Ok(sock) => {
                *bound = Some(Bound {
                    ifindex: link.ifindex,
                    sock,
                })
            }
            Err(e) => {
                warn!(error = %e, "cannot open the router advertisement socket");
                *bound = None;
                return None;
            }
        }
    }
    let own = link_locals(link);
    let (Some(mac), Some(src), Some(b)) = (link.mac, own.first(), bound.as_ref()) else {
        debug!("interface has no MAC or no link-local address yet; no router advertisement sent");
        return Some(own);
    };
    let frame = RouterAdvert::unnumbered(mac).frame(mac, *src);
    if let Err(e) = b.sock.get_ref().send(&frame) {
        debug!(error = %e, "router advertisement not sent");
    }
    Some(own)
}

/// Reads what is queued (bounded); returns whether the socket is drained and the
/// neighbours heard, in order.
fn read_all(
    sock: &AsyncFd<PacketSocket>,
    own: &[Ipv6Addr],
    buf: &mut [u8],
) -> (bool, Vec<Ipv6Addr>) {
    let mut found = Vec::new();
    for _ in 0..64 {
        match sock.get_ref().try_recv(buf) {
            Ok(range) => match router_advert_source(&buf[range]) {
                Ok((src, _)) if is_neighbour(src, own) => found.push(src),
                Ok(_) => {}
                Err(e) => debug!(error = %e, "frame is not a valid router advertisement"),
            },
            Err(_) => return (true, found),
        }
    }
    (false, found)
}
