//! Sans-IO BGP finite state machine (RFC 4271 §8).
//!
//! [`Fsm::process`] takes one [`Input`] and returns the [`Output`]s the driver must carry
//! out in order: open or close the TCP connection, send messages, start and stop timers.
//! Timer expiry comes back as an input. Nothing here touches sockets or clocks, so the tests
//! feed inputs and compare outputs.
//!
//! Deviations from the letter of RFC 4271, on purpose:
//! - A refused or failed connection attempt is retried after a backoff that grows from 1 s
//!   and is capped at the ConnectRetry time (`connect_time`, 2 s by default), with jitter
//!   (each delay × [0.75, 1], RFC 4271 §10); it resets when a session reaches Established.
//!   So a session is back within a few seconds of its router, however long the router was
//!   away. An attempt that gets no answer is dropped after `connect_time` and a new one
//!   starts at once (RFC 4271 §8.2.2, Connect, event 9).
//! - After a session ends (error, NOTIFICATION, hold expiry, reset, configuration change)
//!   the FSM goes to Idle and restarts by itself after the IdleHold time (§8.1.1 automatic
//!   start with DampPeerOscillations): 1 s, doubling per session lost in a row, capped at
//!   30 s, forgotten once a session has stayed Established for [`STABLE_AFTER`].
//! - The hold timer is enforced on receive in every state that runs it (a silent peer is
//!   dropped at hold expiry with NOTIFICATION 4/0).
//! - A configuration change ([`Input::ConfigChanged`]) ends a session with Cease / Other
//!   Configuration Change (RFC 4486 subcode 6) and restarts it with the new settings after
//!   the idle hold-off; an attempt that is not a session yet restarts at once.

mod backoff;
mod collision;
mod config;
mod negotiate;
mod reason;

use std::net::Ipv4Addr;
use std::time::Duration;

pub use backoff::Backoff;
pub use collision::{CollisionWinner, collision_cease, resolve_collision};
pub use config::{DEFAULT_CONNECT_TIME, DynamicAsn, FsmConfig, GracefulRestart, PeerAsRule};
use negotiate::negotiate;
pub use reason::{ConnectError, DownReason};

use crate::packet::{
    CeaseSubcode, Cxt, DecodeError, Family, Message, Notification, Open, RouteRefresh, error_code,
};

/// Hold time for OpenSent (RFC 4271 §8.2.2: "a large value", 4 minutes suggested).
pub const OPEN_SENT_HOLD: Duration = Duration::from_secs(240);
/// First wait after a failed connection attempt (then doubling up to `connect_time`).
pub const CONNECT_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// First idle hold-off after a session ended (§8.1.1 IdleHoldTimer).
pub const IDLE_HOLD_MIN: Duration = Duration::from_secs(1);
/// The longest idle hold-off, for a session that keeps going down.
pub const IDLE_HOLD_MAX: Duration = Duration::from_secs(30);
/// A session Established this long has its idle hold-off forgotten (back to the minimum).
pub const STABLE_AFTER: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Connect: timeout of one connection attempt; Active: wait before the next attempt.
    ConnectRetry,
    Hold,
    Keepalive,
    /// Idle: wait before the automatic restart after an error.
    IdleHold,
    /// Established: the session has been up long enough to forget the idle hold-off.
    Stable,
}

