//! The BFD session state machine (RFC 5880 §6.2, §6.8), sans-IO.
//!
//! [`Session::process`] takes an [`Input`] (a decoded packet, a timer expiry, an admin
//! command) and returns the [`Output`]s the driver must carry out: packets to send, timers to
//! (re)arm or stop, state changes to report, drops to count. No clock, no socket.
//!
//! Only asynchronous mode is implemented. Demand mode is never requested by us; a peer in
//! demand mode is honoured as RFC 5880 §6.8.7 asks (periodic transmission ceases). The Echo
//! function (RFC 5880 §6.4) is in [`echo`].

use std::time::Duration;

use crate::auth::{self, AuthFailure, RxSeq, TxSeq};
use crate::echo::{EchoDropReason, EchoPacket};
use crate::packet::{ControlPacket, Diag, DropReason, State, duration_to_us, us_to_duration};
use crate::profile::BfdProfile;

mod echo;
#[cfg(test)]
mod echo_tests;

pub use echo::{EchoInfo, MAX_PROBE_HOLD, MIN_PROBE_HOLD};

/// Transmit interval floor while the session is not Up (RFC 5880 §6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// What happened to the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Start the session (arms the first transmission unless passive).
    Start,
    /// A packet that passed the codec checks and was selected for this session.
    Received(ControlPacket),
    /// The transmit timer armed by [`Output::ArmTx`] expired.
    TxTimerExpired,
    /// The detection timer armed by [`Output::ArmDetect`] expired.
    DetectTimerExpired,
    /// Local administrative shutdown (RFC 5880 §6.8.16).
    AdminDown,
    /// Leave AdminDown.
    AdminUp,
    /// New timers; a Poll Sequence announces them when Up (RFC 5880 §6.8.3).
    SetProfile(BfdProfile),
    /// The echo transmit timer armed by [`Output::ArmEchoTx`] expired.
    EchoTxTimerExpired,
    /// The echo detection timer armed by [`Output::ArmEchoDetect`] expired.
    EchoDetectTimerExpired,
    /// One of our echo packets came back (addresses and TTL already checked).
    EchoReturned(EchoPacket),
    /// Whether this node can loop the peer's echo packets back (IP forwarding on).
    SetEchoLoop(bool),
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this packet now.
    Send(ControlPacket),
    /// (Re)arm the transmit timer to fire after this delay (jitter already applied).
    ArmTx(Duration),
    /// Stop the transmit timer.
    StopTx,
    /// (Re)arm the detection timer.
    ArmDetect(Duration),
    /// Stop the detection timer.
    StopDetect,
    /// The local state changed; `diag` is the local diagnostic after the change.
    StateChange { old: State, new: State, diag: Diag },
    /// The received packet was discarded by a session-level check.
    Drop(DropReason),
    /// The received packet failed authentication (RFC 5880 §6.7) and was discarded.
    AuthFailed(AuthFailure),
    /// Send this echo packet now (RFC 5880 §6.4).
    SendEcho(EchoPacket),
    /// (Re)arm the echo transmit timer.
    ArmEchoTx(Duration),
    /// Stop the echo transmit timer.
    StopEchoTx,
    /// (Re)arm the echo detection timer.
    ArmEchoDetect(Duration),
    /// Stop the echo detection timer.
    StopEchoDetect,
    /// A returned echo was accepted (count it).
    EchoReturned,
    /// A returned echo was discarded.
    EchoDrop(EchoDropReason),
    /// A probe of our echo function got nothing back: the peer does not loop our echoes. The
    /// session stays Up on its control packets; the next probe is in `hold`.
    EchoNotReturned { hold: Duration },
}

