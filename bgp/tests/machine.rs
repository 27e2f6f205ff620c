//! FSM tests: inputs in, outputs compared. No sockets, no sleeps. Transitions are those of
//! RFC 4271 §8.2.2 that apply to an export-only speaker (with the backoff deviations that
//! fsm.rs documents).

use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use ferrolb_bgp::machine::*;
use ferrolb_bgp::packet::*;

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn cfg() -> FsmConfig {
    let mut c = FsmConfig::new(64512, 64513, LOCAL_ID);
    c.connect_time = Duration::from_secs(5);
    c
}

fn peer_open(asn: u32, hold: u16) -> Open {
    Open::new(
        asn,
        hold,
        PEER_ID,
        vec![
            Capability::MultiProtocol { afi: 1, safi: 1 },
            Capability::MultiProtocol { afi: 2, safi: 1 },
            Capability::RouteRefresh,
        ],
    )
}

fn changed(out: &[Output]) -> Vec<(State, State)> {
    out.iter()
        .filter_map(|o| match o {
            Output::StateChanged { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn sent(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn sent_notification(out: &[Output]) -> Option<(u8, u8)> {
    sent(out).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

fn timer(out: &[Output], t: Timer) -> Option<Duration> {
    out.iter().rev().find_map(|o| match o {
        Output::StartTimer(x, d) if *x == t => Some(*d),
        _ => None,
    })
}

/// Drives a fresh FSM to Established; returns it.
fn established() -> Fsm {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    f.process(Input::Message(Message::Open(peer_open(64513, 90))));
    let out = f.process(Input::Message(Message::Keepalive));
    assert_eq!(f.state(), State::Established, "{out:?}");
    f
}

#[test]
fn idle_manual_start_connects() {
    let mut f = Fsm::new(cfg());
    let out = f.process(Input::ManualStart);
    assert_eq!(changed(&out), vec![(State::Idle, State::Connect)]);
    assert!(out.contains(&Output::Connect));
    assert_eq!(
        timer(&out, Timer::ConnectRetry),
        Some(Duration::from_secs(5))
    );
}

#[test]
fn passive_start_goes_active_without_connecting() {
    let mut c = cfg();
    c.passive = true;
    let mut f = Fsm::new(c);
    let out = f.process(Input::ManualStart);
    assert_eq!(changed(&out), vec![(State::Idle, State::Active)]);
    assert!(!out.contains(&Output::Connect));
    // The connect-retry timer never makes a passive FSM connect.
    let out = f.process(Input::TimerExpired(Timer::ConnectRetry));
    assert!(out.is_empty());
    // An inbound connection is accepted: OPEN sent.
    let out = f.process(Input::TcpConnected);
    assert_eq!(changed(&out), vec![(State::Active, State::OpenSent)]);
    assert!(matches!(sent(&out)[..], [Message::Open(_)]));
}

#[test]
fn idle_refuses_connections_and_ignores_stop() {
    let mut f = Fsm::new(cfg());
    assert_eq!(f.process(Input::TcpConnected), vec![Output::Close]);
    f.process(Input::ManualStop(Notification::cease(
        CeaseSubcode::AdminShutdown,
        "",
    )));
    assert_eq!(f.state(), State::Idle);
    // Messages and timers in Idle do nothing.
    assert!(f.process(Input::Message(Message::Keepalive)).is_empty());
    assert!(f.process(Input::TimerExpired(Timer::Hold)).is_empty());
}

#[test]
fn connect_retry_expiry_retries_the_connection() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    let out = f.process(Input::TimerExpired(Timer::ConnectRetry));
    assert_eq!(f.state(), State::Connect);
    assert_eq!(out.iter().filter(|o| **o == Output::Connect).count(), 1);
    assert!(out.contains(&Output::Close));
}

#[test]
fn connect_failure_backs_off_exponentially_with_jitter_up_to_connect_time() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    let mut delays = Vec::new();
    for _ in 0..10 {
        let out = f.process(Input::TcpFailed);
        assert_eq!(f.state(), State::Active);
        delays.push(timer(&out, Timer::ConnectRetry).expect("backoff timer"));
        // Active, event 9: back to Connect and connect again.
        let out = f.process(Input::TimerExpired(Timer::ConnectRetry));
        assert_eq!(f.state(), State::Connect);
        assert!(out.contains(&Output::Connect));
    }
    // Capped at the ConnectRetry time (5 s here), not minutes: a returning router is
    // reached within one connect_time.
    let bases = [1u64, 2, 4, 5, 5, 5, 5, 5, 5, 5];
    for (d, base) in delays.iter().zip(bases) {
        let base = Duration::from_secs(base);
        assert!(
            *d <= base && *d >= base.mul_f64(0.75),
            "{d:?} vs base {base:?}"
        );
    }
    // Jitter: not all delays are exactly 3/4 or exactly the base.
    assert!(
        delays
            .iter()
            .zip(bases)
            .any(|(d, b)| *d != Duration::from_secs(b))
    );
}

#[test]
fn established_resets_backoff() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    for _ in 0..4 {
        f.process(Input::TcpFailed);
        f.process(Input::TimerExpired(Timer::ConnectRetry));
    }
    f.process(Input::TcpConnected);
    f.process(Input::Message(Message::Open(peer_open(64513, 90))));
    f.process(Input::Message(Message::Keepalive));
    assert_eq!(f.state(), State::Established);
    let out = f.process(Input::TcpFailed);
    let d = timer(&out, Timer::IdleHold).unwrap();
    assert!(d <= Duration::from_secs(1), "{d:?}");
}

#[test]
fn full_handshake_negotiates_hold_keepalive_and_families() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    let out = f.process(Input::TcpConnected);
    assert_eq!(changed(&out), vec![(State::Connect, State::OpenSent)]);
    assert_eq!(timer(&out, Timer::Hold), Some(OPEN_SENT_HOLD));
    let Message::Open(ours) = &sent(&out)[0] else {
        panic!()
    };
    assert_eq!(ours.asn(), 64512);
    assert_eq!(ours.hold_time, 90);
    // Peer proposes hold 30: we use 30 and keepalive 10.
    let out = f.process(Input::Message(Message::Open(peer_open(64513, 30))));
    assert_eq!(changed(&out), vec![(State::OpenSent, State::OpenConfirm)]);
    assert_eq!(sent(&out), vec![Message::Keepalive]);
    assert_eq!(timer(&out, Timer::Hold), Some(Duration::from_secs(30)));
    assert_eq!(timer(&out, Timer::Keepalive), Some(Duration::from_secs(10)));
    let out = f.process(Input::Message(Message::Keepalive));
    assert_eq!(
        changed(&out),
        vec![(State::OpenConfirm, State::Established)]
    );
    let neg = out
        .iter()
        .find_map(|o| match o {
            Output::Established(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(neg.hold_time, 30);
    assert_eq!(neg.keepalive, 10);
    assert!(neg.cxt.four_byte_asn);
    assert!(neg.peer_route_refresh);
    assert_eq!(neg.families, vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
}

#[test]
fn hold_time_zero_runs_no_timers() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let out = f.process(Input::Message(Message::Open(peer_open(64513, 0))));
    assert_eq!(timer(&out, Timer::Keepalive), None);
    assert!(out.contains(&Output::StopTimer(Timer::Hold)));
    let out = f.process(Input::Message(Message::Keepalive));
    assert_eq!(timer(&out, Timer::Hold), None);
    assert_eq!(f.negotiated().unwrap().hold_time, 0);
}

#[test]
fn peer_without_mp_capability_gets_ipv4_only() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let o = Open {
        version: 4,
        my_as: 64513,
        hold_time: 90,
        bgp_id: PEER_ID,
        params: vec![],
    };
    f.process(Input::Message(Message::Open(o)));
    let n = f.negotiated().unwrap();
    assert_eq!(n.families, vec![Family::Ipv4Unicast]);
    assert!(!n.cxt.four_byte_asn);
}

#[test]
fn bad_peer_asn_sends_open_error_2_2() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let out = f.process(Input::Message(Message::Open(peer_open(65000, 90))));
    assert_eq!(sent_notification(&out), Some((2, 2)));
    assert_eq!(changed(&out), vec![(State::OpenSent, State::Idle)]);
    assert!(out.contains(&Output::Close));
    assert!(
        timer(&out, Timer::IdleHold).is_some(),
        "automatic restart scheduled"
    );
}

#[test]
fn decode_errors_in_opensent_send_their_notification() {
    // Unsupported version (2/1) and bad hold time (2/6) come from the decoder.
    for (code, sub) in [(2, 1), (2, 6), (2, 3), (1, 2)] {
        let mut f = Fsm::new(cfg());
        f.process(Input::ManualStart);
        f.process(Input::TcpConnected);
        let e = DecodeError::new(code, sub, Bytes::new(), "test");
        let out = f.process(Input::DecodeError(e));
        assert_eq!(sent_notification(&out), Some((code, sub)));
        assert_eq!(f.state(), State::Idle);
    }
}

#[test]
fn same_router_id_in_ibgp_is_rejected() {
    let mut c = cfg();
    c.peer_asn = 64512;
    let mut f = Fsm::new(c);
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let mut o = peer_open(64512, 90);
    o.bgp_id = LOCAL_ID;
    let out = f.process(Input::Message(Message::Open(o)));
    assert_eq!(sent_notification(&out), Some((2, 3)));
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    // KEEPALIVE in OpenSent -> 5/1.
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let out = f.process(Input::Message(Message::Keepalive));
    assert_eq!(sent_notification(&out), Some((5, 1)));
    // UPDATE in OpenConfirm -> 5/2.
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    f.process(Input::Message(Message::Open(peer_open(64513, 90))));
    let out = f.process(Input::Message(Message::Update(Update::default())));
    assert_eq!(sent_notification(&out), Some((5, 2)));
    // OPEN in Established -> 5/3.
    let mut f = established();
    let out = f.process(Input::Message(Message::Open(peer_open(64513, 90))));
    assert_eq!(sent_notification(&out), Some((5, 3)));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Down(DownReason::SentNotification(_))))
    );
}

