//! The Echo function of one session (RFC 5880 §6.4, §6.8.3, §6.8.9), sans-IO.
//!
//! Two directions, both decided here:
//! - the peer's echoes: we advertise Required Min Echo RX Interval = `echoInterval` when the
//!   profile asks for echo and the driver says this node can loop them (IP forwarding on the
//!   peer's interface, [`Input::SetEchoLoop`]), zero otherwise;
//! - our echoes: while the session is Up, the profile asks for echo and the peer advertises
//!   a non-zero Required Min Echo RX Interval, we send one every max(`echoInterval`, the
//!   peer's interval) (with jitter, as control packets) and expect each back; DetectMult
//!   intervals without a return take the session Down with diagnostic 2 (Echo Function
//!   Failed, §6.8.5). While our echo runs, we ask the peer for control packets no faster than
//!   once a second (§6.4, §6.8.3: a sedate Required Min RX while echo is active).
//!
//! Probing (our addition, so a peer that does not loop cannot flap the session): each run of
//! our echo starts as a probe. Until its first echo comes back the control packets keep the
//! profile's rate and keep detecting failures; a probe with no echo back within the echo
//! detection time means the peer does not loop our echoes (IP forwarding off, uRPF, a filter),
//! not that the path failed, since control packets still arrive. The session stays Up,
//! [`Output::EchoNotReturned`] reports it, and the next probe waits on the echo transmit timer:
//! 1 s, doubling with each probe in a row that fails, up to [`MAX_PROBE_HOLD`]. Once an echo
//! comes back the run is proven: the control packets slow down and a lost echo means a
//! failed path (Down, Echo Function Failed), as RFC 5880 says.
//!
//! [`Input::SetEchoLoop`]: super::Input::SetEchoLoop

use std::time::Duration;

use super::{Output, SLOW_TX, Session};
use crate::echo::EchoPacket;
use crate::packet::{Diag, State, duration_to_us};

/// Echo state of a session.
#[derive(Clone, Debug, Default)]
pub(super) struct Echo {
    /// The driver found that this node loops the peer's echoes (IP forwarding on).
    pub(super) loop_ok: bool,
    /// bfd.RemoteMinEchoRxInterval: the peer's Required Min Echo RX Interval.
    pub(super) remote_min_rx: Duration,
    /// Our echo transmission interval while active (`None`: not active).
    pub(super) active: Option<Duration>,
    /// Sequence number of the next echo.
    pub(super) next_seq: u64,
    /// First sequence number of the current run: returns from before are stale.
    pub(super) run_start: u64,
    pub(super) sent: u64,
    pub(super) returned: u64,
    /// An echo of the current run came back: our echo function detects path failures.
    pub(super) proven: bool,
    /// A probe got nothing back: no echo until the hold (on the echo transmit timer) ends.
    pub(super) held: Option<Duration>,
    /// Probes in a row that got nothing back (reset when an echo comes back).
    pub(super) probe_failures: u32,
    /// Probes that got nothing back in this session's life.
    pub(super) not_returned: u64,
}

/// First hold after a probe that got nothing back; it doubles with each such probe in a row.
pub const MIN_PROBE_HOLD: Duration = Duration::from_secs(1);
/// Longest hold between probes.
pub const MAX_PROBE_HOLD: Duration = Duration::from_secs(60);

/// The hold after the `n`th probe in a row that got nothing back (n ≥ 1).
fn probe_hold(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(6);
    (MIN_PROBE_HOLD * (1u32 << doublings)).min(MAX_PROBE_HOLD)
}

/// What the outside sees of a session's echo function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EchoInfo {
    /// The profile asks for echo.
    pub enabled: bool,
    /// Required Min Echo RX Interval we advertise (zero: we do not loop the peer's echoes).
    pub advertised_rx: Duration,
    /// The node loops the peer's echoes (as last reported by the driver).
    pub loop_ok: bool,
    /// The peer's Required Min Echo RX Interval.
    pub remote_min_rx: Duration,
    /// Our echo interval while we send echoes; `None` when our echo function is not active.
    pub tx_interval: Option<Duration>,
    /// Echoes sent and returned in this session's life.
    pub sent: u64,
    pub returned: u64,
    /// Whether the peer loops our echoes: `Some(true)` once an echo of the current run came
    /// back (our echo then detects path failures), `Some(false)` after a probe got nothing
    /// back (until one does), `None` while not known.
    pub peer_loops: Option<bool>,
    /// Probes that got nothing back in this session's life.
    pub not_returned: u64,
}

impl Session {
    /// The Required Min Echo RX Interval field (RFC 5880 §4.1) to advertise, µs: zero unless
    /// we can loop the peer's echoes (§6.4: a system willing to loop them advertises it).
    pub(super) fn advertised_echo_rx(&self) -> u32 {
        if self.profile.echo_mode && self.echo.loop_ok {
            duration_to_us(self.profile.echo_interval)
        } else {
            0
        }
    }

    /// The Required Min RX our state calls for: the profile's, at least 1 s while our echo
    /// function is active and proven (RFC 5880 §6.8.3).
    pub(super) fn wanted_required_rx(&self) -> Duration {
        if self.echo.active.is_some() && self.echo.proven {
            self.profile.receive_interval.max(SLOW_TX)
        } else {
            self.profile.receive_interval
        }
    }

