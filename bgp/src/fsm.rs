//! Sans-IO BGP finite state machine (RFC 4271 §8).
//!
//! [`Fsm::process`] takes one [`Input`] and returns the [`Output`]s the driver must carry
//! out in order: open or close the TCP connection, send messages, start and stop timers.
//! Timer expiry comes back as an input. Nothing here touches sockets or clocks, so the tests
//! feed inputs and compare outputs.
//!
//! Deviations from the letter of RFC 4271, on purpose:
//! - Connect retry uses exponential backoff with jitter (1 s doubling to 60 s, each delay
//!   multiplied by a factor in [0.75, 1], RFC 4271 §10) instead of a fixed 120 s, and resets
//!   once a session reaches Established.
//! - After an error the FSM goes to Idle and restarts by itself after the backoff delay
//!   (the "automatic start" events 3/5 with the IdleHold timer of §8.1.1 as the damping).
//! - The hold timer is enforced on receive in every state that runs it (a silent peer is
//!   dropped at hold expiry with NOTIFICATION 4/0).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::packet::{
    Capability, CeaseSubcode, Cxt, DecodeError, EXT_MAX_LEN, Family, GrFamily, MAX_LEN, Message,
    Notification, Open, RouteRefresh, error_code,
};

/// Hold time for OpenSent (RFC 4271 §8.2.2: "a large value", 4 minutes suggested).
pub const OPEN_SENT_HOLD: Duration = Duration::from_secs(240);
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

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
}

/// Graceful restart (RFC 4724) as a restarting speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestart {
    /// How long the peer should keep our routes after the session drops (≤ 4095 s).
    pub restart_time: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_asn: u32,
    pub peer_asn: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time: 0 (no keepalives) or ≥ 3 seconds.
    pub hold_time: u16,
    /// Keepalive interval; 0 means hold time / 3. Capped at negotiated hold / 3.
    pub keepalive: u16,
    /// Timeout of one outbound connection attempt.
    pub connect_time: Duration,
    /// Never connect out; wait for the peer.
    pub passive: bool,
    pub families: Vec<Family>,
    pub graceful_restart: Option<GracefulRestart>,
    /// Offer RFC 8654 extended messages.
    pub extended_messages: bool,
    /// Seed for the backoff jitter (tests use a fixed one).
    pub jitter_seed: u64,
}

impl FsmConfig {
    pub fn new(local_asn: u32, peer_asn: u32, router_id: Ipv4Addr) -> Self {
        FsmConfig {
            local_asn,
            peer_asn,
            router_id,
            hold_time: 90,
            keepalive: 30,
            connect_time: Duration::from_secs(10),
            passive: false,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            graceful_restart: None,
            extended_messages: false,
            jitter_seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The OPEN we send.
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|f| {
                let (afi, safi) = f.afi_safi();
                Capability::MultiProtocol { afi, safi }
            })
            .collect();
        caps.push(Capability::RouteRefresh);
        if self.extended_messages {
            caps.push(Capability::ExtendedMessage);
        }
        if let Some(gr) = self.graceful_restart {
            caps.push(Capability::GracefulRestart {
                flags: 0,
                restart_time: gr.restart_time.min(4095),
                families: self
                    .families
                    .iter()
                    .map(|f| {
                        let (afi, safi) = f.afi_safi();
                        // F bit: forwarding (the node's data path) survives our restart.
                        GrFamily {
                            afi,
                            safi,
                            flags: 0x80,
                        }
                    })
                    .collect(),
            });
        }
        caps.push(Capability::FourOctetAsn(self.local_asn));
        Open::new(self.local_asn, self.hold_time, self.router_id, caps)
    }
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
}

/// Why a session (or an attempt) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION (error, hold expiry, or our Cease).
    SentNotification(Notification),
    /// The peer sent this NOTIFICATION.
    PeerNotification(Notification),
    /// TCP closed or failed.
    ConnectionLost,
    /// Stopped by us without a NOTIFICATION (no session was open).
    Stopped,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DownReason::SentNotification(n) => write!(f, "sent {n}"),
            DownReason::PeerNotification(n) => write!(f, "received {n}"),
            DownReason::ConnectionLost => f.write_str("connection lost"),
            DownReason::Stopped => f.write_str("stopped"),
        }
    }
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
    /// Event 18.
    TcpFailed,
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
    /// The session or the attempt ended; given once per loss.
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
    /// Consecutive failures, for the backoff.
    failures: u32,
    rng: u64,
    started: bool,
}

impl Fsm {
    pub fn new(cfg: FsmConfig) -> Self {
        let rng = cfg.jitter_seed | 1;
        Fsm {
            cfg,
            state: State::Idle,
            negotiated: None,
            failures: 0,
            rng,
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

    pub fn process(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::ManualStart => self.on_start(&mut out),
            Input::ManualStop(n) => self.on_stop(n, &mut out),
            Input::TimerExpired(t) => self.on_timer(t, &mut out),
            Input::TcpConnected => self.on_tcp_connected(&mut out),
            Input::TcpFailed => self.on_tcp_failed(&mut out),
            Input::Message(m) => self.on_message(m, &mut out),
            Input::DecodeError(e) => self.on_decode_error(e, &mut out),
            Input::Reset(n) => self.on_reset(n, &mut out),
            Input::ConnectionReplaced => self.on_connection_replaced(&mut out),
        }
        out
    }

    /// The next backoff delay: min(1 s * 2^failures, 60 s) times a jitter in [0.75, 1].
    fn backoff(&mut self) -> Duration {
        let base = BACKOFF_MIN
            .saturating_mul(1u32 << self.failures.min(16))
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.75 + 0.25 * ((self.rng >> 11) as f64 / (1u64 << 53) as f64);
        base.mul_f64(jitter)
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
        ] {
            out.push(Output::StopTimer(t));
        }
    }

