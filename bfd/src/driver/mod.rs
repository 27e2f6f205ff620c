//! The tokio driver: moves BFD packets between sockets and the [`Machine`] and runs its
//! timer.
//!
//! One task owns every session. It receives on one UDP socket per address family bound to
//! port 3784 and, from the first multihop session on, one per family bound to 4784 (TTL /
//! hop limit and destination read from control messages), and sends from one socket per
//! session bound to the session's local address and a source port in 49152-65535 with TTL
//! 255, to port 3784 (single-hop) or 4784 (multihop). Every rule (GTSM, the multihop minimum
//! TTL, session selection, admission, timers, the sessions themselves) is the machine's; this
//! loop reads datagrams, feeds them and the admin commands to it, sleeps until
//! [`Machine::next_timer`], and carries out the outputs: send, count, log, publish.
//!
//! The first session with `echoMode` opens the echo socket ([`echo`]: AF_PACKET, IPv4, UDP
//! port 3785 filtered in the kernel), which sends our echoes to the peer's MAC address and
//! reads them back; once a second the driver reads, for every echo session, the peer's
//! neighbour entry and the node's IP forwarding setting on its interface, and tells the
//! machine whether the node can loop the peer's echoes.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn};

use crate::machine::{Input, Machine, Output};
use crate::packet::{CONTROL_PORT, MULTIHOP_PORT};
use crate::profile::BfdProfile;
use crate::session::SessionInfo;
use crate::{BfdError, sys};

mod counters;
mod echo;
mod handle;
mod socket;

pub use counters::BfdCounters;
use counters::SharedCounters;
use echo::{EchoIo, EchoRx};
pub use handle::BfdManager;
use handle::{Command, Subscribers};
use socket::{bind_receive, open_send_socket, recv};

/// How often echo sessions re-read the neighbour table and the forwarding setting.
const ECHO_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Where the manager listens and where it sends.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Port to receive on (3784).
    pub listen_port: u16,
    /// Port peers listen on (3784).
    pub peer_port: u16,
    /// Port to receive multihop packets on (4784); bound when the first multihop session is
    /// added.
    pub multihop_listen_port: u16,
    /// Port peers listen on for multihop packets (4784).
    pub multihop_peer_port: u16,
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
            multihop_listen_port: MULTIHOP_PORT,
            multihop_peer_port: MULTIHOP_PORT,
            ipv4: true,
            ipv6: true,
        }
    }
}

/// One session as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    pub peer: IpAddr,
    pub local: IpAddr,
    pub ifname: Option<String>,
    pub source_port: u16,
    /// A multihop session (RFC 5883).
    pub multihop: bool,
    pub info: SessionInfo,
    pub packets_in: u64,
    pub packets_out: u64,
    pub state_changes: u64,
    /// Packets this session discarded, by reason (only reasons that occurred; the
    /// authentication ones are [`DropReason::is_auth`](crate::DropReason::is_auth)).
    pub drops: std::collections::BTreeMap<crate::DropReason, u64>,
    /// The last authentication failure since the session was last Up.
    pub last_auth_failure: Option<crate::AuthFailure>,
}

/// What the driver keeps of a session besides the machine's view: its socket.
struct Link {
    local: IpAddr,
    ifname: Option<String>,
    sock: StdUdpSocket,
    source_port: u16,
    dest: SocketAddr,
    packets_out: u64,
}

struct Driver {
    machine: Machine,
    config: ManagerConfig,
    links: HashMap<IpAddr, Link>,
    counters: Arc<SharedCounters>,
    subscribers: Subscribers,
    buf: BytesMut,
    /// The echo socket, opened by the first echo session.
    echo: Option<EchoIo>,
    /// Last forwarding finding per echo session (logged on change).
    echo_loop: HashMap<IpAddr, bool>,
}

/// The receive sockets, `[IPv4, IPv6]` each: single-hop (3784) bound at start, multihop
/// (4784) bound by the first multihop session of the family.
struct Sockets {
    single: [Option<UdpSocket>; 2],
    multi: [Option<UdpSocket>; 2],
}