/// What both OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_id: Ipv4Addr,
    pub peer_asn: u32,
    pub hold_time: u16,
    pub keepalive: u16,
    pub cxt: Cxt,
    /// Families both sides announced (IPv4 unicast if the peer sent no MP capability).
    pub families: Vec<Family>,
    pub peer_route_refresh: bool,
    /// The peer advertised graceful restart (it will keep our routes if we restart).
    pub peer_graceful_restart: bool,
    /// Both sides advertised RFC 8950 extended next hop encoding for IPv4 unicast: IPv4
    /// routes may go out with an IPv6 next hop.
    pub ipv4_over_ipv6_next_hop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Event 1 (or 4 when passive).
    ManualStart,
    /// Event 2, with the Cease to send if a connection is open.
    ManualStop(Notification),
    /// Events 9-13.
    TimerExpired(Timer),
    /// Events 16/17: our connection completed or the peer's was accepted.
    TcpConnected,
    /// Event 18: the connection failed or closed.
    TcpFailed,
    /// Event 18 for our own connection attempt, with what the socket said.
    ConnectFailed(ConnectError),
    /// New settings (RFC 4271 §8.1.1: a configuration change). A session or handshake in
    /// progress ends with Cease / Other Configuration Change and restarts after the idle
    /// hold-off; a connection attempt restarts at once with the new settings.
    ConfigChanged(Box<FsmConfig>),
    /// A whole, well-formed message.
    Message(Message),
    /// A message that failed to decode (events 21/22/25/28).
    DecodeError(DecodeError),
    /// Tear the session down now with this NOTIFICATION (e.g. BFD went down), then restart
    /// automatically after the backoff.
    Reset(Notification),
    /// The driver resolved a collision (RFC 4271 §6.8) in favour of a new connection that is
    /// already open: start over in OpenSent on it (the peer's OPEN follows as a message).
    ConnectionReplaced,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open an outbound TCP connection.
    Connect,
    /// Close the TCP connection (after sending what was queued).
    Close,
    Send(Message),
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    StateChanged {
        from: State,
        to: State,
    },
    Established(Negotiated),
    /// The session or a connection attempt ended; given once per loss.
    Down(DownReason),
    /// The peer asked for our routes again (RFC 2918).
    RouteRefresh(RouteRefresh),
}

/// The state machine of one peer.
#[derive(Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    negotiated: Option<Negotiated>,
    /// Wait between failed connection attempts.
    connect_backoff: Backoff,
    /// IdleHold: wait before the automatic restart after a session ended.
    idle_hold: Backoff,
    started: bool,
}

