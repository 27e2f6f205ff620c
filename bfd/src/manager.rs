//! The tokio driver: moves BFD packets between sockets and [`Session`]s and runs their timers.
//!
//! One task owns every session. It receives on one UDP socket per address family bound to
//! port 3784 (TTL / hop limit read from control messages: anything but 255 is dropped and
//! counted, RFC 5881 §5), and sends from one socket per session bound to the session's local
//! address and a source port in 49152-65535 with TTL 255. Policy lives in [`Session`]; this
//! loop only decodes, selects the session, applies outputs.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, info_span, warn};

use crate::packet::{
    CONTROL_PORT, ControlPacket, DecodeCxt, Diag, DropReason, SINGLE_HOP_TTL, SOURCE_PORTS, State,
};
use crate::profile::BfdProfile;
use crate::session::{Input, Output, Session, SessionInfo};
use crate::{BfdError, sys};

/// Where the manager listens and where it sends.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Port to receive on (3784).
    pub listen_port: u16,
    /// Port peers listen on (3784).
    pub peer_port: u16,
    /// Open the IPv4 receive socket.
    pub ipv4: bool,
    /// Open the IPv6 receive socket.
    pub ipv6: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            listen_port: CONTROL_PORT,
            peer_port: CONTROL_PORT,
            ipv4: true,
            ipv6: true,
        }
    }
}

/// A session changed state. `diag` is our local diagnostic after the change (for example
/// [`Diag::ControlDetectionTimeExpired`] or [`Diag::NeighborSignaledSessionDown`] on a Down);
/// `remote_state` is the peer's state as last received (AdminDown when the peer shut the
/// session down on purpose).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdEvent {
    pub peer: IpAddr,
    pub old: State,
    pub new: State,
    pub diag: Diag,
    pub remote_state: State,
}

impl BfdEvent {
    /// True when this change means the forwarding path to the peer failed and BGP must be
    /// reset at once: Up -> Down, unless the peer signalled AdminDown (RFC 5882 §3.2: an
    /// administrative shutdown of BFD is not a path failure).
    pub fn is_failure(&self) -> bool {
        self.old == State::Up && self.new == State::Down && self.remote_state != State::AdminDown
    }
}

/// One session as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    pub peer: IpAddr,
    pub local: IpAddr,
    pub ifname: Option<String>,
    pub source_port: u16,
    pub info: SessionInfo,
    pub packets_in: u64,
    pub packets_out: u64,
    pub state_changes: u64,
}

/// Manager-wide counters, as plain numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BfdCounters {
    /// Datagrams read from the receive sockets (before any check).
    pub packets_in: u64,
    /// Control packets sent.
    pub packets_out: u64,
    /// Sends the kernel refused (no route, link down, buffer full).
    pub send_errors: u64,
    /// Session state changes.
    pub state_changes: u64,
    /// Discarded packets by reason (every reason present, zero or not).
    pub drops: BTreeMap<DropReason, u64>,
}

