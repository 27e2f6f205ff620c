//! The public API: one [`BgpSpeaker`] per node, any number of peers, one desired route set
//! (for all peers, or per peer).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrolb_bgp::Error> {
//! use ferrolb_bgp::*;
//! use std::collections::BTreeMap;
//! let speaker = BgpSpeaker::new(SpeakerConfig::new("192.0.2.10".parse().unwrap()))?;
//! speaker.add_peer(PeerConfig::new("192.0.2.1".parse().unwrap(), 64512, 64513))?;
//! let mut routes = BTreeMap::new();
//! routes.insert("203.0.113.10/32".parse().unwrap(), RouteAttrs::default());
//! speaker.set_routes(PeerSelector::All, routes)?;
//! let mut status = speaker.subscribe();
//! status.changed().await.ok();
//! speaker.shutdown(GracefulMode::CeaseAndWithdraw).await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, info, info_span, warn};

use crate::Error;
use crate::counters::{Counters, CountersSnapshot};
use crate::driver::{Command, PeerTask};
use crate::machine::Fsm;
use crate::packet::{CeaseSubcode, Notification};
pub use crate::peer_config::{PeerConfig, PeerKey};
use crate::rib::{IntoRouteSet, RouteSet};
pub use crate::status::PeerStatus;
use crate::status::StatusBoard;

/// Speaker-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub router_id: Ipv4Addr,
    /// Where to accept connections from peers (passive peers, and active peers that dial
    /// us: collisions are resolved per RFC 4271 §6.8). `None`: outbound only.
    pub listen: Option<SocketAddr>,
    /// Route changes within this long of the last UPDATEs are collected and go out together
    /// at the end of the window; a change after a quiet window goes out at once.
    pub coalesce: Duration,
}

impl SpeakerConfig {
    pub fn new(router_id: Ipv4Addr) -> Self {
        SpeakerConfig {
            router_id,
            listen: None,
            coalesce: Duration::from_millis(20),
        }
    }
}

/// Which peers [`BgpSpeaker::set_routes`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSelector {
    /// Every peer without a per-peer route set.
    All,
    /// One peer; overrides the `All` set for it.
    Peer(PeerKey),
}

/// A peer in the default VRF.
impl From<IpAddr> for PeerSelector {
    fn from(a: IpAddr) -> Self {
        PeerSelector::Peer(a.into())
    }
}

impl From<PeerKey> for PeerSelector {
    fn from(k: PeerKey) -> Self {
        PeerSelector::Peer(k)
    }
}

/// The Cease sent when a peer is removed or reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeaseReason {
    pub subcode: CeaseSubcode,
    /// RFC 9003 shutdown communication (sent with Administrative Shutdown/Reset only).
    pub message: String,
}

impl CeaseReason {
    pub fn admin_shutdown(message: impl Into<String>) -> Self {
        CeaseReason {
            subcode: CeaseSubcode::AdminShutdown,
            message: message.into(),
        }
    }

    pub fn peer_deconfigured() -> Self {
        CeaseReason {
            subcode: CeaseSubcode::PeerDeconfigured,
            message: String::new(),
        }
    }

    fn notification(&self) -> Notification {
        Notification::cease(self.subcode, &self.message)
    }
}

/// How [`BgpSpeaker::shutdown`] leaves the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GracefulMode {
    /// Withdraw every route, then send Cease / Administrative Shutdown.
    CeaseAndWithdraw,
    /// Close the connections without a NOTIFICATION, so peers with graceful restart keep
    /// our routes (and traffic keeps flowing) until we are back.
    KeepForGracefulRestart,
}

struct PeerHandle {
    /// What the peer runs with now.
    cfg: PeerConfig,
    cmds: mpsc::UnboundedSender<Command>,
    routes: watch::Sender<Arc<RouteSet>>,
    own_routes: bool,
    task: tokio::task::JoinHandle<()>,
}

struct Inner {
    cfg: SpeakerConfig,
    peers: Mutex<HashMap<PeerKey, PeerHandle>>,
    all_routes: Mutex<Arc<RouteSet>>,
    board: Arc<StatusBoard>,
    counters: Arc<Counters>,
    listener_fd: Option<RawFd>,
    listen_addr: Option<SocketAddr>,
    listener_task: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Handle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Peer tasks end on their own when their command channels close (with a Cease).
        if let Some(t) = &self.listener_task {
            t.abort();
        }
    }
}

/// The embedded BGP speaker. Cheap to clone; must be created inside a tokio runtime.
#[derive(Clone)]
pub struct BgpSpeaker {
    inner: Arc<Inner>,
}

