//! Session state machine: every transition of RFC 5880 §6.8.6, detection timeout, poll/final
//! on timer changes, AdminDown, passive mode. Inputs in, outputs checked; no sockets, no sleeps.

use std::time::Duration;

use ferrolb_bfd::BfdProfile;
use ferrolb_bfd::packet::{ControlPacket, Diag, DropReason, State};
use ferrolb_bfd::session::{Input, Output, SLOW_TX, Session};

const LOCAL: u32 = 0x1111_1111;
const REMOTE: u32 = 0x2222_2222;
const MS: Duration = Duration::from_millis(1);

fn peer_pkt(state: State, your: u32) -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: REMOTE,
        your_discr: your,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
        auth: None,
    }
}

fn recv(s: &mut Session, state: State) -> Vec<Output> {
    let your = if matches!(state, State::Down | State::AdminDown) && s.info().remote_discr == 0 {
        0
    } else {
        LOCAL
    };
    s.process(Input::Received(peer_pkt(state, your)))
}

fn changes(out: &[Output]) -> Vec<(State, State, Diag)> {
    out.iter()
        .filter_map(|o| match o {
            Output::StateChange { old, new, diag } => Some((*old, *new, *diag)),
            _ => None,
        })
        .collect()
}

fn sent(out: &[Output]) -> Vec<ControlPacket> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn armed_tx(out: &[Output]) -> Option<Duration> {
    out.iter().rev().find_map(|o| match o {
        Output::ArmTx(d) => Some(*d),
        _ => None,
    })
}

fn armed_detect(out: &[Output]) -> Option<Duration> {
    out.iter().rev().find_map(|o| match o {
        Output::ArmDetect(d) => Some(*d),
        _ => None,
    })
}

fn new_session() -> Session {
    let mut s = Session::new(BfdProfile::default(), LOCAL, 42);
    s.process(Input::Start);
    s
}

fn in_state(state: State) -> Session {
    let mut s = new_session();
    match state {
        State::Down => {}
        State::Init => {
            recv(&mut s, State::Down);
        }
        State::Up => {
            recv(&mut s, State::Down);
            recv(&mut s, State::Up);
            // finish the Poll Sequence started on reaching Up
            let mut fin = peer_pkt(State::Up, LOCAL);
            fin.final_ = true;
            s.process(Input::Received(fin));
        }
        State::AdminDown => {
            s.process(Input::AdminDown);
        }
    }
    assert_eq!(s.state(), state);
    s
}

#[test]
fn start_sends_at_once_then_slow_tx_while_down() {
    let mut s = Session::new(BfdProfile::default(), LOCAL, 7);
    let out = s.process(Input::Start);
    let p = sent(&out);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].state, State::Down);
    assert_eq!(p[0].your_discr, 0);
    assert_eq!(p[0].my_discr, LOCAL);
    // RFC 5880 §6.8.3: not Up, Desired Min TX is at least 1 s; Required Min RX is the profile's.
    assert_eq!(p[0].desired_min_tx_us, 1_000_000);
    assert_eq!(p[0].required_min_rx_us, 300_000);
    assert_eq!(
        p[0].required_min_echo_rx_us, 0,
        "echo unsupported: never ask for it"
    );
    let tx = armed_tx(&out).expect("tx armed");
    assert!(tx >= SLOW_TX * 3 / 4 && tx <= SLOW_TX, "{tx:?}");
    // The timer fires: one more packet, timer re-armed.
    let out = s.process(Input::TxTimerExpired);
    assert_eq!(sent(&out).len(), 1);
    assert!(armed_tx(&out).is_some());
}

// --- RFC 5880 §6.8.6 transitions, from Down ---

#[test]
fn down_recv_down_goes_init() {
    let mut s = in_state(State::Down);
    let out = recv(&mut s, State::Down);
    assert_eq!(changes(&out), [(State::Down, State::Init, Diag::None)]);
    let p = sent(&out);
    assert_eq!(p.len(), 1, "state change is announced at once");
    assert_eq!((p[0].state, p[0].your_discr), (State::Init, REMOTE));
}

