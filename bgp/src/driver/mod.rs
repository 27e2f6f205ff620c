//! The tokio driver of one peer: it owns the TCP connection, feeds the [`Fsm`], carries out
//! its outputs, and keeps the Adj-RIB-Out in step with the desired routes. It only moves
//! bytes and timers; decisions are in `machine` and `rib`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

mod coalesce;
mod command;
mod sock;

pub(crate) use command::Command;

use sock::{canonical, close, connect, read_frame, read_one, send_and_close};

use crate::counters::Counters;
use crate::diag::{LOG_REPEAT, LogLimiter};
use crate::machine::{
    CollisionWinner, DownReason, Fsm, Input, Negotiated, Output, State, Timer, collision_cease,
    resolve_collision,
};
use crate::packet::{Cxt, DecodeError, Message, Notification, Update, msg_type};
use crate::peer_config::PeerConfig;
use crate::rib::{AdjRibOut, RouteSet, SessionInfo};
use crate::status::{PeerStatus, StatusBoard};

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: BytesMut,
    local: SocketAddr,
    outbound: bool,
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

enum Event {
    Cmd(Option<Command>),
    Frame(Bytes),
    BadFrame(DecodeError),
    Closed,
    Connected(io::Result<TcpStream>),
    Timer(Timer),
    RoutesChanged,
    RoutesClosed,
    Coalesce,
}

pub(crate) struct PeerTask {
    pub cfg: PeerConfig,
    pub fsm: Fsm,
    pub rib: AdjRibOut,
    pub routes: watch::Receiver<Arc<RouteSet>>,
    pub cmds: mpsc::UnboundedReceiver<Command>,
    /// Weak, so that the task's own handle does not keep its command channel open.
    pub self_tx: mpsc::WeakUnboundedSender<Command>,
    pub board: Arc<StatusBoard>,
    pub counters: Arc<Counters>,
    pub coalesce: Duration,
    pub status: PeerStatus,
    conn: Option<Conn>,
    connecting: Option<ConnectFuture>,
    timers: HashMap<Timer, Instant>,
    coalesce_at: Option<Instant>,
    /// When the last UPDATEs went out (see [`coalesce::sync_at`]).
    last_sync: Option<Instant>,
    sess: Option<SessionInfo>,
    io_failed: bool,
    /// The speaker dropped the route channel; only the command channel ends the task.
    routes_closed: bool,
    log_limit: LogLimiter,
}