/// Which receive socket a datagram came from.
#[derive(Clone, Copy, Debug)]
struct RxSocket {
    ipv6: bool,
    multihop: bool,
}

enum Event {
    Cmd(Option<Command>),
    Datagram(io::Result<sys::Received>, RxSocket),
    Echo(io::Result<EchoRx>),
    EchoCheck,
    Timer,
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(mut self, mut cmd_rx: mpsc::Receiver<Command>, mut sockets: Sockets) {
        // One buffer per socket: [single v4, single v6, multi v4, multi v6].
        let mut bufs = [[0u8; 1500]; 4];
        let mut echo_buf = [0u8; 1500];
        let mut echo_check = tokio::time::interval(ECHO_CHECK);
        echo_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self.machine.next_timer();
            let [s4, s6] = &sockets.single;
            let [m4, m6] = &sockets.multi;
            let [b0, b1, b2, b3] = &mut bufs;
            let from = |ipv6, multihop| RxSocket { ipv6, multihop };
            let ev = tokio::select! {
                c = cmd_rx.recv() => Event::Cmd(c),
                r = recv(s4.as_ref(), b0) => Event::Datagram(r, from(false, false)),
                r = recv(s6.as_ref(), b1) => Event::Datagram(r, from(true, false)),
                r = recv(m4.as_ref(), b2) => Event::Datagram(r, from(false, true)),
                r = recv(m6.as_ref(), b3) => Event::Datagram(r, from(true, true)),
                r = EchoIo::recv(self.echo.as_ref(), &mut echo_buf) => Event::Echo(r),
                _ = echo_check.tick(), if self.echo.is_some() => Event::EchoCheck,
                () = sleep_until(next) => Event::Timer,
            };
            match ev {
                Event::Cmd(None) => return,
                Event::Cmd(Some(cmd)) => {
                    if self.on_command(cmd, &mut sockets) {
                        return;
                    }
                }
                Event::Datagram(Ok(r), from) => {
                    let buf = &bufs[usize::from(from.multihop) * 2 + usize::from(from.ipv6)];
                    let data = &buf[..r.len.min(buf.len())];
                    self.on_datagram(data, &r, from.multihop);
                }
                Event::Datagram(Err(e), from) => {
                    warn!(error = %e, ?from, "bfd receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Event::Echo(Ok(rx)) => {
                    let input = Input::Echo {
                        payload: &echo_buf[rx.payload_at.clone()],
                        src: IpAddr::V4(rx.src),
                        dst: IpAddr::V4(rx.dst),
                        ttl: rx.ttl,
                    };
                    let out = self.machine.handle(input, Instant::now());
                    self.apply(out);
                }
                Event::Echo(Err(e)) => {
                    warn!(error = %e, "bfd echo receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Event::EchoCheck => {
                    let peers: Vec<IpAddr> = self.machine.echo_peers().collect();
                    for peer in peers {
                        self.echo_check(peer);
                    }
                }
                Event::Timer => {
                    let out = self.machine.handle(Input::Timer, Instant::now());
                    self.apply(out);
                }
            }
        }
    }

    /// Returns true when the driver must stop.
    fn on_command(&mut self, cmd: Command, sockets: &mut Sockets) -> bool {
        match cmd {
            Command::Add {
                peer,
                local,
                ifname,
                multihop,
                profile,
                reply,
            } => {
                let r = if multihop {
                    self.multihop_socket(peer, sockets)
                        .and_then(|()| self.add(peer, local, ifname, true, profile))
                } else {
                    self.add(peer, local, ifname, false, profile)
                };
                let _ = reply.send(r);
            }
            Command::Remove { peer, reply } => {
                let r = self.machine.remove(peer, Instant::now()).map(|out| {
                    self.apply(out);
                    self.links.remove(&peer);
                    self.echo_loop.remove(&peer);
                    if let Some(e) = self.echo.as_mut() {
                        e.neighbours.remove(&peer);
                    }
                    info!(%peer, "bfd session removed");
                });
                let _ = reply.send(r);
            }
            Command::SetProfile {
                peer,
                profile,
                reply,
            } => {
                let echo = profile.echo_mode;
                let r = self
                    .open_echo(echo)
                    .and_then(|()| self.machine.set_profile(peer, profile, Instant::now()))
                    .map(|out| {
                        self.apply(out);
                        if echo {
                            self.echo_check(peer);
                        }
                    });
                let _ = reply.send(r);
            }
            Command::Status { peer, reply } => {
                let v: Vec<SessionStatus> = self
                    .machine
                    .peers()
                    .filter(|p| peer.is_none_or(|want| want == *p))
                    .filter_map(|p| self.status(p))
                    .collect();
                let _ = reply.send(v);
            }
            Command::Shutdown { reply } => {
                let out = self.machine.shutdown(Instant::now());
                self.apply(out);
                info!(sessions = self.links.len(), "bfd shut down, AdminDown sent");
                self.links.clear();
                let _ = reply.send(());
                return true;
            }
        }
        false
    }

    fn status(&self, peer: IpAddr) -> Option<SessionStatus> {
        let (view, link) = (self.machine.peer(peer)?, self.links.get(&peer)?);
        Some(SessionStatus {
            peer,
            local: link.local,
            ifname: link.ifname.clone(),
            source_port: link.source_port,
            multihop: view.multihop,
            info: view.info,
            packets_in: view.packets_in,
            packets_out: link.packets_out,
            state_changes: view.state_changes,
            drops: view.drops,
            last_auth_failure: view.last_auth_failure,
        })
    }

    /// Binds the multihop receive socket of `peer`'s family unless it is bound already.
    fn multihop_socket(&self, peer: IpAddr, sockets: &mut Sockets) -> Result<(), BfdError> {
        let slot = &mut sockets.multi[usize::from(peer.is_ipv6())];
        if slot.is_none() {
            let any = match peer {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            let addr = SocketAddr::new(any, self.config.multihop_listen_port);
            *slot = Some(bind_receive(addr)?);
            info!(%addr, "bfd multihop receive socket bound");
        }
        Ok(())
    }

    fn add(
        &mut self,
        peer: IpAddr,
        local: IpAddr,
        ifname: Option<String>,
        multihop: bool,
        profile: BfdProfile,
    ) -> Result<(), BfdError> {
        // Ask first: a refused session costs no socket.
        self.machine.check_add(peer, local, multihop, &profile)?;
        let echo = profile.echo_mode;
        self.open_echo(echo)?;
        let (sock, source_port, scope) = open_send_socket(peer, local, ifname.as_deref())?;
        let port = if multihop {
            self.config.multihop_peer_port
        } else {
            self.config.peer_port
        };
        let dest = match peer {
            IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope)),
            IpAddr::V4(_) => SocketAddr::new(peer, port),
        };
        let now = Instant::now();
        let out = if multihop {
            self.machine.add_multihop(peer, local, profile, now)?
        } else {
            self.machine.add(peer, local, profile, now)?
        };
        self.links.insert(
            peer,
            Link {
                local,
                ifname,
                sock,
                source_port,
                dest,
                packets_out: 0,
            },
        );
        let discr = self.machine.peer(peer).map(|v| v.info.local_discr);
        info!(%peer, %local, source_port, discr, multihop, echo, "bfd session added");
        self.apply(out);
        if echo {
            self.echo_check(peer);
        }
        Ok(())
    }