#[test]
fn down_recv_init_goes_up_and_polls_new_timers() {
    let mut s = in_state(State::Down);
    let out = recv(&mut s, State::Init);
    assert_eq!(changes(&out), [(State::Down, State::Up, Diag::None)]);
    let p = sent(&out);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].state, State::Up);
    assert!(
        p[0].poll,
        "Desired Min TX changed 1 s -> 300 ms: Poll Sequence"
    );
    assert_eq!(p[0].desired_min_tx_us, 300_000);
    // A decrease of Desired Min TX applies at once: tx timer re-armed in the 300 ms range.
    let tx = armed_tx(&out).expect("tx re-armed");
    assert!(tx >= 225 * MS && tx <= 300 * MS, "{tx:?}");
}

#[test]
fn down_recv_up_stays_down() {
    let mut s = in_state(State::Down);
    let out = s.process(Input::Received(peer_pkt(State::Up, LOCAL)));
    assert!(changes(&out).is_empty());
    assert_eq!(s.state(), State::Down);
}

#[test]
fn down_recv_admin_down_stays_down_silently() {
    let mut s = in_state(State::Down);
    let out = recv(&mut s, State::AdminDown);
    assert!(changes(&out).is_empty());
    assert_eq!(s.state(), State::Down);
}

// --- from Init ---

#[test]
fn init_recv_down_stays_init() {
    let mut s = in_state(State::Init);
    let out = recv(&mut s, State::Down);
    assert!(changes(&out).is_empty());
    assert_eq!(s.state(), State::Init);
}

#[test]
fn init_recv_init_or_up_goes_up() {
    for st in [State::Init, State::Up] {
        let mut s = in_state(State::Init);
        let out = recv(&mut s, st);
        assert_eq!(
            changes(&out),
            [(State::Init, State::Up, Diag::None)],
            "recv {st}"
        );
    }
}

#[test]
fn init_recv_admin_down_goes_down_with_diag_3() {
    let mut s = in_state(State::Init);
    let out = recv(&mut s, State::AdminDown);
    assert_eq!(
        changes(&out),
        [(State::Init, State::Down, Diag::NeighborSignaledSessionDown)]
    );
}

// --- from Up ---

#[test]
fn up_recv_down_or_admin_down_goes_down_with_diag_3() {
    for st in [State::Down, State::AdminDown] {
        let mut s = in_state(State::Up);
        let out = recv(&mut s, st);
        assert_eq!(
            changes(&out),
            [(State::Up, State::Down, Diag::NeighborSignaledSessionDown)],
            "recv {st}"
        );
        let p = sent(&out);
        assert_eq!(p[0].state, State::Down);
        assert_eq!(p[0].diag, Diag::NeighborSignaledSessionDown);
        assert_eq!(p[0].desired_min_tx_us, 1_000_000, "back to slow TX");
        assert!(!p[0].poll, "no Poll Sequence while not Up");
    }
}

#[test]
fn up_recv_init_or_up_stays_up() {
    for st in [State::Init, State::Up] {
        let mut s = in_state(State::Up);
        let out = recv(&mut s, st);
        assert!(changes(&out).is_empty(), "recv {st}");
        assert_eq!(s.state(), State::Up);
        // No state change and no Poll: nothing sent outside the timer.
        assert!(sent(&out).is_empty());
        assert_eq!(armed_detect(&out), Some(900 * MS));
    }
}

// --- AdminDown ---

#[test]
fn admin_down_discards_everything_and_admin_up_returns_to_down() {
    let mut s = in_state(State::Up);
    let out = s.process(Input::AdminDown);
    assert_eq!(
        changes(&out),
        [(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    let p = sent(&out);
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].state, p[0].diag),
        (State::AdminDown, Diag::AdministrativelyDown)
    );
    assert!(out.contains(&Output::StopDetect));
    for st in [State::AdminDown, State::Down, State::Init, State::Up] {
        let out = s.process(Input::Received(peer_pkt(st, LOCAL)));
        assert_eq!(
            out,
            [Output::Drop(DropReason::SessionAdminDown)],
            "recv {st}"
        );
        assert_eq!(s.state(), State::AdminDown);
    }
    let out = s.process(Input::AdminUp);
    assert_eq!(changes(&out), [(State::AdminDown, State::Down, Diag::None)]);
}

// --- detection ---