#[test]
fn hold_timer_expiry_drops_silent_peer_in_each_state() {
    // OpenSent
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let out = f.process(Input::TimerExpired(Timer::Hold));
    assert_eq!(sent_notification(&out), Some((4, 0)));
    assert_eq!(f.state(), State::Idle);
    // OpenConfirm
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    f.process(Input::Message(Message::Open(peer_open(64513, 90))));
    let out = f.process(Input::TimerExpired(Timer::Hold));
    assert_eq!(sent_notification(&out), Some((4, 0)));
    // Established
    let mut f = established();
    let out = f.process(Input::TimerExpired(Timer::Hold));
    assert_eq!(sent_notification(&out), Some((4, 0)));
    assert_eq!(changed(&out), vec![(State::Established, State::Idle)]);
}

#[test]
fn keepalive_and_update_restart_hold_and_keepalive_timer_fires() {
    let mut f = established();
    let out = f.process(Input::Message(Message::Keepalive));
    assert_eq!(timer(&out, Timer::Hold), Some(Duration::from_secs(90)));
    let out = f.process(Input::Message(Message::Update(Update::default())));
    assert_eq!(timer(&out, Timer::Hold), Some(Duration::from_secs(90)));
    let out = f.process(Input::TimerExpired(Timer::Keepalive));
    assert_eq!(sent(&out), vec![Message::Keepalive]);
    assert_eq!(timer(&out, Timer::Keepalive), Some(Duration::from_secs(30)));
}

