//! The Echo function's decisions, socket-free: when it runs, its interval, detection, what
//! we advertise, and the control slow-down while it runs.

use super::*;

const MS: Duration = Duration::from_millis(1);
const REMOTE: u32 = 0x2222_2222;
const LOCAL: u32 = 0x1111_1111;

fn echo_profile() -> BfdProfile {
    BfdProfile {
        receive_interval: 100 * MS,
        transmit_interval: 100 * MS,
        detect_multiplier: 3,
        echo_interval: 50 * MS,
        echo_mode: true,
        ..BfdProfile::default()
    }
}

fn peer_pkt(state: State, echo_rx_us: u32) -> ControlPacket {
    let your = if state == State::Down { 0 } else { LOCAL };
    ControlPacket::for_test(state, REMOTE, your, 100_000, echo_rx_us)
}

/// A session brought Up by the peer (Down, then Up), the peer advertising `echo_rx_us`;
/// returns it and every output seen.
fn up(profile: BfdProfile, echo_rx_us: u32) -> (Session, Vec<Output>) {
    let mut s = Session::new(profile, LOCAL, 1);
    let mut all = s.process(Input::Start);
    all.extend(s.process(Input::Received(peer_pkt(State::Down, echo_rx_us))));
    all.extend(s.process(Input::Received(peer_pkt(State::Up, echo_rx_us))));
    assert_eq!(s.state(), State::Up);
    (s, all)
}

fn echoes(out: &[Output]) -> Vec<EchoPacket> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendEcho(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn last_detect(out: &[Output]) -> Option<Duration> {
    out.iter().rev().find_map(|o| match o {
        Output::ArmEchoDetect(d) => Some(*d),
        _ => None,
    })
}

#[test]
fn advertises_echo_rx_only_when_enabled_and_looped() {
    let mut s = Session::new(echo_profile(), LOCAL, 1);
    assert_eq!(
        s.control_packet().required_min_echo_rx_us,
        0,
        "forwarding not known yet: nothing advertised"
    );
    s.process(Input::SetEchoLoop(true));
    assert_eq!(s.control_packet().required_min_echo_rx_us, 50_000);
    s.process(Input::SetEchoLoop(false));
    assert_eq!(s.control_packet().required_min_echo_rx_us, 0);
    let mut off = Session::new(BfdProfile::default(), LOCAL, 1);
    off.process(Input::SetEchoLoop(true));
    assert_eq!(
        off.control_packet().required_min_echo_rx_us,
        0,
        "echoMode off"
    );
}

#[test]
fn loop_change_while_up_is_sent_at_once() {
    let (mut s, _) = up(echo_profile(), 0);
    let out = s.process(Input::SetEchoLoop(true));
    let sent: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send(p) => Some(p.required_min_echo_rx_us),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![50_000]);
    assert!(
        s.process(Input::SetEchoLoop(true)).is_empty(),
        "no change, no packet"
    );
}

#[test]
fn no_echo_before_up_or_when_the_peer_does_not_loop() {
    let mut s = Session::new(echo_profile(), LOCAL, 1);
    let out = s.process(Input::Received(peer_pkt(State::Down, 50_000)));
    assert_eq!(s.state(), State::Init);
    assert!(echoes(&out).is_empty(), "Init: no echo");
    let (s, out) = up(echo_profile(), 0);
    assert!(echoes(&out).is_empty(), "peer advertises 0: no echo");
    assert_eq!(s.info().echo.tx_interval, None);
    let (s, out) = up(BfdProfile::default(), 50_000);
    assert!(echoes(&out).is_empty(), "echoMode off: no echo");
    assert_eq!(s.info().echo.tx_interval, None);
}

#[test]
fn echo_starts_on_up_at_the_slower_interval() {
    // Ours 50 ms, the peer can take one every 80 ms: 80 ms.
    let (s, out) = up(echo_profile(), 80_000);
    let e = echoes(&out);
    assert_eq!(
        e,
        vec![EchoPacket {
            my_discr: LOCAL,
            seq: 0
        }],
        "first echo at once"
    );
    assert_eq!(s.info().echo.tx_interval, Some(80 * MS));
    let tx = out.iter().find_map(|o| match o {
        Output::ArmEchoTx(d) => Some(*d),
        _ => None,
    });
    let tx = tx.expect("echo tx timer armed");
    assert!(tx >= 60 * MS && tx <= 80 * MS, "{tx:?} (jitter 75-100 %)");
    assert_eq!(last_detect(&out), Some(240 * MS), "DetectMult x interval");
    // The peer wants 20 ms, ours is 50: 50 ms.
    let (s, _) = up(echo_profile(), 20_000);
    assert_eq!(s.info().echo.tx_interval, Some(50 * MS));
}

