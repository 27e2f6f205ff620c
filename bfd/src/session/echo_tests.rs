//! The Echo function's decisions, socket-free: when it runs, its interval, detection, what
//! we advertise, the control slow-down while it runs, and probing a peer that may not loop.

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

/// Our echo `seq` came back.
fn returned(s: &mut Session, seq: u64) -> Vec<Output> {
    s.process(Input::EchoReturned(EchoPacket {
        my_discr: LOCAL,
        seq,
    }))
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
    // RFC 5880 §6.8.3: Required Min RX >= 1 s while echo is active, announced by a Poll —
    // once an echo came back (before, the probe relies on the control packets).
    let (mut s, _) = up(echo_profile(), 50_000);
    assert_eq!(
        s.control_packet().required_min_rx_us,
        100_000,
        "probing: control detection as configured"
    );
    assert_eq!(s.info().echo.peer_loops, None);
    returned(&mut s, 0);
    assert_eq!(s.info().echo.peer_loops, Some(true));
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
    returned(&mut s, 0);
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

/// The hold armed by a probe that got nothing back, checking what else it did.
fn probe_fails(s: &mut Session) -> Duration {
    let out = s.process(Input::EchoDetectTimerExpired);
    assert_eq!(s.state(), State::Up, "a probe never takes the session down");
    assert!(
        !out.iter().any(|o| matches!(o, Output::StateChange { .. })),
        "{out:?}"
    );
    assert!(out.contains(&Output::StopEchoDetect), "{out:?}");
    assert_eq!(s.info().echo.tx_interval, None, "echo stopped while held");
    let hold = out.iter().find_map(|o| match o {
        Output::EchoNotReturned { hold } => Some(*hold),
        _ => None,
    });
    let hold = hold.expect("reported");
    assert!(
        out.contains(&Output::ArmEchoTx(hold)),
        "hold on the tx timer: {out:?}"
    );
    hold
}

#[test]
fn a_probe_with_nothing_back_keeps_the_session_up_and_backs_off() {
    let (mut s, _) = up(echo_profile(), 50_000);
    s.process(Input::EchoTxTimerExpired);
    assert_eq!(probe_fails(&mut s), MIN_PROBE_HOLD);
    let info = s.info().echo;
    assert_eq!((info.peer_loops, info.not_returned), (Some(false), 1));
    assert_eq!(
        s.control_packet().required_min_rx_us,
        100_000,
        "control packets keep detecting at the profile's rate"
    );
    // Control packets during the hold start nothing.
    let out = s.process(Input::Received(peer_pkt(State::Up, 50_000)));
    assert!(echoes(&out).is_empty(), "{out:?}");
    // The hold ends: a new probe, numbered after the old run's echoes.
    let out = s.process(Input::EchoTxTimerExpired);
    assert_eq!(
        echoes(&out),
        vec![EchoPacket {
            my_discr: LOCAL,
            seq: 2
        }]
    );
    assert_eq!(last_detect(&out), Some(150 * MS));
    assert_eq!(
        s.info().echo.peer_loops,
        Some(false),
        "still not known to loop"
    );
    // Each failed probe in a row doubles the hold, up to the maximum.
    let mut holds = vec![];
    for _ in 0..8 {
        holds.push(probe_fails(&mut s).as_secs());
        s.process(Input::EchoTxTimerExpired);
    }
    assert_eq!(holds, [2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(s.info().echo.not_returned, 9);
    // A late echo of an old probe is stale; one of this probe proves the peer loops.
    assert_eq!(
        returned(&mut s, 0),
        vec![Output::EchoDrop(EchoDropReason::Stale)]
    );
    let seq = s.info().echo.sent - 1;
    returned(&mut s, seq);
    assert_eq!(s.info().echo.peer_loops, Some(true));
    assert_eq!(s.control_packet().required_min_rx_us, 1_000_000);
    // Proven, a loss is a path failure again; the next failed probe starts from 1 s.
    s.process(Input::EchoDetectTimerExpired);
    assert_eq!(s.state(), State::Down);
    s.process(Input::Received(peer_pkt(State::Down, 50_000)));
    s.process(Input::Received(peer_pkt(State::Up, 50_000)));
    assert_eq!(s.state(), State::Up);
    assert_eq!(probe_fails(&mut s), MIN_PROBE_HOLD);
}

#[test]
fn a_hold_survives_a_flap_of_the_session() {
    let (mut s, _) = up(echo_profile(), 50_000);
    probe_fails(&mut s);
    s.process(Input::DetectTimerExpired);
    assert_eq!(s.state(), State::Down);
    s.process(Input::Received(peer_pkt(State::Down, 50_000)));
    let out = s.process(Input::Received(peer_pkt(State::Up, 50_000)));
    assert_eq!(s.state(), State::Up);
    assert!(echoes(&out).is_empty(), "still held: {out:?}");
    assert!(
        !out.contains(&Output::StopEchoTx),
        "the hold timer is not cancelled: {out:?}"
    );
    let out = s.process(Input::EchoTxTimerExpired);
    assert_eq!(echoes(&out).len(), 1, "probe after the hold");
}