#[test]
fn detection_time_from_negotiated_values() {
    let mut s = in_state(State::Down);
    let mut p = peer_pkt(State::Down, 0);
    p.detect_mult = 5;
    p.desired_min_tx_us = 1_000_000;
    let out = s.process(Input::Received(p));
    // 5 x max(our 300 ms RX, their 1 s TX)
    assert_eq!(armed_detect(&out), Some(Duration::from_secs(5)));
    let mut p = peer_pkt(State::Init, LOCAL);
    p.detect_mult = 4;
    p.desired_min_tx_us = 100_000;
    let out = s.process(Input::Received(p));
    // 4 x max(300 ms, 100 ms)
    assert_eq!(armed_detect(&out), Some(1200 * MS));
    assert_eq!(s.info().detection_time, 1200 * MS);
}

#[test]
fn detection_timeout_in_up_or_init_goes_down_with_diag_1() {
    for st in [State::Up, State::Init] {
        let mut s = in_state(st);
        let out = s.process(Input::DetectTimerExpired);
        assert_eq!(
            changes(&out),
            [(st, State::Down, Diag::ControlDetectionTimeExpired)]
        );
        let info = s.info();
        assert_eq!(info.remote_discr, 0, "RFC 5880 §6.8.1: RemoteDiscr reset");
        let p = sent(&out);
        assert_eq!(p[0].your_discr, 0);
        assert_eq!(p[0].diag, Diag::ControlDetectionTimeExpired);
    }
}

#[test]
fn detection_timeout_in_down_only_forgets_the_peer() {
    let mut s = in_state(State::Down);
    s.process(Input::Received(peer_pkt(State::Up, LOCAL)));
    assert_eq!(s.info().remote_discr, REMOTE);
    let out = s.process(Input::DetectTimerExpired);
    assert!(changes(&out).is_empty());
    assert_eq!(s.info().remote_discr, 0);
}

// --- poll / final ---

#[test]
fn received_poll_is_answered_with_final_at_once() {
    let mut s = in_state(State::Up);
    let mut p = peer_pkt(State::Up, LOCAL);
    p.poll = true;
    let out = s.process(Input::Received(p));
    let f = sent(&out);
    assert_eq!(f.len(), 1);
    assert!(f[0].final_ && !f[0].poll, "Final set, Poll clear");
}

#[test]
fn final_ends_poll_sequence_started_at_up() {
    let mut s = in_state(State::Init);
    recv(&mut s, State::Up);
    assert!(s.info().poll_active);
    // periodic packets keep Poll until the Final comes
    let out = s.process(Input::TxTimerExpired);
    assert!(sent(&out)[0].poll);
    let mut fin = peer_pkt(State::Up, LOCAL);
    fin.final_ = true;
    s.process(Input::Received(fin));
    assert!(!s.info().poll_active);
    let out = s.process(Input::TxTimerExpired);
    assert!(!sent(&out)[0].poll);
}

#[test]
fn increased_tx_interval_waits_for_final() {
    let mut s = in_state(State::Up);
    assert_eq!(s.info().tx_interval, 300 * MS);
    let slower = BfdProfile {
        transmit_interval: 500 * MS,
        ..BfdProfile::default()
    };
    let out = s.process(Input::SetProfile(slower));
    assert!(
        armed_tx(&out).is_none(),
        "interval in force unchanged: timer not re-armed"
    );
    let info = s.info();
    assert!(info.poll_active);
    assert_eq!(info.desired_min_tx, 500 * MS, "advertised at once");
    assert_eq!(
        info.tx_interval,
        300 * MS,
        "RFC 5880 §6.8.3: old interval until Final"
    );
    let out = s.process(Input::TxTimerExpired);
    let p = sent(&out);
    assert!(p[0].poll);
    assert_eq!(p[0].desired_min_tx_us, 500_000);
    let mut fin = peer_pkt(State::Up, LOCAL);
    fin.final_ = true;
    let out = s.process(Input::Received(fin));
    assert_eq!(s.info().tx_interval, 500 * MS);
    let tx = armed_tx(&out).expect("re-armed with the new interval");
    assert!(tx >= 375 * MS && tx <= 500 * MS, "{tx:?}");
}