    /// Opens the echo socket for the first session that asks for echo.
    fn open_echo(&mut self, wanted: bool) -> Result<(), BfdError> {
        if wanted && self.echo.is_none() {
            let io = EchoIo::open().map_err(|source| BfdError::EchoSocket { source })?;
            info!(port = crate::echo::ECHO_PORT, "bfd echo socket open");
            self.echo = Some(io);
        }
        Ok(())
    }

    /// Re-reads the neighbour entry of `peer` and the node's forwarding setting on its
    /// interface, and tells the machine whether the node loops the peer's echoes.
    fn echo_check(&mut self, peer: IpAddr) {
        let Some(io) = self.echo.as_mut() else {
            return;
        };
        let neigh = echo::neighbour(peer);
        let (ok, dev) = match &neigh {
            Some(n) => (
                echo::forwarding(&n.dev).unwrap_or(false),
                Some(n.dev.clone()),
            ),
            None => (false, None),
        };
        match neigh {
            Some(n) => io.neighbours.insert(peer, n),
            None => io.neighbours.remove(&peer),
        };
        let before = self.echo_loop.insert(peer, ok);
        if before != Some(ok) {
            let _span = info_span!("bfd_peer", %peer).entered();
            match (ok, &dev) {
                (true, _) => info!(
                    dev,
                    "bfd echo: the node forwards the peer's echoes; echo receive advertised"
                ),
                (false, Some(dev)) => warn!(
                    dev,
                    "bfd echo: IP forwarding is off on {dev} (net.ipv4.conf.{dev}.forwarding = 0): the peer's echo packets cannot be looped back, advertising no echo receive interval"
                ),
                (false, None) => debug!("bfd echo: the peer is not in the neighbour table yet"),
            }
        }
        if let Ok(out) = self.machine.set_echo_loop(peer, ok, Instant::now()) {
            self.apply(out);
        }
    }