impl Fsm {
    pub fn new(cfg: FsmConfig) -> Self {
        let connect_backoff = Backoff::new(CONNECT_BACKOFF_MIN, cfg.connect_time, cfg.jitter_seed);
        let idle_hold = Backoff::new(
            IDLE_HOLD_MIN,
            IDLE_HOLD_MAX,
            cfg.jitter_seed.rotate_left(32) ^ 0x5851_f42d_4c95_7f2d,
        );
        Fsm {
            cfg,
            state: State::Idle,
            negotiated: None,
            connect_backoff,
            idle_hold,
            started: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Sessions lost in a row (each one doubles the next idle hold-off).
    pub fn damping_steps(&self) -> u32 {
        self.idle_hold.steps()
    }

    pub fn process(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::ManualStart => self.on_start(&mut out),
            Input::ManualStop(n) => self.on_stop(n, &mut out),
            Input::TimerExpired(t) => self.on_timer(t, &mut out),
            Input::TcpConnected => self.on_tcp_connected(&mut out),
            Input::TcpFailed => self.on_tcp_failed(&mut out),
            Input::ConnectFailed(e) => self.on_connect_failed(e, &mut out),
            Input::ConfigChanged(c) => self.on_config_changed(*c, &mut out),
            Input::Message(m) => self.on_message(m, &mut out),
            Input::DecodeError(e) => self.on_decode_error(e, &mut out),
            Input::Reset(n) => self.on_reset(n, &mut out),
            Input::ConnectionReplaced => self.on_connection_replaced(&mut out),
        }
        out
    }

    fn goto(&mut self, to: State, out: &mut Vec<Output>) {
        if self.state != to {
            out.push(Output::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn stop_all_timers(out: &mut Vec<Output>) {
        for t in [
            Timer::ConnectRetry,
            Timer::Hold,
            Timer::Keepalive,
            Timer::IdleHold,
            Timer::Stable,
        ] {
            out.push(Output::StopTimer(t));
        }
    }

    /// Drop the connection, go to Idle, and (unless stopped) schedule the automatic restart.
    fn fail(&mut self, reason: DownReason, out: &mut Vec<Output>) {
        if let Some(n) = reason.sent() {
            out.push(Output::Send(Message::Notification(n.clone())));
        }
        Self::stop_all_timers(out);
        out.push(Output::Close);
        self.negotiated = None;
        out.push(Output::Down(reason));
        self.goto(State::Idle, out);
        if self.started {
            let d = self.idle_hold.next_delay();
            out.push(Output::StartTimer(Timer::IdleHold, d));
        }
    }

    // RFC 4271 §8.2.2 Idle, events 1/3/4/5.
    fn on_start(&mut self, out: &mut Vec<Output>) {
        self.started = true;
        if self.state != State::Idle {
            return; // events 1/3-7 are ignored outside Idle
        }
        out.push(Output::StopTimer(Timer::IdleHold));
        if self.cfg.passive {
            self.goto(State::Active, out);
        } else {
            out.push(Output::StartTimer(
                Timer::ConnectRetry,
                self.cfg.connect_time,
            ));
            out.push(Output::Connect);
            self.goto(State::Connect, out);
        }
    }

    // RFC 4271 §8.2.2 event 2 in every state.
    fn on_stop(&mut self, n: Notification, out: &mut Vec<Output>) {
        self.started = false;
        self.connect_backoff.reset();
        self.idle_hold.reset();
        match self.state {
            State::Idle => Self::stop_all_timers(out),
            State::Connect | State::Active => {
                Self::stop_all_timers(out);
                out.push(Output::Close);
                self.goto(State::Idle, out);
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.fail(DownReason::SentNotification(n), out)
            }
        }
    }

    fn on_timer(&mut self, t: Timer, out: &mut Vec<Output>) {
        match (self.state, t) {
            // Automatic restart after the damping delay.
            (State::Idle, Timer::IdleHold) if self.started => {
                self.started = false;
                self.on_start(out);
            }
            // Connect, event 9: drop the attempt (no answer), try again at once.
            (State::Connect, Timer::ConnectRetry) => {
                out.push(Output::Close);
                out.push(Output::Down(DownReason::ConnectFailed(
                    ConnectError::NoAnswer,
                )));
                out.push(Output::StartTimer(
                    Timer::ConnectRetry,
                    self.cfg.connect_time,
                ));
                out.push(Output::Connect);
            }
            // Active, event 9: back to Connect (passive: keep waiting).
            (State::Active, Timer::ConnectRetry) if !self.cfg.passive => {
                out.push(Output::StartTimer(
                    Timer::ConnectRetry,
                    self.cfg.connect_time,
                ));
                out.push(Output::Connect);
                self.goto(State::Connect, out);
            }
            // Event 10 in OpenSent/OpenConfirm/Established: NOTIFICATION 4/0.
            (State::OpenSent | State::OpenConfirm | State::Established, Timer::Hold) => {
                let n = Notification::new(error_code::HOLD_TIMER_EXPIRED, 0);
                self.fail(DownReason::SentNotification(n), out);
            }
            // Event 11: send KEEPALIVE, restart the timer.
            (State::OpenConfirm | State::Established, Timer::Keepalive) => {
                out.push(Output::Send(Message::Keepalive));
                if let Some(n) = &self.negotiated
                    && n.keepalive > 0
                {
                    out.push(Output::StartTimer(
                        Timer::Keepalive,
                        Duration::from_secs(n.keepalive as u64),
                    ));
                }
            }
            // Up long enough: the next loss starts the hold-off from the minimum again.
            (State::Established, Timer::Stable) => self.idle_hold.reset(),
            _ => {} // stale timer
        }
    }

    // Events 16/17.
    fn on_tcp_connected(&mut self, out: &mut Vec<Output>) {
        match self.state {
            State::Connect | State::Active => {
                out.push(Output::StopTimer(Timer::ConnectRetry));
                out.push(Output::Send(Message::Open(self.cfg.open())));
                out.push(Output::StartTimer(Timer::Hold, OPEN_SENT_HOLD));
                self.goto(State::OpenSent, out);
            }
            // Idle refuses connections; later states have one already (collisions are
            // resolved by the driver with `resolve_collision` before getting here).
            _ => out.push(Output::Close),
        }
    }

    // Event 18 for our own attempt: keep listening, retry after the backoff (RFC: Active).
    fn on_connect_failed(&mut self, e: ConnectError, out: &mut Vec<Output>) {
        if self.state != State::Connect {
            return; // a stale attempt (the FSM moved on)
        }
        out.push(Output::Close);
        out.push(Output::Down(DownReason::ConnectFailed(e)));
        let d = self.connect_backoff.next_delay();
        out.push(Output::StartTimer(Timer::ConnectRetry, d));
        self.goto(State::Active, out);
    }

    // §8.1.1: new settings.
    fn on_config_changed(&mut self, cfg: FsmConfig, out: &mut Vec<Output>) {
        self.connect_backoff.set_max(cfg.connect_time);
        self.cfg = cfg;
        match self.state {
            // The new settings apply at the next (automatic) start.
            State::Idle => {}
            // No session yet: start over with the new settings at once.
            State::Connect | State::Active => {
                Self::stop_all_timers(out);
                out.push(Output::Close);
                self.goto(State::Idle, out);
                if self.started {
                    self.started = false;
                    self.on_start(out);
                }
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                let n = Notification::cease(CeaseSubcode::OtherConfigChange, "");
                self.fail(DownReason::SentNotification(n), out)
            }
        }
    }

    // Event 18.
    fn on_tcp_failed(&mut self, out: &mut Vec<Output>) {
        match self.state {
            State::Idle => {}
            State::Connect => {
                self.on_connect_failed(ConnectError::Other("connection failed".into()), out)
            }
            // OpenSent: RFC 4271 says Active; we also back off.
            State::OpenSent => {
                out.push(Output::StopTimer(Timer::Hold));
                out.push(Output::Close);
                out.push(Output::Down(DownReason::ConnectionLost));
                let d = self.connect_backoff.next_delay();
                out.push(Output::StartTimer(Timer::ConnectRetry, d));
                self.goto(State::Active, out);
            }
            State::Active | State::OpenConfirm | State::Established => {
                self.fail(DownReason::ConnectionLost, out)
            }
        }
    }

    fn on_reset(&mut self, n: Notification, out: &mut Vec<Output>) {
        match self.state {
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.fail(DownReason::SentNotification(n), out)
            }
            State::Connect | State::Active => self.fail(DownReason::Stopped, out),
            State::Idle => {}
        }
    }

    fn on_connection_replaced(&mut self, out: &mut Vec<Output>) {
        if matches!(self.state, State::OpenSent | State::OpenConfirm) {
            self.negotiated = None;
            out.push(Output::StopTimer(Timer::Keepalive));
            out.push(Output::Send(Message::Open(self.cfg.open())));
            out.push(Output::StartTimer(Timer::Hold, OPEN_SENT_HOLD));
            self.goto(State::OpenSent, out);
        }
    }

    fn on_decode_error(&mut self, e: DecodeError, out: &mut Vec<Output>) {
        match self.state {
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.fail(DownReason::SentNotification(e.to_notification()), out)
            }
            State::Connect | State::Active => self.fail(DownReason::ConnectionLost, out),
            State::Idle => {}
        }
    }

    fn fsm_error(&mut self, subcode: u8, out: &mut Vec<Output>) {
        // RFC 6608 subcodes: 1 OpenSent, 2 OpenConfirm, 3 Established.
        let n = Notification::new(error_code::FSM, subcode);
        self.fail(DownReason::SentNotification(n), out);
    }

    fn on_message(&mut self, m: Message, out: &mut Vec<Output>) {
        if let Message::Notification(n) = m {
            // Events 24/25 in any state with a connection: close, Idle.
            if self.state != State::Idle {
                // A version error in OpenSent does not count as a failure (RFC 4271 §8.2.2).
                self.fail(DownReason::PeerNotification(n), out);
            }
            return;
        }
        match (self.state, m) {
            (State::OpenSent, Message::Open(o)) => self.on_open(o, out),
            (State::OpenSent, _) => self.fsm_error(1, out),
            (State::OpenConfirm, Message::Keepalive) => {
                let n = self.negotiated.clone().expect("negotiated in OpenConfirm");
                self.restart_hold(out);
                self.connect_backoff.reset();
                out.push(Output::StartTimer(Timer::Stable, STABLE_AFTER));
                self.goto(State::Established, out);
                out.push(Output::Established(n));
            }
            (State::OpenConfirm, _) => self.fsm_error(2, out),
            (State::Established, Message::Keepalive | Message::Update(_)) => {
                // Received routes are ignored (export-only); the hold timer restarts.
                self.restart_hold(out);
            }
            (State::Established, Message::RouteRefresh(r)) => {
                let fam = crate::packet::Family::from_afi_safi(r.afi, r.safi);
                let ok = fam.is_some_and(|f| {
                    self.negotiated
                        .as_ref()
                        .is_some_and(|n| n.families.contains(&f))
                });
                if ok && r.subtype == 0 {
                    out.push(Output::RouteRefresh(r));
                }
                // RFC 7313: BoRR/EoRR and requests for families not negotiated are ignored.
            }
            (State::Established, _) => self.fsm_error(3, out),
            // Connect/Active/Idle have no established connection to carry messages.
            (State::Connect | State::Active, _) => self.fail(DownReason::ConnectionLost, out),
            (State::Idle, _) => {}
        }
    }

    fn restart_hold(&self, out: &mut Vec<Output>) {
        if let Some(n) = &self.negotiated
            && n.hold_time > 0
        {
            out.push(Output::StartTimer(
                Timer::Hold,
                Duration::from_secs(n.hold_time as u64),
            ));
        }
    }

    // OpenSent, event 19 (and 20/22 for checks that need configuration).
    fn on_open(&mut self, o: Open, out: &mut Vec<Output>) {
        // The AS from the 4-octet capability when present (RFC 6793 §4.1), checked against
        // peerASN or the dynamicASN rule.
        let peer_asn = o.asn();
        let rule = self.cfg.peer_as_rule();
        if !rule.accepts(peer_asn) {
            let mut n = Notification::new(error_code::OPEN, 2);
            // The AS seen: 2 octets, or 4 for a 4-octet one (as FRR does).
            n.data = match u16::try_from(peer_asn) {
                Ok(a) => bytes::Bytes::copy_from_slice(&a.to_be_bytes()),
                Err(_) => bytes::Bytes::copy_from_slice(&peer_asn.to_be_bytes()),
            };
            let reason = DownReason::BadPeerAs {
                notification: n,
                seen: peer_asn,
                peer_id: o.bgp_id,
                rule,
            };
            return self.fail(reason, out);
        }
        // RFC 6286: the identifier must differ from ours within one AS.
        if o.bgp_id == self.cfg.router_id && peer_asn == self.cfg.local_asn {
            let n = Notification::new(error_code::OPEN, 3);
            return self.fail(DownReason::SentNotification(n), out);
        }
        let neg = negotiate(&self.cfg, &o);
        let (hold_time, keepalive) = (neg.hold_time, neg.keepalive);
        out.push(Output::Send(Message::Keepalive));
        self.negotiated = Some(neg);
        if hold_time > 0 {
            out.push(Output::StartTimer(
                Timer::Keepalive,
                Duration::from_secs(keepalive as u64),
            ));
            out.push(Output::StartTimer(
                Timer::Hold,
                Duration::from_secs(hold_time as u64),
            ));
        } else {
            out.push(Output::StopTimer(Timer::Hold));
        }
        self.goto(State::OpenConfirm, out);
    }
}