    /// Drop the connection, go to Idle, and (unless stopped) schedule the automatic restart.
    fn fail(&mut self, reason: DownReason, out: &mut Vec<Output>) {
        if let DownReason::SentNotification(n) = &reason {
            out.push(Output::Send(Message::Notification(n.clone())));
        }
        Self::stop_all_timers(out);
        out.push(Output::Close);
        self.negotiated = None;
        out.push(Output::Down(reason));
        self.goto(State::Idle, out);
        if self.started {
            let d = self.backoff();
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
        self.failures = 0;
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
            // Connect, event 9: drop the attempt, try again.
            (State::Connect, Timer::ConnectRetry) => {
                out.push(Output::Close);
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

    // Event 18.
    fn on_tcp_failed(&mut self, out: &mut Vec<Output>) {
        match self.state {
            State::Idle => {}
            // Connect: keep listening, retry after the backoff (RFC: go to Active).
            State::Connect => {
                out.push(Output::Close);
                let d = self.backoff();
                out.push(Output::StartTimer(Timer::ConnectRetry, d));
                self.goto(State::Active, out);
            }
            // OpenSent: RFC 4271 says Active; we also back off.
            State::OpenSent => {
                out.push(Output::StopTimer(Timer::Hold));
                out.push(Output::Close);
                out.push(Output::Down(DownReason::ConnectionLost));
                let d = self.backoff();
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
                self.failures = 0;
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
        let peer_asn = o.asn();
        if peer_asn != self.cfg.peer_asn {
            let mut n = Notification::new(error_code::OPEN, 2);
            n.data = bytes::Bytes::copy_from_slice(&o.my_as.to_be_bytes());
            return self.fail(DownReason::SentNotification(n), out);
        }
        // RFC 6286: the identifier must differ from ours within one AS.
        if o.bgp_id == self.cfg.router_id && peer_asn == self.cfg.local_asn {
            let n = Notification::new(error_code::OPEN, 3);
            return self.fail(DownReason::SentNotification(n), out);
        }
        let hold_time = self.cfg.hold_time.min(o.hold_time);
        let ka_cfg = if self.cfg.keepalive == 0 {
            hold_time / 3
        } else {
            self.cfg.keepalive
        };
        let keepalive = if hold_time == 0 {
            0
        } else {
            ka_cfg.min(hold_time / 3).max(1)
        };
        let mut peer_mp = Vec::new();
        let mut four = false;
        let mut rr = false;
        let mut gr = false;
        let mut ext = false;
        for c in o.capabilities() {
            match c {
                Capability::MultiProtocol { afi, safi } => {
                    if let Some(f) = Family::from_afi_safi(*afi, *safi) {
                        peer_mp.push(f);
                    }
                }
                Capability::FourOctetAsn(_) => four = true,
                Capability::RouteRefresh | Capability::EnhancedRouteRefresh => rr = true,
                Capability::GracefulRestart { .. } => gr = true,
                Capability::ExtendedMessage => ext = true,
                _ => {}
            }
        }
        let has_mp = o
            .capabilities()
            .any(|c| matches!(c, Capability::MultiProtocol { .. }));
        if !has_mp {
            peer_mp.push(Family::Ipv4Unicast); // RFC 4760 §8 default
        }
        let families = self
            .cfg
            .families
            .iter()
            .copied()
            .filter(|f| peer_mp.contains(f))
            .collect();
        let neg = Negotiated {
            peer_id: o.bgp_id,
            peer_asn,
            hold_time,
            keepalive,
            cxt: Cxt {
                four_byte_asn: four,
                max_len: if ext && self.cfg.extended_messages {
                    EXT_MAX_LEN
                } else {
                    MAX_LEN
                },
            },
            families,
            peer_route_refresh: rr,
            peer_graceful_restart: gr,
        };
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

/// Which connection survives a collision (RFC 4271 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionWinner {
    /// Keep the connection we initiated; close the peer's with Cease/7.
    LocallyInitiated,
    /// Keep the connection the peer initiated; close ours with Cease/7.
    RemotelyInitiated,
}

/// RFC 4271 §6.8: the side with the higher BGP Identifier keeps the connection it opened.
/// (A collision with a connection already Established always keeps the Established one;
/// the driver handles that before asking.)
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> CollisionWinner {
    if u32::from(local_id) > u32::from(remote_id) {
        CollisionWinner::LocallyInitiated
    } else {
        CollisionWinner::RemotelyInitiated
    }
}

/// The Cease used when a collision closes a connection.
pub fn collision_cease() -> Notification {
    Notification::cease(CeaseSubcode::CollisionResolution, "")
}