/// Read-only view of a session's negotiated values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub state: State,
    pub remote_state: State,
    pub local_discr: u32,
    pub remote_discr: u32,
    pub local_diag: Diag,
    pub remote_diag: Diag,
    /// Desired Min TX we advertise now.
    pub desired_min_tx: Duration,
    /// Required Min RX we advertise now.
    pub required_min_rx: Duration,
    pub remote_desired_min_tx: Duration,
    pub remote_min_rx: Duration,
    pub remote_detect_mult: u8,
    pub detect_mult: u8,
    /// Negotiated interval between our periodic packets (before jitter).
    pub tx_interval: Duration,
    /// How long we wait without packets before declaring the peer down (0 if not yet known).
    pub detection_time: Duration,
    pub poll_active: bool,
    /// The Echo function.
    pub echo: EchoInfo,
}

/// One BFD session (RFC 5880 §6.8.1 state variables).
#[derive(Clone, Debug)]
pub struct Session {
    profile: BfdProfile,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    remote_diag: Diag,
    /// bfd.DesiredMinTxInterval as advertised.
    desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval as advertised.
    required_min_rx: Duration,
    /// Values in force for our TX interval and for the detection time; they lag the
    /// advertised ones while a Poll Sequence runs (RFC 5880 §6.8.3).
    tx_in_force: Duration,
    rx_in_force: Duration,
    remote_min_rx: Duration,
    remote_desired_min_tx: Duration,
    remote_detect_mult: u8,
    remote_demand: bool,
    poll_active: bool,
    poll_pending: bool,
    /// Whether we asked the driver to arm the transmit timer, and with which base interval.
    tx_armed: Option<Duration>,
    echo: echo::Echo,
    /// bfd.XmitAuthSeq (RFC 5880 §6.8.1).
    auth_tx: TxSeq,
    /// bfd.AuthSeqKnown / bfd.RcvAuthSeq.
    auth_rx: RxSeq,
    /// One Detection Time has passed without an accepted packet (RFC 5880 §6.8.1: the
    /// receive sequence is forgotten after two).
    auth_silent: bool,
    rng: u64,
}

impl Session {
    /// A new session in state Down. `local_discr` must be non-zero and unique on the host;
    /// `seed` feeds the transmit jitter (any value; tests pass a constant).
    pub fn new(profile: BfdProfile, local_discr: u32, seed: u64) -> Session {
        let mut s = Session {
            state: State::Down,
            remote_state: State::Down,
            local_discr,
            remote_discr: 0,
            local_diag: Diag::None,
            remote_diag: Diag::None,
            desired_min_tx: SLOW_TX,
            required_min_rx: profile.receive_interval,
            tx_in_force: SLOW_TX,
            rx_in_force: profile.receive_interval,
            // RFC 5880 §6.8.1: bfd.RemoteMinRxInterval starts at 1 µs.
            remote_min_rx: Duration::from_micros(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_demand: false,
            poll_active: false,
            poll_pending: false,
            tx_armed: None,
            echo: echo::Echo::default(),
            // RFC 5880 §6.8.1: bfd.XmitAuthSeq starts at a random value.
            auth_tx: TxSeq::new((seed >> 32) as u32 ^ seed as u32),
            auth_rx: RxSeq::default(),
            auth_silent: false,
            rng: seed | 1,
            profile,
        };
        s.desired_min_tx = s.wanted_desired_tx();
        s.tx_in_force = s.desired_min_tx;
        s
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    pub fn profile(&self) -> &BfdProfile {
        &self.profile
    }

    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            state: self.state,
            remote_state: self.remote_state,
            local_discr: self.local_discr,
            remote_discr: self.remote_discr,
            local_diag: self.local_diag,
            remote_diag: self.remote_diag,
            desired_min_tx: self.desired_min_tx,
            required_min_rx: self.required_min_rx,
            remote_desired_min_tx: self.remote_desired_min_tx,
            remote_min_rx: self.remote_min_rx,
            remote_detect_mult: self.remote_detect_mult,
            detect_mult: self.profile.detect_multiplier,
            tx_interval: self.tx_interval(),
            detection_time: self.detection_time(),
            poll_active: self.poll_active,
            echo: self.echo_info(),
        }
    }