impl BgpSpeaker {
    /// Starts the speaker (and its listener, if configured). Must be called inside a tokio
    /// runtime; peer tasks run on that runtime, whatever thread later calls the methods.
    pub fn new(cfg: SpeakerConfig) -> Result<Self, Error> {
        let rt = tokio::runtime::Handle::current();
        let (tx, _) = watch::channel(BTreeMap::new());
        let board = Arc::new(StatusBoard::new(tx));
        let peers: Mutex<HashMap<PeerKey, PeerHandle>> = Mutex::new(HashMap::new());
        let mut listener_fd = None;
        let mut listener = None;
        let mut listen_addr = None;
        if let Some(addr) = cfg.listen {
            let l = bind_listener(addr).map_err(|source| Error::Bind { addr, source })?;
            listener_fd = Some(l.as_raw_fd());
            listen_addr = l.local_addr().ok();
            listener = Some(l);
        }
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            let listener_task = listener.map(|l| {
                let weak = weak.clone();
                tokio::spawn(accept_loop(l, weak))
            });
            Inner {
                cfg,
                peers,
                all_routes: Mutex::new(Arc::new(RouteSet::new())),
                board,
                counters: Arc::new(Counters::default()),
                listener_fd,
                listen_addr,
                listener_task,
                rt,
            }
        });
        Ok(BgpSpeaker { inner })
    }

    /// Accepts peers' connections on `addr` too, until the returned [`Listener`] is dropped
    /// (unnumbered peering: the node's link-local address on the link, with its scope).
    /// Connections are handed to the peer with the remote address, as on the main listener;
    /// TCP MD5 keys are not set on it.
    pub fn add_listener(&self, addr: SocketAddr) -> Result<Listener, Error> {
        let l = bind_listener(addr).map_err(|source| Error::Bind { addr, source })?;
        let local = l.local_addr().unwrap_or(addr);
        let task = self
            .inner
            .rt
            .spawn(accept_loop(l, Arc::downgrade(&self.inner)));
        Ok(Listener { local, task })
    }

    /// The address the listener is bound to (with the real port when 0 was asked for).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.inner.listen_addr
    }

    pub fn router_id(&self) -> Ipv4Addr {
        self.inner.cfg.router_id
    }

    /// Adds a peer and starts connecting (or waiting, if passive).
    pub fn add_peer(&self, cfg: PeerConfig) -> Result<(), Error> {
        cfg.validate()?;
        let mut peers = self.inner.peers.lock().expect("peers lock");
        let key = cfg.key();
        if peers.contains_key(&key) {
            return Err(Error::DuplicatePeer(key));
        }
        // The listener serves the default VRF only.
        if let (Some(fd), Some(pw), None) = (self.inner.listener_fd, &cfg.md5_password, &cfg.vrf) {
            crate::sys::set_tcp_md5(fd, cfg.peer_addr, pw.as_bytes()).map_err(|source| {
                Error::Md5 {
                    peer: cfg.peer_addr,
                    source,
                }
            })?;
        }
        let all = self.inner.all_routes.lock().expect("routes lock").clone();
        let (rtx, rrx) = watch::channel(all);
        let (ctx, crx) = mpsc::unbounded_channel();
        let fsm = Fsm::new(cfg.fsm_config(self.inner.cfg.router_id));
        let span = info_span!(
            "peer",
            addr = %cfg.peer_addr,
            vrf = cfg.vrf.as_deref().unwrap_or("default"),
            asn = %cfg.peer_as_rule()
        );
        let task = PeerTask::new(
            cfg.clone(),
            fsm,
            rrx,
            crx,
            ctx.downgrade(),
            self.inner.board.clone(),
            self.inner.counters.clone(),
            self.inner.cfg.coalesce,
        );
        self.inner.board.set(key.clone(), PeerStatus::default());
        let task = self.inner.rt.spawn(task.run().instrument(span));
        peers.insert(
            key,
            PeerHandle {
                cfg,
                cmds: ctx,
                routes: rtx,
                own_routes: false,
                task,
            },
        );
        Ok(())
    }

    /// Changes the settings of a peer. Nothing happens when they are the same; otherwise a
    /// session that is up (or being opened) ends with Cease / Other Configuration Change
    /// (RFC 4486) and reconnects with the new settings after the idle hold-off; a peer that
    /// is only trying to connect starts over at once. Routes set for the peer are kept and
    /// sent again on the new session. Returns whether anything changed. The address and VRF
    /// cannot change (they name the peer): remove the peer and add the new one.
    pub fn update_peer(&self, cfg: PeerConfig) -> Result<bool, Error> {
        cfg.validate()?;
        let mut peers = self.inner.peers.lock().expect("peers lock");
        let key = cfg.key();
        let h = peers.get_mut(&key).ok_or(Error::UnknownPeer(key))?;
        if h.cfg == cfg {
            return Ok(false);
        }
        if let Some(fd) = self.inner.listener_fd
            && cfg.vrf.is_none()
            && h.cfg.md5_password != cfg.md5_password
        {
            let key = cfg.md5_password.as_deref().unwrap_or_default();
            crate::sys::set_tcp_md5(fd, cfg.peer_addr, key.as_bytes()).map_err(|source| {
                Error::Md5 {
                    peer: cfg.peer_addr,
                    source,
                }
            })?;
        }
        let fsm = Box::new(cfg.fsm_config(self.inner.cfg.router_id));
        h.cmds
            .send(Command::Reconfigure {
                cfg: Box::new(cfg.clone()),
                fsm,
            })
            .map_err(|_| Error::Closed)?;
        h.cfg = cfg;
        Ok(true)
    }

    /// Removes a peer: sends the Cease (the peer drops our routes) and forgets it.
    pub async fn remove_peer(
        &self,
        peer: impl Into<PeerKey>,
        reason: CeaseReason,
    ) -> Result<(), Error> {
        let key = peer.into();
        let h = self
            .inner
            .peers
            .lock()
            .expect("peers lock")
            .remove(&key)
            .ok_or_else(|| Error::UnknownPeer(key.clone()))?;
        if let (Some(fd), None) = (self.inner.listener_fd, &key.vrf) {
            let _ = crate::sys::set_tcp_md5(fd, key.addr, &[]);
        }
        let (done, wait) = oneshot::channel();
        let _ = h.cmds.send(Command::Stop {
            notification: reason.notification(),
            withdraw: false,
            done,
        });
        let _ = wait.await;
        let _ = h.task.await;
        self.inner.board.remove(&key);
        Ok(())
    }

    /// Tears the session down at once with a Cease / Administrative Reset carrying `reason`
    /// (BFD Down calls this); it reconnects after the usual backoff.
    pub fn reset_peer(&self, peer: impl Into<PeerKey>, reason: &str) -> Result<(), Error> {
        let key = peer.into();
        let peers = self.inner.peers.lock().expect("peers lock");
        let h = peers
            .get(&key)
            .ok_or_else(|| Error::UnknownPeer(key.clone()))?;
        h.cmds
            .send(Command::Reset(Notification::cease(
                CeaseSubcode::AdminReset,
                reason,
            )))
            .map_err(|_| Error::Closed)
    }

    /// Sets the routes to advertise. Only the difference to what each peer has goes out,
    /// after the coalescing window. An `Arc<RouteSet>` given to several peers is shared by
    /// them, not copied.
    pub fn set_routes(
        &self,
        target: impl Into<PeerSelector>,
        routes: impl IntoRouteSet,
    ) -> Result<(), Error> {
        let routes = routes.into_route_set();
        let mut peers = self.inner.peers.lock().expect("peers lock");
        match target.into() {
            PeerSelector::All => {
                *self.inner.all_routes.lock().expect("routes lock") = routes.clone();
                for h in peers.values().filter(|h| !h.own_routes) {
                    h.routes.send_replace(routes.clone());
                }
            }
            PeerSelector::Peer(key) => {
                let h = peers
                    .get_mut(&key)
                    .ok_or_else(|| Error::UnknownPeer(key.clone()))?;
                h.own_routes = true;
                h.routes.send_replace(routes);
            }
        }
        Ok(())
    }

    /// Status of every peer, updated on each change.
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<PeerKey, PeerStatus>> {
        self.inner.board.subscribe()
    }

    pub fn peer_status(&self, peer: impl Into<PeerKey>) -> Option<PeerStatus> {
        self.inner.board.get(&peer.into())
    }

    pub fn counters(&self) -> CountersSnapshot {
        self.inner.counters.snapshot()
    }

    /// Stops every peer as `mode` says and waits until the messages are out.
    pub async fn shutdown(&self, mode: GracefulMode) {
        let handles: Vec<(PeerKey, PeerHandle)> = self
            .inner
            .peers
            .lock()
            .expect("peers lock")
            .drain()
            .collect();
        if let Some(t) = &self.inner.listener_task {
            t.abort();
        }
        let mut waits = Vec::new();
        for (addr, h) in handles {
            let (done, wait) = oneshot::channel();
            let cmd = match mode {
                GracefulMode::CeaseAndWithdraw => Command::Stop {
                    notification: Notification::cease(
                        CeaseSubcode::AdminShutdown,
                        "ferrolb speaker shutting down",
                    ),
                    withdraw: true,
                    done,
                },
                GracefulMode::KeepForGracefulRestart => Command::CloseForRestart { done },
            };
            let _ = h.cmds.send(cmd);
            // Keep the handle (and its channels) alive until the peer has stopped.
            waits.push((addr, wait, h));
        }
        for (addr, wait, h) in waits {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
            let _ = h.task.await;
            info!(peer = %addr, ?mode, "BGP peer stopped");
        }
        // Let the FINs go out before the runtime may end.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An extra listener ([`BgpSpeaker::add_listener`]); stops accepting when dropped.
pub struct Listener {
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(64)
}

async fn accept_loop(l: TcpListener, inner: std::sync::Weak<Inner>) {
    loop {
        let (stream, remote) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "BGP listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        let ip = match remote.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        let peers = inner.peers.lock().expect("peers lock");
        // Listeners are in the default VRF.
        match peers.get(&PeerKey::from(ip)) {
            Some(h) => {
                let _ = h.cmds.send(Command::Inbound(stream));
            }
            None => info!(%remote, "connection from an unconfigured address refused"),
        }
    }
}