impl BfdCounters {
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops.get(&reason).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct SharedCounters {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    send_errors: AtomicU64,
    state_changes: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

impl SharedCounters {
    fn count_drop(&self, r: DropReason) {
        self.drops[r.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> BfdCounters {
        BfdCounters {
            packets_in: self.packets_in.load(Ordering::Relaxed),
            packets_out: self.packets_out.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            state_changes: self.state_changes.load(Ordering::Relaxed),
            drops: DropReason::ALL
                .iter()
                .map(|r| (*r, self.drops[r.index()].load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

type Subscribers = Arc<Mutex<Vec<mpsc::UnboundedSender<BfdEvent>>>>;

enum Command {
    Add {
        peer: IpAddr,
        local: IpAddr,
        ifname: Option<String>,
        profile: BfdProfile,
        reply: oneshot::Sender<Result<(), BfdError>>,
    },
    Remove {
        peer: IpAddr,
        reply: oneshot::Sender<Result<(), BfdError>>,
    },
    SetProfile {
        peer: IpAddr,
        profile: BfdProfile,
        reply: oneshot::Sender<Result<(), BfdError>>,
    },
    Status {
        peer: Option<IpAddr>,
        reply: oneshot::Sender<Vec<SessionStatus>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Handle to the BFD driver task. Dropping it stops the task without AdminDown; call
/// [`BfdManager::shutdown`] for a clean stop.
pub struct BfdManager {
    cmd: mpsc::Sender<Command>,
    counters: Arc<SharedCounters>,
    subscribers: Subscribers,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl BfdManager {
    /// Binds the receive sockets and starts the driver task on the current tokio runtime.
    pub async fn start(config: ManagerConfig) -> Result<BfdManager, BfdError> {
        let sock4 = if config.ipv4 {
            Some(bind_receive(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                config.listen_port,
            ))?)
        } else {
            None
        };
        let sock6 = if config.ipv6 {
            match bind_receive(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                config.listen_port,
            )) {
                Ok(s) => Some(s),
                // A host booted with ipv6.disable=1: run IPv4-only rather than not at all.
                Err(BfdError::BindReceive { source, .. })
                    if source.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
                {
                    warn!("IPv6 unavailable on this host; BFD runs IPv4-only");
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let counters = Arc::new(SharedCounters::default());
        let subscribers: Subscribers = Arc::default();
        let driver = Driver {
            has_v4: sock4.is_some(),
            has_v6: sock6.is_some(),
            peer_port: config.peer_port,
            sessions: HashMap::new(),
            by_discr: HashMap::new(),
            counters: counters.clone(),
            subscribers: subscribers.clone(),
            buf: BytesMut::with_capacity(64),
        };
        let task = tokio::spawn(driver.run(cmd_rx, sock4, sock6));
        Ok(BfdManager {
            cmd: cmd_tx,
            counters,
            subscribers,
            task: Mutex::new(Some(task)),
        })
    }

    /// Starts a single-hop session to `peer`, sending from `local` (and bound to `ifname` when
    /// given, which IPv6 link-local peers need).
    pub async fn add_session(
        &self,
        peer: IpAddr,
        local: IpAddr,
        ifname: Option<String>,
        profile: BfdProfile,
    ) -> Result<(), BfdError> {
        profile.validate()?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::Add {
            peer,
            local,
            ifname,
            profile,
            reply,
        })
        .await?;
        rx.await.map_err(|_| BfdError::Stopped)?
    }

    /// Sends AdminDown to `peer` and forgets the session.
    pub async fn remove_session(&self, peer: IpAddr) -> Result<(), BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Remove { peer, reply }).await?;
        rx.await.map_err(|_| BfdError::Stopped)?
    }

    /// Changes the timers of the session to `peer` in place. While Up, the change is
    /// announced with a Poll Sequence and takes force as RFC 5880 §6.8.3 says; the session
    /// does not flap.
    pub async fn set_profile(&self, peer: IpAddr, profile: BfdProfile) -> Result<(), BfdError> {
        profile.validate()?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetProfile {
            peer,
            profile,
            reply,
        })
        .await?;
        rx.await.map_err(|_| BfdError::Stopped)?
    }

    /// State of the session to `peer`.
    pub async fn session(&self, peer: IpAddr) -> Result<Option<SessionStatus>, BfdError> {
        Ok(self.status(Some(peer)).await?.into_iter().next())
    }

    /// State of every session.
    pub async fn sessions(&self) -> Result<Vec<SessionStatus>, BfdError> {
        self.status(None).await
    }

    async fn status(&self, peer: Option<IpAddr>) -> Result<Vec<SessionStatus>, BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status { peer, reply }).await?;
        rx.await.map_err(|_| BfdError::Stopped)
    }

    /// A stream of every state change from now on. Unbounded, so a slow reader never loses a
    /// Down; dropping the receiver unsubscribes.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<BfdEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Counters since start.
    pub fn counters(&self) -> BfdCounters {
        self.counters.snapshot()
    }

    /// Sends AdminDown on every session, then stops the driver. Call it before sending BGP
    /// CEASE so that peers do not read the shutdown as a failure (RFC 5882 §3.2).
    pub async fn shutdown(&self) -> Result<(), BfdError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Shutdown { reply }).await?;
        rx.await.map_err(|_| BfdError::Stopped)?;
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        Ok(())
    }

    async fn send(&self, cmd: Command) -> Result<(), BfdError> {
        self.cmd.send(cmd).await.map_err(|_| BfdError::Stopped)
    }
}

impl Drop for BfdManager {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

fn bind_receive(addr: SocketAddr) -> Result<UdpSocket, BfdError> {
    let err = |source| BfdError::BindReceive { addr, source };
    let sock =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true).map_err(err)?;
    }
    sys::enable_recv_ttl(&sock, addr.is_ipv6()).map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    sock.bind(&addr.into()).map_err(err)?;
    UdpSocket::from_std(sock.into()).map_err(err)
}

/// Opens the per-session send socket: bound to `local` and a free source port in
/// 49152-65535 (RFC 5881 §4), TTL / hop limit 255, DSCP CS6 like FRR, optionally bound to
/// `ifname`.
fn open_send_socket(
    peer: IpAddr,
    local: IpAddr,
    ifname: Option<&str>,
) -> Result<(StdUdpSocket, u16, u32), BfdError> {
    let err = |source| BfdError::SendSocket {
        peer,
        local,
        source,
    };
    let sock = Socket::new(
        Domain::for_address(SocketAddr::new(peer, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(err)?;
    let ttl = u32::from(SINGLE_HOP_TTL);
    let mut scope = 0;
    // FREEBIND: the local address may not exist yet (interface still being configured, IPv6
    // DAD in progress); sends fail and are counted until it appears, then the session
    // proceeds without the caller having to retry.
    if peer.is_ipv6() {
        sock.set_unicast_hops_v6(ttl).map_err(err)?;
        sock.set_tclass_v6(0xc0).map_err(err)?;
        sock.set_freebind_v6(true).map_err(err)?;
    } else {
        sock.set_ttl_v4(ttl).map_err(err)?;
        sock.set_tos_v4(0xc0).map_err(err)?;
        sock.set_freebind_v4(true).map_err(err)?;
    }
    if let Some(name) = ifname {
        sock.bind_device(Some(name.as_bytes())).map_err(err)?;
        scope = sys::if_nametoindex(name).map_err(err)?;
    }
    sock.set_nonblocking(true).map_err(err)?;
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let start = rand::random::<u32>() % span;
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for i in 0..span {
        let port = SOURCE_PORTS.start() + u16::try_from((start + i) % span).unwrap_or(0);
        let addr = match local {
            IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope)),
            IpAddr::V4(_) => SocketAddr::new(local, port),
        };
        match sock.bind(&addr.into()) {
            Ok(()) => return Ok((sock.into(), port, scope)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(last))
}

struct Entry {
    session: Session,
    local: IpAddr,
    ifname: Option<String>,
    sock: StdUdpSocket,
    source_port: u16,
    dest: SocketAddr,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    packets_in: u64,
    packets_out: u64,
    state_changes: u64,
}

impl Entry {
    fn status(&self, peer: IpAddr) -> SessionStatus {
        SessionStatus {
            peer,
            local: self.local,
            ifname: self.ifname.clone(),
            source_port: self.source_port,
            info: self.session.info(),
            packets_in: self.packets_in,
            packets_out: self.packets_out,
            state_changes: self.state_changes,
        }
    }
}

struct Driver {
    has_v4: bool,
    has_v6: bool,
    peer_port: u16,
    sessions: HashMap<IpAddr, Entry>,
    by_discr: HashMap<u32, IpAddr>,
    counters: Arc<SharedCounters>,
    subscribers: Subscribers,
    buf: BytesMut,
}

enum Event {
    Cmd(Option<Command>),
    Datagram(io::Result<sys::Received>, usize),
    Timer,
}

async fn recv(sock: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<sys::Received> {
    let Some(sock) = sock else {
        return std::future::pending().await;
    };
    loop {
        sock.readable().await?;
        match sock.try_io(Interest::READABLE, || {
            sys::recv_with_ttl(sock.as_raw_fd(), buf)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(
        mut self,
        mut cmd_rx: mpsc::Receiver<Command>,
        sock4: Option<UdpSocket>,
        sock6: Option<UdpSocket>,
    ) {
        let mut buf4 = [0u8; 1500];
        let mut buf6 = [0u8; 1500];
        loop {
            let next = self
                .sessions
                .values()
                .flat_map(|e| [e.tx_at, e.detect_at])
                .flatten()
                .min();
            let ev = tokio::select! {
                c = cmd_rx.recv() => Event::Cmd(c),
                r = recv(sock4.as_ref(), &mut buf4) => Event::Datagram(r, 4),
                r = recv(sock6.as_ref(), &mut buf6) => Event::Datagram(r, 6),
                () = sleep_until(next) => Event::Timer,
            };
            match ev {
                Event::Cmd(None) => return,
                Event::Cmd(Some(cmd)) => {
                    if self.on_command(cmd) {
                        return;
                    }
                }
                Event::Datagram(Ok(r), fam) => {
                    let buf = if fam == 4 { &buf4[..] } else { &buf6[..] };
                    let len = r.len.min(buf.len());
                    let data = buf[..len].to_vec();
                    self.on_datagram(&data, r.src, r.ttl);
                }
                Event::Datagram(Err(e), fam) => {
                    warn!(error = %e, family = fam, "bfd receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Event::Timer => self.on_timers(Instant::now()),
            }
        }
    }

    /// Returns true when the driver must stop.
    fn on_command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Add {
                peer,
                local,
                ifname,
                profile,
                reply,
            } => {
                let _ = reply.send(self.add(peer, local, ifname, profile));
            }
            Command::Remove { peer, reply } => {
                let r = if self.sessions.contains_key(&peer) {
                    self.feed(peer, Input::AdminDown);
                    if let Some(e) = self.sessions.remove(&peer) {
                        self.by_discr.remove(&e.session.local_discr());
                    }
                    info!(%peer, "bfd session removed");
                    Ok(())
                } else {
                    Err(BfdError::NoSession { peer })
                };
                let _ = reply.send(r);
            }
            Command::SetProfile {
                peer,
                profile,
                reply,
            } => {
                let r = if self.sessions.contains_key(&peer) {
                    self.feed(peer, Input::SetProfile(profile));
                    Ok(())
                } else {
                    Err(BfdError::NoSession { peer })
                };
                let _ = reply.send(r);
            }
            Command::Status { peer, reply } => {
                let mut v: Vec<SessionStatus> = self
                    .sessions
                    .iter()
                    .filter(|(p, _)| peer.is_none_or(|want| want == **p))
                    .map(|(p, e)| e.status(*p))
                    .collect();
                v.sort_by_key(|s| s.peer);
                let _ = reply.send(v);
            }
            Command::Shutdown { reply } => {
                let peers: Vec<IpAddr> = self.sessions.keys().copied().collect();
                for peer in peers {
                    self.feed(peer, Input::AdminDown);
                }
                info!(
                    sessions = self.sessions.len(),
                    "bfd shut down, AdminDown sent"
                );
                self.sessions.clear();
                self.by_discr.clear();
                let _ = reply.send(());
                return true;
            }
        }
        false
    }

    fn add(
        &mut self,
        peer: IpAddr,
        local: IpAddr,
        ifname: Option<String>,
        profile: BfdProfile,
    ) -> Result<(), BfdError> {
        if self.sessions.contains_key(&peer) {
            return Err(BfdError::SessionExists { peer });
        }
        if (peer.is_ipv4() && !self.has_v4) || (peer.is_ipv6() && !self.has_v6) {
            return Err(BfdError::BadSession {
                peer,
                reason: "no receive socket for this address family (disabled in ManagerConfig or unavailable on the host)".to_string(),
            });
        }
        if peer.is_ipv4() != local.is_ipv4() {
            return Err(BfdError::BadSession {
                peer,
                reason: format!("local address {local} is not of the peer's address family"),
            });
        }
        let (sock, source_port, scope) = open_send_socket(peer, local, ifname.as_deref())?;
        let dest = match peer {
            IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, self.peer_port, 0, scope)),
            IpAddr::V4(_) => SocketAddr::new(peer, self.peer_port),
        };
        let discr = loop {
            let d: u32 = rand::random();
            if d != 0 && !self.by_discr.contains_key(&d) {
                break d;
            }
        };
        let session = Session::new(profile, discr, rand::random());
        self.sessions.insert(
            peer,
            Entry {
                session,
                local,
                ifname,
                sock,
                source_port,
                dest,
                tx_at: None,
                detect_at: None,
                packets_in: 0,
                packets_out: 0,
                state_changes: 0,
            },
        );
        self.by_discr.insert(discr, peer);
        info!(%peer, %local, source_port, discr, "bfd session added");
        self.feed(peer, Input::Start);
        Ok(())
    }

    fn on_datagram(&mut self, data: &[u8], src: SocketAddr, ttl: Option<u8>) {
        self.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        // RFC 5881 §5 (GTSM): single-hop packets must arrive with TTL / hop limit 255.
        if ttl != Some(SINGLE_HOP_TTL) {
            debug!(%src, ?ttl, "bfd packet dropped: ttl");
            self.counters.count_drop(DropReason::TtlNot255);
            return;
        }
        let pkt = match ControlPacket::decode(data, &DecodeCxt::default()) {
            Ok(p) => p,
            Err(reason) => {
                debug!(%src, %reason, "bfd packet dropped");
                self.counters.count_drop(reason);
                return;
            }
        };
        // RFC 5880 §6.8.6: Your Discriminator selects the session; when zero, the source
        // address does (single-hop: one session per peer address).
        let peer = if pkt.your_discr != 0 {
            match self.by_discr.get(&pkt.your_discr) {
                Some(p) if *p == src.ip() => *p,
                Some(_) => {
                    self.counters.count_drop(DropReason::SourceMismatch);
                    return;
                }
                None => {
                    self.counters.count_drop(DropReason::NoSession);
                    return;
                }
            }
        } else if self.sessions.contains_key(&src.ip()) {
            src.ip()
        } else {
            self.counters.count_drop(DropReason::NoSession);
            return;
        };
        if let Some(e) = self.sessions.get_mut(&peer) {
            e.packets_in += 1;
        }
        self.feed(peer, Input::Received(pkt));
    }

    fn on_timers(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (peer, e) in &mut self.sessions {
            if e.detect_at.is_some_and(|t| t <= now) {
                e.detect_at = None;
                due.push((*peer, Input::DetectTimerExpired));
            }
            if e.tx_at.is_some_and(|t| t <= now) {
                e.tx_at = None;
                due.push((*peer, Input::TxTimerExpired));
            }
        }
        for (peer, input) in due {
            self.feed(peer, input);
        }
    }

    /// Runs one input through the session and carries out its outputs.
    fn feed(&mut self, peer: IpAddr, input: Input) {
        let Some(e) = self.sessions.get_mut(&peer) else {
            return;
        };
        let outputs = e.session.process(input);
        let now = Instant::now();
        let _span = info_span!("bfd_peer", %peer).entered();
        for out in outputs {
            match out {
                Output::Send(pkt) => {
                    self.buf.clear();
                    pkt.encode(&mut self.buf);
                    match e.sock.send_to(&self.buf, e.dest) {
                        Ok(_) => {
                            e.packets_out += 1;
                            self.counters.packets_out.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => {
                            debug!(error = %err, "bfd send failed");
                            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Output::ArmTx(d) => e.tx_at = Some(now + d),
                Output::StopTx => e.tx_at = None,
                Output::ArmDetect(d) => e.detect_at = Some(now + d),
                Output::StopDetect => e.detect_at = None,
                Output::StateChange { old, new, diag } => {
                    e.state_changes += 1;
                    self.counters.state_changes.fetch_add(1, Ordering::Relaxed);
                    info!(%old, %new, ?diag, "bfd state change");
                    let ev = BfdEvent {
                        peer,
                        old,
                        new,
                        diag,
                        remote_state: e.session.info().remote_state,
                    };
                    self.subscribers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .retain(|s| s.send(ev.clone()).is_ok());
                }
                Output::Drop(reason) => {
                    debug!(%reason, "bfd packet dropped by session");
                    self.counters.count_drop(reason);
                }
            }
        }
    }
}