    pub fn echo_info(&self) -> EchoInfo {
        EchoInfo {
            enabled: self.profile.echo_mode,
            advertised_rx: Duration::from_micros(u64::from(self.advertised_echo_rx())),
            loop_ok: self.echo.loop_ok,
            remote_min_rx: self.echo.remote_min_rx,
            tx_interval: self.echo.active,
            sent: self.echo.sent,
            returned: self.echo.returned,
            peer_loops: if self.echo.active.is_some() && self.echo.proven {
                Some(true)
            } else {
                (self.echo.probe_failures > 0).then_some(false)
            },
            not_returned: self.echo.not_returned,
        }
    }

    /// Our echo interval if our echo function should run now (not while a probe's hold runs).
    fn wanted_echo(&self) -> Option<Duration> {
        let run = self.profile.echo_mode
            && self.state == State::Up
            && !self.echo.remote_min_rx.is_zero()
            && self.echo.held.is_none();
        run.then(|| self.profile.echo_interval.max(self.echo.remote_min_rx))
    }

    fn echo_detection(&self, interval: Duration) -> Duration {
        interval * u32::from(self.profile.detect_multiplier)
    }

    /// Starts, re-times or stops our echo function to match the session (called after every
    /// input). Starting sends the first echo at once and arms both echo timers.
    pub(super) fn sync_echo(&mut self, out: &mut Vec<Output>) {
        let want = self.wanted_echo();
        if want == self.echo.active {
            return;
        }
        let was = self.echo.active;
        self.echo.active = want;
        match want {
            Some(interval) => {
                if was.is_none() {
                    self.echo.run_start = self.echo.next_seq;
                    self.echo.proven = false;
                    self.send_echo(out);
                }
                let j = self.jittered(interval);
                out.push(Output::ArmEchoTx(j));
                out.push(Output::ArmEchoDetect(self.echo_detection(interval)));
            }
            None => {
                out.push(Output::StopEchoTx);
                out.push(Output::StopEchoDetect);
            }
        }
        if was.is_none() != want.is_none() {
            // The control receive interval depends on whether echo runs.
            self.update_local_params();
        }
    }

    fn send_echo(&mut self, out: &mut Vec<Output>) {
        out.push(Output::SendEcho(EchoPacket {
            my_discr: self.local_discr,
            seq: self.echo.next_seq,
        }));
        self.echo.next_seq += 1;
        self.echo.sent += 1;
    }

    /// The echo transmit timer: the next echo of a run, or the end of a probe's hold (the
    /// next probe then starts in [`Self::sync_echo`] if echo is still wanted).
    pub(super) fn on_echo_tx_timer(&mut self, out: &mut Vec<Output>) {
        if let Some(interval) = self.echo.active {
            self.send_echo(out);
            let j = self.jittered(interval);
            out.push(Output::ArmEchoTx(j));
        } else {
            self.echo.held = None;
        }
    }

    // RFC 5880 §6.8.5 (detection with the Echo function): no echo came back in time. A
    // proven run: the path failed. A probe: the peer does not loop our echoes.
    pub(super) fn on_echo_detect_timer(&mut self, out: &mut Vec<Output>) {
        if self.echo.active.is_none() || self.state != State::Up {
            return;
        }
        if !self.echo.proven {
            return self.probe_not_returned(out);
        }
        self.change_state(State::Down, Diag::EchoFunctionFailed, out);
        // Tell the peer at once, as for any state change.
        if self.may_transmit() {
            out.push(Output::Send(self.control_packet()));
        }
    }

    /// Ends a probe that got nothing back: the session stays Up on its control packets and
    /// the next probe waits for the hold (on the echo transmit timer).
    fn probe_not_returned(&mut self, out: &mut Vec<Output>) {
        self.echo.probe_failures = self.echo.probe_failures.saturating_add(1);
        self.echo.not_returned += 1;
        let hold = probe_hold(self.echo.probe_failures);
        self.echo.active = None;
        self.echo.held = Some(hold);
        out.push(Output::StopEchoDetect);
        out.push(Output::ArmEchoTx(hold));
        out.push(Output::EchoNotReturned { hold });
    }

    /// One of our echoes came back (the machine checked its addresses and TTL).
    pub(super) fn on_echo_returned(&mut self, pkt: EchoPacket, out: &mut Vec<Output>) {
        let Some(interval) = self.echo.active else {
            out.push(Output::EchoDrop(crate::echo::EchoDropReason::Stale));
            return;
        };
        if pkt.seq < self.echo.run_start || pkt.seq >= self.echo.next_seq {
            out.push(Output::EchoDrop(crate::echo::EchoDropReason::Stale));
            return;
        }
        self.echo.returned += 1;
        out.push(Output::EchoReturned);
        out.push(Output::ArmEchoDetect(self.echo_detection(interval)));
        if !self.echo.proven {
            // The peer loops our echoes: they detect failures from now on, so the control
            // packets may slow down (RFC 5880 §6.8.3).
            self.echo.proven = true;
            self.echo.probe_failures = 0;
            self.update_local_params();
        }
    }

    /// The driver's finding on whether this node loops the peer's echoes. A change is
    /// announced in the next control packet, sent at once when the session is Up.
    pub(super) fn on_set_echo_loop(&mut self, ok: bool, out: &mut Vec<Output>) {
        let before = self.advertised_echo_rx();
        self.echo.loop_ok = ok;
        if self.advertised_echo_rx() != before && self.state == State::Up && self.may_transmit() {
            out.push(Output::Send(self.control_packet()));
        }
    }
}