#[test]
fn reduced_rx_interval_keeps_old_detection_time_until_final() {
    let mut s = in_state(State::Up);
    let fast = BfdProfile {
        receive_interval: 100 * MS,
        ..BfdProfile::default()
    };
    s.process(Input::SetProfile(fast));
    let mut p = peer_pkt(State::Up, LOCAL);
    p.desired_min_tx_us = 100_000;
    let out = s.process(Input::Received(p.clone()));
    // 3 x max(old 300 ms RX still in force, their 100 ms)
    assert_eq!(armed_detect(&out), Some(900 * MS));
    let out = s.process(Input::TxTimerExpired);
    assert_eq!(sent(&out)[0].required_min_rx_us, 100_000);
    p.final_ = true;
    let out = s.process(Input::Received(p));
    // Final received: the detection timer of that very packet uses the new value
    assert_eq!(armed_detect(&out), Some(300 * MS));
}

#[test]
fn second_change_during_poll_starts_another_poll() {
    let mut s = in_state(State::Up);
    s.process(Input::SetProfile(BfdProfile {
        transmit_interval: 400 * MS,
        ..BfdProfile::default()
    }));
    s.process(Input::SetProfile(BfdProfile {
        transmit_interval: 500 * MS,
        ..BfdProfile::default()
    }));
    let mut fin = peer_pkt(State::Up, LOCAL);
    fin.final_ = true;
    s.process(Input::Received(fin.clone()));
    assert!(s.info().poll_active, "pending change polls again");
    s.process(Input::Received(fin));
    assert!(!s.info().poll_active);
    assert_eq!(s.info().tx_interval, 500 * MS);
}

#[test]
fn remote_required_min_rx_sets_tx_interval_and_zero_stops_tx() {
    let mut s = in_state(State::Up);
    let mut p = peer_pkt(State::Up, LOCAL);
    p.required_min_rx_us = 800_000;
    let out = s.process(Input::Received(p.clone()));
    assert_eq!(s.info().tx_interval, 800 * MS);
    assert!(armed_tx(&out).is_some());
    p.required_min_rx_us = 0;
    let out = s.process(Input::Received(p));
    assert!(
        out.contains(&Output::StopTx),
        "RFC 5880 §6.8.7: remote asks for no packets"
    );
}

#[test]
fn remote_demand_mode_stops_periodic_tx_when_both_up() {
    let mut s = in_state(State::Up);
    let mut p = peer_pkt(State::Up, LOCAL);
    p.demand = true;
    let out = s.process(Input::Received(p));
    assert!(out.contains(&Output::StopTx));
}

// --- passive mode ---

#[test]
fn passive_session_waits_for_the_peer() {
    let profile = BfdProfile {
        passive_mode: true,
        ..BfdProfile::default()
    };
    let mut s = Session::new(profile, LOCAL, 1);
    let out = s.process(Input::Start);
    assert!(sent(&out).is_empty() && armed_tx(&out).is_none(), "{out:?}");
    assert!(sent(&s.process(Input::TxTimerExpired)).is_empty());
    // First packet from the peer: answer at once and start the periodic timer.
    let out = recv(&mut s, State::Down);
    assert_eq!(changes(&out), [(State::Down, State::Init, Diag::None)]);
    assert_eq!(sent(&out).len(), 1);
    assert!(armed_tx(&out).is_some());
    // The peer goes silent: after the detection time we forget it and stop sending.
    let out = s.process(Input::DetectTimerExpired);
    assert!(out.contains(&Output::StopTx), "{out:?}");
}

// --- session-level drops ---

#[test]
fn wrong_your_discriminator_is_dropped() {
    let mut s = in_state(State::Up);
    let out = s.process(Input::Received(peer_pkt(State::Up, 0xdead_beef)));
    assert_eq!(out, [Output::Drop(DropReason::NoSession)]);
}

#[test]
fn detect_mult_one_jitter_is_at_most_90_percent() {
    let profile = BfdProfile {
        detect_multiplier: 1,
        ..BfdProfile::default()
    };
    let mut s = Session::new(profile, LOCAL, 99);
    s.process(Input::Start);
    for _ in 0..200 {
        let out = s.process(Input::TxTimerExpired);
        let tx = armed_tx(&out).unwrap();
        assert!(tx >= 750 * MS && tx <= 900 * MS, "{tx:?}");
    }
}