#[test]
fn route_refresh_is_reported_for_negotiated_families_only() {
    let mut f = established();
    let r = RouteRefresh {
        afi: 2,
        subtype: 0,
        safi: 1,
    };
    let out = f.process(Input::Message(Message::RouteRefresh(r)));
    assert_eq!(out, vec![Output::RouteRefresh(r)]);
    let bad = RouteRefresh {
        afi: 25,
        subtype: 0,
        safi: 70,
    };
    assert!(
        f.process(Input::Message(Message::RouteRefresh(bad)))
            .is_empty()
    );
}

#[test]
fn notification_from_peer_goes_idle_and_reports_it() {
    for stage in 0..3 {
        let mut f = Fsm::new(cfg());
        f.process(Input::ManualStart);
        f.process(Input::TcpConnected);
        if stage >= 1 {
            f.process(Input::Message(Message::Open(peer_open(64513, 90))));
        }
        if stage >= 2 {
            f.process(Input::Message(Message::Keepalive));
        }
        let n = Notification::cease(CeaseSubcode::AdminShutdown, "bye");
        let out = f.process(Input::Message(Message::Notification(n.clone())));
        assert!(out.contains(&Output::Down(DownReason::PeerNotification(n))));
        assert!(sent(&out).is_empty(), "never answer a NOTIFICATION");
        assert_eq!(f.state(), State::Idle);
    }
}