    /// Handles one input and returns what the driver must do, in order.
    pub fn process(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                // First packet at once (not passive), then periodic.
                if self.may_transmit() {
                    out.push(Output::Send(self.control_packet()));
                }
            }
            Input::Received(pkt) => self.on_receive(pkt, &mut out),
            Input::TxTimerExpired => self.on_tx_timer(&mut out),
            Input::DetectTimerExpired => self.on_detect_timer(&mut out),
            Input::AdminDown => self.on_admin_down(&mut out),
            Input::AdminUp => self.on_admin_up(&mut out),
            Input::SetProfile(p) => self.on_set_profile(p),
            Input::EchoTxTimerExpired => self.on_echo_tx_timer(&mut out),
            Input::EchoDetectTimerExpired => self.on_echo_detect_timer(&mut out),
            Input::EchoReturned(p) => self.on_echo_returned(p, &mut out),
            Input::SetEchoLoop(ok) => self.on_set_echo_loop(ok, &mut out),
        }
        self.sync_echo(&mut out);
        self.sync_tx_timer(&mut out);
        self.sign(&mut out);
        out
    }

    /// RFC 5880 §6.7.4, transmission: every Control packet sent carries the authentication
    /// section, with bfd.XmitAuthSeq advanced as the method says (echo packets are not
    /// authenticated, §6.7).
    fn sign(&mut self, out: &mut [Output]) {
        let Some(cfg) = self.profile.auth.as_ref() else {
            return;
        };
        for o in out {
            if let Output::Send(pkt) = o {
                self.auth_tx.sign(pkt, cfg);
            }
        }
    }

    /// bfd.RcvAuthSeq when known, for tests and status.
    pub fn auth_rx_seq(&self) -> Option<u32> {
        self.auth_rx.0
    }

    /// The packet we would send now (periodic, no Final).
    pub fn control_packet(&self) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll: self.poll_active,
            final_: false,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_mult: self.profile.detect_multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: duration_to_us(self.desired_min_tx),
            required_min_rx_us: duration_to_us(self.required_min_rx),
            required_min_echo_rx_us: self.advertised_echo_rx(),
            auth: None,
        }
    }

    /// Negotiated transmit interval before jitter: the larger of what we want to send at and
    /// what the peer can receive (RFC 5880 §6.8.7).
    pub fn tx_interval(&self) -> Duration {
        self.tx_in_force.max(self.remote_min_rx)
    }

    /// Detection time in asynchronous mode: the peer's Detect Mult times the larger of our
    /// Required Min RX and its Desired Min TX (RFC 5880 §6.8.4). Zero before the first packet.
    pub fn detection_time(&self) -> Duration {
        self.rx_in_force.max(self.remote_desired_min_tx) * u32::from(self.remote_detect_mult)
    }

    // RFC 5880 §6.8.6: reception of a BFD Control packet, after the stateless checks.
    fn on_receive(&mut self, pkt: ControlPacket, out: &mut Vec<Output>) {
        if pkt.your_discr != 0 && pkt.your_discr != self.local_discr {
            out.push(Output::Drop(DropReason::NoSession));
            return;
        }
        // RFC 5880 §6.8.6 then §6.7.4: the A bit must match bfd.AuthType, then the section.
        if let Err(f) = auth::check(self.profile.auth.as_ref(), &mut self.auth_rx, &pkt) {
            out.push(Output::AuthFailed(f));
            return;
        }
        self.auth_silent = false;
        let was_heard = self.remote_discr != 0;
        self.remote_discr = pkt.my_discr;
        self.remote_state = pkt.state;
        self.remote_diag = pkt.diag;
        self.remote_demand = pkt.demand;
        self.remote_min_rx = us_to_duration(pkt.required_min_rx_us);
        self.remote_desired_min_tx = us_to_duration(pkt.desired_min_tx_us);
        self.remote_detect_mult = pkt.detect_mult;
        self.echo.remote_min_rx = us_to_duration(pkt.required_min_echo_rx_us);
        // RFC 5880 §6.5: a Final ends the Poll Sequence; the new values take force.
        if pkt.final_ && self.poll_active {
            self.poll_active = false;
            self.tx_in_force = self.desired_min_tx;
            self.rx_in_force = self.required_min_rx;
            if self.poll_pending {
                self.poll_pending = false;
                self.poll_active = true;
            }
        }
        if self.state == State::AdminDown {
            out.push(Output::Drop(DropReason::SessionAdminDown));
            return;
        }
        // The detection timer restarts on every accepted packet (RFC 5880 §6.8.4).
        out.push(Output::ArmDetect(self.detection_time()));
        let old = self.state;
        if pkt.state == State::AdminDown {
            if self.state != State::Down {
                self.change_state(State::Down, Diag::NeighborSignaledSessionDown, out);
            }
        } else {
            match (self.state, pkt.state) {
                (State::Down, State::Down) => self.change_state(State::Init, Diag::None, out),
                (State::Down, State::Init) => self.change_state(State::Up, Diag::None, out),
                (State::Init, State::Init | State::Up) => {
                    self.change_state(State::Up, Diag::None, out)
                }
                (State::Up, State::Down) => {
                    self.change_state(State::Down, Diag::NeighborSignaledSessionDown, out)
                }
                _ => {}
            }
        }
        // RFC 5880 §6.8.6: answer a Poll with a Final at once, whatever the timer says.
        if pkt.poll {
            let mut fin = self.control_packet();
            fin.poll = false;
            fin.final_ = true;
            out.push(Output::Send(fin));
        } else if self.state != old || (!was_heard && self.profile.passive_mode) {
            // Tell the peer at once about a state change (speeds up bring-up and teardown);
            // a passive session also answers its first packet without waiting for the timer.
            out.push(Output::Send(self.control_packet()));
        }
    }

    fn on_tx_timer(&mut self, out: &mut Vec<Output>) {
        self.tx_armed = None;
        if self.may_transmit() {
            out.push(Output::Send(self.control_packet()));
        }
    }

    // RFC 5880 §6.8.4: detection time passed without a packet.
    fn on_detect_timer(&mut self, out: &mut Vec<Output>) {
        // RFC 5880 §6.8.1: bfd.RemoteDiscr is reset after a silent Detection Time.
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_min_rx = Duration::from_micros(1);
        self.echo.remote_min_rx = Duration::ZERO;
        self.remote_demand = false;
        // RFC 5880 §6.8.1: bfd.AuthSeqKnown is reset after twice the Detection Time without
        // a packet; the timer runs once more to measure the second one.
        if self.auth_rx.0.is_some() && !self.auth_silent {
            self.auth_silent = true;
            out.push(Output::ArmDetect(self.detection_time()));
        } else {
            self.auth_rx = RxSeq::default();
            self.auth_silent = false;
            out.push(Output::StopDetect);
        }
        if matches!(self.state, State::Init | State::Up) {
            self.change_state(State::Down, Diag::ControlDetectionTimeExpired, out);
            if self.may_transmit() {
                out.push(Output::Send(self.control_packet()));
            }
        }
    }

    // RFC 5880 §6.8.16
    fn on_admin_down(&mut self, out: &mut Vec<Output>) {
        if self.state == State::AdminDown {
            return;
        }
        self.change_state(State::AdminDown, Diag::AdministrativelyDown, out);
        out.push(Output::StopDetect);
        out.push(Output::Send(self.control_packet()));
    }

    fn on_admin_up(&mut self, out: &mut Vec<Output>) {
        if self.state == State::AdminDown {
            self.change_state(State::Down, Diag::None, out);
        }
    }

    fn on_set_profile(&mut self, profile: BfdProfile) {
        if profile.auth != self.profile.auth {
            // New settings: no receive sequence is known under them yet.
            self.auth_rx = RxSeq::default();
            self.auth_silent = false;
        }
        self.profile = profile;
        self.update_local_params();
    }

    fn change_state(&mut self, new: State, diag: Diag, out: &mut Vec<Output>) {
        let old = self.state;
        if old == new {
            return;
        }
        self.state = new;
        self.local_diag = diag;
        out.push(Output::StateChange { old, new, diag });
        self.update_local_params();
    }

    /// The Desired Min TX our state calls for: the profile's, at least 1 s unless Up.
    fn wanted_desired_tx(&self) -> Duration {
        if self.state == State::Up {
            self.profile.transmit_interval
        } else {
            self.profile.transmit_interval.max(SLOW_TX)
        }
    }

    /// Applies the advertised intervals for the current state and profile (RFC 5880 §6.8.3).
    /// While Up a change starts a Poll Sequence; an increase of Desired Min TX and a decrease
    /// of Required Min RX take force only when it ends. Not Up, changes apply at once and no
    /// Poll Sequence runs (there is nobody to answer it reliably).
    fn update_local_params(&mut self) {
        let tx = self.wanted_desired_tx();
        let rx = self.wanted_required_rx();
        if self.state != State::Up {
            self.poll_active = false;
            self.poll_pending = false;
            self.desired_min_tx = tx;
            self.required_min_rx = rx;
            self.tx_in_force = tx;
            self.rx_in_force = rx;
            return;
        }
        if tx == self.desired_min_tx && rx == self.required_min_rx {
            return;
        }
        self.desired_min_tx = tx;
        self.required_min_rx = rx;
        if tx < self.tx_in_force {
            self.tx_in_force = tx;
        }
        if rx > self.rx_in_force {
            self.rx_in_force = rx;
        }
        if self.poll_active {
            self.poll_pending = true;
        } else {
            self.poll_active = true;
        }
    }

    /// RFC 5880 §6.8.7: when periodic Control packets may be sent.
    fn may_transmit(&self) -> bool {
        if self.profile.passive_mode && self.remote_discr == 0 {
            return false;
        }
        if self.remote_min_rx.is_zero() {
            return false;
        }
        let demand_quiet = self.remote_demand
            && self.state == State::Up
            && self.remote_state == State::Up
            && !self.poll_active;
        !demand_quiet
    }

    /// Keeps the driver's transmit timer consistent with [`Session::may_transmit`] and the
    /// negotiated interval: armed when allowed, re-armed when the interval changed, stopped
    /// when not allowed.
    fn sync_tx_timer(&mut self, out: &mut Vec<Output>) {
        let want = self.may_transmit().then(|| self.tx_interval());
        if want == self.tx_armed {
            return;
        }
        match want {
            Some(base) => {
                let j = self.jittered(base);
                out.push(Output::ArmTx(j));
            }
            None => out.push(Output::StopTx),
        }
        self.tx_armed = want;
    }

    /// RFC 5880 §6.8.7: 0-25 % jitter below the interval, at least 10 % when Detect Mult is 1.
    fn jittered(&mut self, base: Duration) -> Duration {
        // xorshift64: deterministic for a seed, good enough for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        jitter(base, self.profile.detect_multiplier, self.rng)
    }
}

/// Applies RFC 5880 §6.8.7 jitter to `base` using `random`: the result is in 75-100 % of
/// `base`, or 75-90 % when `detect_mult` is 1.
pub fn jitter(base: Duration, detect_mult: u8, random: u64) -> Duration {
    let span: u64 = if detect_mult == 1 { 15 } else { 25 };
    let pct = 75 + (random % (span + 1));
    base * u32::try_from(pct).unwrap_or(100) / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_rfc_bounds() {
        let base = Duration::from_millis(300);
        for r in 0..1000u64 {
            let j = jitter(base, 3, r.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert!(j >= base * 3 / 4 && j <= base, "{j:?}");
            let j1 = jitter(base, 1, r.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert!(j1 >= base * 3 / 4 && j1 <= base * 9 / 10, "{j1:?}");
        }
    }
}