impl PeerTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: PeerConfig,
        fsm: Fsm,
        routes: watch::Receiver<Arc<RouteSet>>,
        cmds: mpsc::UnboundedReceiver<Command>,
        self_tx: mpsc::WeakUnboundedSender<Command>,
        board: Arc<StatusBoard>,
        counters: Arc<Counters>,
        coalesce: Duration,
    ) -> Self {
        PeerTask {
            cfg,
            fsm,
            rib: AdjRibOut::new(),
            routes,
            cmds,
            self_tx,
            board,
            counters,
            coalesce,
            status: PeerStatus::default(),
            conn: None,
            connecting: None,
            timers: HashMap::new(),
            coalesce_at: None,
            last_sync: None,
            sess: None,
            io_failed: false,
            routes_closed: false,
            log_limit: LogLimiter::new(LOG_REPEAT),
        }
    }

    fn cxt(&self) -> Cxt {
        self.fsm.negotiated().map(|n| n.cxt).unwrap_or_default()
    }

    pub(crate) async fn run(mut self) {
        self.publish();
        self.input(Input::ManualStart).await;
        loop {
            let ev = self.next_event().await;
            match ev {
                Event::Cmd(None) => {
                    // The speaker is gone without a shutdown: leave politely.
                    let n = Notification::cease(
                        crate::packet::CeaseSubcode::AdminShutdown,
                        "speaker stopped",
                    );
                    self.input(Input::ManualStop(n)).await;
                    return;
                }
                Event::Cmd(Some(cmd)) => {
                    if self.on_command(cmd).await {
                        return;
                    }
                }
                Event::Frame(b) => self.on_frame(b).await,
                Event::BadFrame(e) => {
                    warn!(error = %e, "malformed BGP frame from peer");
                    self.counters.decode_error();
                    self.input(Input::DecodeError(e)).await;
                }
                Event::Closed => {
                    if let Some(c) = self.conn.take() {
                        close(c);
                    }
                    self.input(Input::TcpFailed).await
                }
                Event::Connected(Ok(stream)) => {
                    self.connecting = None;
                    if self.adopt(stream, true) {
                        self.input(Input::TcpConnected).await;
                    } else {
                        self.input(Input::TcpFailed).await;
                    }
                }
                Event::Connected(Err(e)) => {
                    debug!(error = %e, "BGP connect failed");
                    self.connecting = None;
                    self.input(Input::ConnectFailed(sock::connect_error(&e)))
                        .await;
                }
                Event::Timer(t) => {
                    self.timers.remove(&t);
                    self.input(Input::TimerExpired(t)).await;
                }
                Event::RoutesChanged => {
                    if self.sess.is_some() && self.coalesce_at.is_none() {
                        let at = coalesce::sync_at(Instant::now(), self.last_sync, self.coalesce);
                        self.coalesce_at = Some(at);
                    }
                }
                Event::RoutesClosed => self.routes_closed = true,
                Event::Coalesce => {
                    self.coalesce_at = None;
                    self.sync_routes().await;
                }
            }
            // Write failures found while carrying out outputs become TCP failures.
            let mut bound = 0;
            while self.io_failed && bound < 4 {
                self.io_failed = false;
                bound += 1;
                self.input(Input::TcpFailed).await;
            }
        }
    }

    async fn next_event(&mut self) -> Event {
        let next_timer = self
            .timers
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (*t, *at));
        let cxt = self.cxt();
        let conn = &mut self.conn;
        let connecting = &mut self.connecting;
        let cmds = &mut self.cmds;
        let routes = &mut self.routes;
        let coalesce_at = self.coalesce_at;
        let routes_open = !self.routes_closed;
        tokio::select! {
            c = cmds.recv() => Event::Cmd(c),
            ev = read_frame(conn, cxt) => ev,
            r = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                Event::Connected(r)
            }
            t = async {
                let (t, at) = next_timer.expect("guarded");
                tokio::time::sleep_until(at).await;
                t
            }, if next_timer.is_some() => Event::Timer(t),
            r = routes.changed(), if routes_open => match r {
                Ok(()) => Event::RoutesChanged,
                Err(_) => Event::RoutesClosed,
            },
            _ = async { tokio::time::sleep_until(coalesce_at.expect("guarded")).await },
                if coalesce_at.is_some() => Event::Coalesce,
        }
    }

    /// Returns true when the task must end.
    async fn on_command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Inbound(stream) => self.on_inbound(stream).await,
            Command::Collision(stream, first) => self.on_collision(stream, first).await,
            Command::Reset(n) => {
                info!(notification = %n, "resetting BGP session");
                self.input(Input::Reset(n)).await;
            }
            Command::Reconfigure { cfg, fsm } => {
                info!("BGP peer settings changed");
                self.cfg = *cfg;
                self.input(Input::ConfigChanged(fsm)).await;
                self.publish();
            }
            Command::Stop {
                notification,
                withdraw,
                done,
            } => {
                if withdraw && self.sess.is_some() {
                    self.send_plan(&RouteSet::new()).await;
                }
                self.input(Input::ManualStop(notification)).await;
                let _ = done.send(());
                return true;
            }
            Command::CloseForRestart { done } => {
                // No NOTIFICATION: the peer's graceful-restart helper keeps our routes.
                if let Some(c) = self.conn.take() {
                    close(c);
                }
                let _ = done.send(());
                return true;
            }
        }
        false
    }

    async fn on_inbound(&mut self, stream: TcpStream) {
        match self.fsm.state() {
            State::Idle => drop(stream),
            State::Connect | State::Active => {
                self.connecting = None;
                if let Some(c) = self.conn.take() {
                    close(c);
                }
                if self.adopt(stream, false) {
                    self.input(Input::TcpConnected).await;
                }
            }
            State::Established => {
                // RFC 4271 §6.8: a collision with an Established session keeps it.
                let _ = send_and_close(stream, collision_cease(), self.cxt()).await;
            }
            State::OpenSent | State::OpenConfirm => {
                // Read the newcomer's OPEN to learn its BGP Identifier, off the main loop.
                let Some(tx) = self.self_tx.upgrade() else {
                    return;
                };
                tokio::spawn(async move {
                    let mut stream = stream;
                    let first =
                        tokio::time::timeout(Duration::from_secs(10), read_one(&mut stream))
                            .await
                            .unwrap_or_else(|_| {
                                Err(DecodeError::new(
                                    0,
                                    0,
                                    Bytes::new(),
                                    "collision OPEN (timeout)",
                                ))
                            });
                    let _ = tx.send(Command::Collision(stream, first));
                });
            }
        }
    }

    async fn on_collision(&mut self, stream: TcpStream, first: Result<Message, DecodeError>) {
        let Ok(Message::Open(open)) = first else {
            return; // the newcomer did not send an OPEN: drop it
        };
        let live = matches!(self.fsm.state(), State::OpenSent | State::OpenConfirm);
        let current_outbound = self.conn.as_ref().is_some_and(|c| c.outbound);
        let keep_new = live
            && current_outbound
            && resolve_collision(self.fsm.config().router_id, open.bgp_id)
                == CollisionWinner::RemotelyInitiated;
        if !keep_new {
            info!(peer_id = %open.bgp_id, "connection collision: keeping the existing connection");
            let _ = send_and_close(stream, collision_cease(), self.cxt()).await;
            return;
        }
        info!(peer_id = %open.bgp_id, "connection collision: switching to the peer's connection");
        if let Some(c) = self.conn.take() {
            let mut c = c;
            let bytes = Message::Notification(collision_cease()).to_bytes(&self.cxt());
            let _ = c.wr.write_all(&bytes).await;
            self.counters.notif_out(6);
            close(c);
        }
        if !self.adopt(stream, false) {
            return self.input(Input::TcpFailed).await;
        }
        self.input(Input::ConnectionReplaced).await;
        self.counters.msg_in(msg_type::OPEN);
        self.input(Input::Message(Message::Open(open))).await;
    }

    fn adopt(&mut self, stream: TcpStream, outbound: bool) -> bool {
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            return false;
        };
        let (rd, wr) = stream.into_split();
        self.conn = Some(Conn {
            rd,
            wr,
            buf: BytesMut::with_capacity(8192),
            local,
            outbound,
        });
        true
    }

    async fn on_frame(&mut self, b: Bytes) {
        let cxt = self.cxt();
        let kind = b.get(18).copied().unwrap_or(0);
        self.counters.msg_in(kind);
        match Message::decode(&mut b.clone(), &cxt) {
            Ok(m) => {
                if let Message::Notification(n) = &m {
                    // Logged with the session's end (on_down).
                    self.counters.notif_in(n.code);
                }
                if let Message::Update(u) = &m
                    && u.treat_as_withdraw
                {
                    debug!("UPDATE from peer with attribute errors (RFC 7606 treat-as-withdraw)");
                }
                self.input(Input::Message(m)).await;
            }
            Err(e) => {
                warn!(error = %e, "malformed BGP message from peer");
                self.counters.decode_error();
                self.input(Input::DecodeError(e)).await;
            }
        }
    }

    async fn input(&mut self, input: Input) {
        let outs = self.fsm.process(input);
        for o in outs {
            self.apply(o).await;
        }
    }

    async fn apply(&mut self, o: Output) {
        match o {
            Output::Connect => self.connecting = Some(connect(&self.cfg)),
            Output::Close => {
                self.connecting = None;
                if let Some(c) = self.conn.take() {
                    close(c);
                }
            }
            Output::Send(m) => self.send(std::slice::from_ref(&m)).await,
            Output::StartTimer(t, d) => {
                self.timers.insert(t, Instant::now() + d);
            }
            Output::StopTimer(t) => {
                self.timers.remove(&t);
            }
            Output::StateChanged { from, to } => {
                info!(?from, ?to, "bgp state change");
                self.counters.transition(to);
                self.status.state = to;
                if to == State::Established {
                    // Published together with the state, so watchers never see one without
                    // the other.
                    self.status.established_at = Some(std::time::Instant::now());
                    self.status.negotiated = self.fsm.negotiated().cloned();
                }
                self.publish();
            }
            Output::Established(n) => self.on_established(n).await,
            Output::Down(reason) => self.on_down(reason),
            Output::RouteRefresh(r) => {
                if let (Some(sess), Some(f)) = (
                    self.sess.clone(),
                    crate::packet::Family::from_afi_safi(r.afi, r.safi),
                ) {
                    info!(family = ?f, "route refresh requested, replaying Adj-RIB-Out");
                    let ups = self.rib.replay(f, &sess);
                    self.send_updates(ups, &sess.cxt).await;
                }
            }
        }
    }

    async fn on_established(&mut self, n: Negotiated) {
        let Some(local) = self.conn.as_ref().map(|c| c.local.ip()) else {
            return;
        };
        let local = canonical(local);
        let src = self.cfg.source_addr.map(canonical);
        let pick_v4 = |ip: Option<IpAddr>| match ip {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let pick_v6 = |ip: Option<IpAddr>| match ip {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        };
        // On a link-local session (unnumbered) the link-local address is the IPv6 next hop,
        // after the interface's global address when there is one (RFC 2545).
        let (link_local, local_v6) = match pick_v6(Some(local)) {
            Some(a) if a.is_unicast_link_local() => (Some(a), self.cfg.global_v6),
            a => (None, a.or(pick_v6(src))),
        };
        let sess = SessionInfo {
            local_asn: self.cfg.local_asn,
            peer_asn: n.peer_asn,
            local_v4: pick_v4(Some(local)).or(pick_v4(src)),
            local_v6,
            link_local,
            ipv4_over_ipv6: n.ipv4_over_ipv6_next_hop,
            offered_ipv4_over_ipv6: self.cfg.extended_next_hop,
            cxt: n.cxt,
            families: n.families.clone(),
        };
        info!(peer_id = %n.peer_id, hold = n.hold_time, families = ?n.families, "BGP session established");
        self.sess = Some(sess.clone());
        self.coalesce_at = None;
        self.routes.borrow_and_update();
        self.sync_routes().await;
        // End-of-RIB for every family after the initial dump (RFC 4724 §2).
        let eors = n.families.iter().map(|f| Update::end_of_rib(*f)).collect();
        self.send_updates(eors, &sess.cxt).await;
    }

    fn on_down(&mut self, reason: DownReason) {
        match crate::diag::describe(&reason, self.cfg.md5_password.is_some()) {
            Some(e) => {
                *self.status.errors.entry(e.kind).or_default() += 1;
                match self.log_limit.check(&e, std::time::Instant::now()) {
                    Some(repeats) => warn!(
                        kind = e.kind.as_str(),
                        error = %e.message,
                        repeats,
                        "BGP session error"
                    ),
                    None => {
                        debug!(kind = e.kind.as_str(), error = %e.message, "BGP session error (repeat)")
                    }
                }
                self.status.last_error = Some(e.message);
            }
            None => info!(%reason, "BGP session down"),
        }
        if self.status.established_at.take().is_some() {
            self.status.flaps += 1;
        }
        self.status.prefixes_sent = 0;
        self.status.negotiated = None;
        self.rib.clear();
        self.sess = None;
        self.coalesce_at = None;
        // A failed attempt in Connect has no state change after it: publish now.
        self.publish();
    }

    async fn sync_routes(&mut self) {
        let desired = self.routes.borrow_and_update().clone();
        self.send_plan(&desired).await;
    }

    async fn send_plan(&mut self, desired: &RouteSet) {
        let Some(sess) = self.sess.clone() else {
            return;
        };
        let plan = self.rib.sync(desired, &sess);
        if !plan.updates.is_empty() {
            self.last_sync = Some(Instant::now());
        }
        if plan.unresolved > 0 {
            warn!(
                routes = plan.unresolved,
                "routes not sent: no next hop of their family (set RouteAttrs::next_hop)"
            );
        }
        if plan.needs_extended_next_hop > 0 {
            warn!(
                routes = plan.needs_extended_next_hop,
                "IPv4 routes not sent: their next hop is IPv6 and the peer did not negotiate \
                 the extended next hop capability (RFC 8950)"
            );
        }
        debug!(
            announced = plan.announced,
            withdrawn = plan.withdrawn,
            updates = plan.updates.len(),
            "Adj-RIB-Out sync"
        );
        self.status.prefixes_sent = self.rib.len();
        self.status.unresolved_next_hop = plan.unresolved;
        self.status.needs_extended_next_hop = plan.needs_extended_next_hop;
        self.send_updates(plan.updates, &sess.cxt).await;
        self.publish();
    }

    async fn send_updates(&mut self, ups: Vec<Update>, cxt: &Cxt) {
        let msgs: Vec<Message> = ups.into_iter().map(Message::Update).collect();
        self.send_with(&msgs, cxt).await;
    }

    async fn send(&mut self, msgs: &[Message]) {
        let cxt = self.cxt();
        self.send_with(msgs, &cxt).await;
    }

    async fn send_with(&mut self, msgs: &[Message], cxt: &Cxt) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        if msgs.is_empty() {
            return;
        }
        let mut buf = BytesMut::new();
        for m in msgs {
            let start = buf.len();
            m.encode(&mut buf, cxt);
            self.counters.msg_out(m.kind(), buf.len() - start);
            if let Message::Notification(n) = m {
                self.counters.notif_out(n.code);
            }
        }
        // A peer that stops reading must not wedge the loop (and its hold timer): give up
        // after the hold time, as the hold timer would.
        let limit = Duration::from_secs(
            self.fsm
                .negotiated()
                .map(|n| n.hold_time as u64)
                .filter(|h| *h > 0)
                .unwrap_or(crate::machine::OPEN_SENT_HOLD.as_secs()),
        );
        match tokio::time::timeout(limit, c.wr.write_all(&buf)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(error = %e, "BGP write failed");
                self.io_failed = true;
            }
            Err(_) => {
                warn!(
                    secs = limit.as_secs(),
                    "peer stopped reading; dropping the connection"
                );
                self.io_failed = true;
            }
        }
    }

    fn publish(&self) {
        self.board.set(self.cfg.key(), self.status.clone());
    }
}