#[test]
fn manual_stop_sends_cease_and_does_not_restart() {
    let mut f = established();
    let n = Notification::cease(CeaseSubcode::PeerDeconfigured, "");
    let out = f.process(Input::ManualStop(n.clone()));
    assert_eq!(sent(&out), vec![Message::Notification(n)]);
    assert_eq!(f.state(), State::Idle);
    assert_eq!(timer(&out, Timer::IdleHold), None);
    // Stop in Connect: just close.
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    let out = f.process(Input::ManualStop(Notification::cease(
        CeaseSubcode::AdminShutdown,
        "",
    )));
    assert!(sent(&out).is_empty());
    assert!(out.contains(&Output::Close));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn tcp_failure_in_each_state() {
    // OpenSent -> Active (RFC 4271) with a backoff before reconnecting.
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let out = f.process(Input::TcpFailed);
    assert_eq!(changed(&out), vec![(State::OpenSent, State::Active)]);
    assert!(timer(&out, Timer::ConnectRetry).is_some());
    // Established -> Idle, then the automatic restart reconnects.
    let mut f = established();
    let out = f.process(Input::TcpFailed);
    assert!(out.contains(&Output::Down(DownReason::ConnectionLost)));
    assert_eq!(f.state(), State::Idle);
    let out = f.process(Input::TimerExpired(Timer::IdleHold));
    assert_eq!(f.state(), State::Connect);
    assert!(out.contains(&Output::Connect));
}

#[test]
fn graceful_restart_capability_sets_forwarding_bit() {
    let mut c = cfg();
    c.graceful_restart = Some(GracefulRestart { restart_time: 120 });
    let open = c.open();
    let gr = open
        .capabilities()
        .find(|c| matches!(c, Capability::GracefulRestart { .. }))
        .unwrap();
    let Capability::GracefulRestart {
        restart_time,
        families,
        ..
    } = gr
    else {
        panic!()
    };
    assert_eq!(*restart_time, 120);
    assert_eq!(families.len(), 2);
    assert!(families.iter().all(|f| f.flags & 0x80 != 0));
}

#[test]
fn collision_resolution_keeps_higher_id_connection() {
    let low = Ipv4Addr::new(192, 0, 2, 1);
    let high = Ipv4Addr::new(192, 0, 2, 200);
    assert_eq!(
        resolve_collision(high, low),
        CollisionWinner::LocallyInitiated
    );
    assert_eq!(
        resolve_collision(low, high),
        CollisionWinner::RemotelyInitiated
    );
    let n = collision_cease();
    assert_eq!((n.code, n.subcode), (6, 7));
}

#[test]
fn four_byte_local_asn_uses_as_trans_in_open() {
    let c = FsmConfig::new(4_200_000_001, 64513, LOCAL_ID);
    let o = c.open();
    assert_eq!(o.my_as, 23456);
    assert_eq!(o.asn(), 4_200_000_001);
}

#[test]
fn extended_messages_negotiated_only_when_both_offer() {
    let mut c = cfg();
    c.extended_messages = true;
    let mut f = Fsm::new(c.clone());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let mut o = peer_open(64513, 90);
    o.params[0].push(Capability::ExtendedMessage);
    f.process(Input::Message(Message::Open(o)));
    assert_eq!(f.negotiated().unwrap().cxt.max_len, EXT_MAX_LEN);
    let mut f = Fsm::new(c);
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    f.process(Input::Message(Message::Open(peer_open(64513, 90))));
    assert_eq!(f.negotiated().unwrap().cxt.max_len, MAX_LEN);
}
