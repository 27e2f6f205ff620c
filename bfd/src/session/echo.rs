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
    /// function is active (RFC 5880 §6.8.3).
    pub(super) fn wanted_required_rx(&self) -> Duration {
        if self.echo.active.is_some() {
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
        }
    }

    /// Our echo interval if our echo function should run now.
    fn wanted_echo(&self) -> Option<Duration> {
        let run =
            self.profile.echo_mode && self.state == State::Up && !self.echo.remote_min_rx.is_zero();
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

    pub(super) fn on_echo_tx_timer(&mut self, out: &mut Vec<Output>) {
        if let Some(interval) = self.echo.active {
            self.send_echo(out);
            let j = self.jittered(interval);
            out.push(Output::ArmEchoTx(j));
        }
    }

    // RFC 5880 §6.8.5 (detection with the Echo function): no echo came back in time.
    pub(super) fn on_echo_detect_timer(&mut self, out: &mut Vec<Output>) {
        if self.echo.active.is_some() && self.state == State::Up {
            self.change_state(State::Down, Diag::EchoFunctionFailed, out);
            // Tell the peer at once, as for any state change.
            if self.may_transmit() {
                out.push(Output::Send(self.control_packet()));
            }
        }
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