    fn on_datagram(&mut self, data: &[u8], r: &sys::Received, multihop: bool) {
        self.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        let (src, ttl) = (r.src, r.ttl);
        let input = Input::Datagram {
            data,
            src: src.ip(),
            dst: r.dst,
            ttl,
            multihop,
        };
        let out = self.machine.handle(input, Instant::now());
        for o in &out {
            if let Output::Drop { peer: None, reason } = o {
                debug!(%src, ?ttl, multihop, %reason, "bfd packet dropped");
            }
        }
        self.apply(out);
    }

    /// Carries out the machine's outputs, in order.
    fn apply(&mut self, outputs: Vec<Output>) {
        for out in outputs {
            match out {
                Output::Send { peer, packet } => {
                    let Some(link) = self.links.get_mut(&peer) else {
                        continue;
                    };
                    self.buf.clear();
                    packet.encode(&mut self.buf);
                    match link.sock.send_to(&self.buf, link.dest) {
                        Ok(_) => {
                            link.packets_out += 1;
                            self.counters.packets_out.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => {
                            debug!(%peer, error = %err, "bfd send failed");
                            self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Output::StateChange(ev) => {
                    self.counters.state_changes.fetch_add(1, Ordering::Relaxed);
                    let _span = info_span!("bfd_peer", peer = %ev.peer).entered();
                    info!(old = %ev.old, new = %ev.new, diag = ?ev.diag, "bfd state change");
                    self.subscribers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .retain(|s| s.send(ev.clone()).is_ok());
                }
                Output::Drop { peer, reason } => {
                    if let Some(peer) = peer {
                        debug!(%peer, %reason, "bfd packet dropped by session");
                    }
                    self.counters.count_drop(reason);
                }
                Output::SendEcho {
                    peer,
                    local,
                    packet,
                } => {
                    let r = match self.echo.as_mut() {
                        Some(io) => io.send(peer, local, &packet),
                        None => Err(io::Error::other("no echo socket")),
                    };
                    match r {
                        Ok(()) => {
                            self.counters.echo_out.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => {
                            debug!(%peer, error = %err, "bfd echo send failed");
                            self.counters
                                .echo_send_errors
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Output::AuthFailed { peer, failure } => {
                    let _span = info_span!("bfd_peer", %peer).entered();
                    warn!(reason = %failure.reason(), %failure, "bfd authentication failed");
                }
                Output::EchoReturned { .. } => {
                    self.counters.echo_in.fetch_add(1, Ordering::Relaxed);
                }
                Output::EchoDrop { peer, reason } => {
                    debug!(?peer, %reason, "bfd echo dropped");
                    self.counters.echo_drops.fetch_add(1, Ordering::Relaxed);
                }
                Output::EchoNotReturned { peer, hold } => {
                    warn!(
                        %peer,
                        next_probe_ms = hold.as_millis(),
                        "bfd echo not returned: the peer does not loop our echo packets (IP forwarding off, uRPF or a filter on the router); the session stays up on control packets, detection at the control packets' rate"
                    );
                    self.counters
                        .echo_not_returned
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