#[test]
fn echo_active_slows_the_peers_control_packets() {
    // RFC 5880 §6.8.3: Required Min RX >= 1 s while echo is active, announced by a Poll.
    let (s, _) = up(echo_profile(), 50_000);
    let p = s.control_packet();
    assert_eq!(p.required_min_rx_us, 1_000_000);
    assert!(p.poll, "a Poll Sequence announces the change");
    assert_eq!(
        p.desired_min_tx_us, 100_000,
        "our own control rate unchanged"
    );
    let (s, _) = up(echo_profile(), 0);
    assert_eq!(
        s.control_packet().required_min_rx_us,
        100_000,
        "no echo: as configured"
    );
}

#[test]
fn timer_sends_numbered_echoes_and_returns_restart_detection() {
    let (mut s, _) = up(echo_profile(), 50_000);
    let out = s.process(Input::EchoTxTimerExpired);
    assert_eq!(
        echoes(&out),
        vec![EchoPacket {
            my_discr: LOCAL,
            seq: 1
        }]
    );
    assert!(out.iter().any(|o| matches!(o, Output::ArmEchoTx(_))));
    let out = s.process(Input::EchoReturned(EchoPacket {
        my_discr: LOCAL,
        seq: 1,
    }));
    assert!(out.contains(&Output::EchoReturned));
    assert_eq!(last_detect(&out), Some(150 * MS));
    let info = s.info().echo;
    assert_eq!((info.sent, info.returned), (2, 1));
}

#[test]
fn echo_never_sent_or_from_an_old_run_is_stale() {
    let (mut s, _) = up(echo_profile(), 50_000);
    let out = s.process(Input::EchoReturned(EchoPacket {
        my_discr: LOCAL,
        seq: 5,
    }));
    assert_eq!(
        out,
        vec![Output::EchoDrop(EchoDropReason::Stale)],
        "not sent yet"
    );
    // Down and Up again: the first run's echo 0 is stale in the second run.
    s.process(Input::Received(peer_pkt(State::Down, 50_000)));
    s.process(Input::Received(peer_pkt(State::Down, 50_000)));
    s.process(Input::Received(peer_pkt(State::Up, 50_000)));
    assert_eq!(s.state(), State::Up);
    let out = s.process(Input::EchoReturned(EchoPacket {
        my_discr: LOCAL,
        seq: 0,
    }));
    assert_eq!(out, vec![Output::EchoDrop(EchoDropReason::Stale)]);
}

#[test]
fn missing_echoes_take_the_session_down_with_diag_2() {
    let (mut s, _) = up(echo_profile(), 50_000);
    let out = s.process(Input::EchoDetectTimerExpired);
    assert!(out.contains(&Output::StateChange {
        old: State::Up,
        new: State::Down,
        diag: Diag::EchoFunctionFailed,
    }));
    // The peer is told at once, with the diagnostic; echo stops, control slows back.
    let sent = out.iter().find_map(|o| match o {
        Output::Send(p) => Some(p.clone()),
        _ => None,
    });
    let sent = sent.expect("control packet sent on the change");
    assert_eq!(
        (sent.state, sent.diag),
        (State::Down, Diag::EchoFunctionFailed)
    );
    assert!(out.contains(&Output::StopEchoTx) && out.contains(&Output::StopEchoDetect));
    assert_eq!(s.info().echo.tx_interval, None);
    assert_eq!(s.control_packet().required_min_rx_us, 100_000);
    // A late echo timer does nothing now.
    assert!(echoes(&s.process(Input::EchoTxTimerExpired)).is_empty());
}

#[test]
fn peer_withdrawing_echo_or_profile_edit_stops_it() {
    let (mut s, _) = up(echo_profile(), 50_000);
    let out = s.process(Input::Received(peer_pkt(State::Up, 0)));
    assert!(out.contains(&Output::StopEchoTx), "{out:?}");
    assert_eq!(s.state(), State::Up, "control keeps the session Up");
    let (mut s, _) = up(echo_profile(), 50_000);
    let out = s.process(Input::SetProfile(BfdProfile {
        echo_mode: false,
        ..echo_profile()
    }));
    assert!(out.contains(&Output::StopEchoDetect), "{out:?}");
    // The peer raising its interval re-times ours.
    let (mut s, _) = up(echo_profile(), 50_000);
    let out = s.process(Input::Received(peer_pkt(State::Up, 200_000)));
    assert_eq!(last_detect(&out), Some(600 * MS));
    assert_eq!(s.info().echo.tx_interval, Some(200 * MS));
}

#[test]
fn control_detection_expiry_forgets_the_peers_echo_interval() {
    let (mut s, _) = up(echo_profile(), 50_000);
    s.process(Input::DetectTimerExpired);
    assert_eq!(s.state(), State::Down);
    assert_eq!(s.info().echo.remote_min_rx, Duration::ZERO);
    assert_eq!(s.info().echo.tx_interval, None);
}
