//! FSM tests for configuration changes (Cease / Other Configuration Change, idle hold-off
//! with DampPeerOscillations), the connect-retry cap, failed attempts reported as `Down`,
//! and the configured keepalive. Inputs in, outputs compared: no sockets, no sleeps.

use std::net::Ipv4Addr;
use std::time::Duration;

use ferrolb_bgp::machine::*;
use ferrolb_bgp::packet::*;

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn cfg() -> FsmConfig {
    FsmConfig::new(64512, 64513, LOCAL_ID)
}

fn peer_open(hold: u16) -> Open {
    Open::new(
        64513,
        hold,
        PEER_ID,
        vec![Capability::MultiProtocol { afi: 1, safi: 1 }],
    )
}

fn timer(out: &[Output], t: Timer) -> Option<Duration> {
    out.iter().rev().find_map(|o| match o {
        Output::StartTimer(x, d) if *x == t => Some(*d),
        _ => None,
    })
}

fn sent_open(out: &[Output]) -> Option<Open> {
    out.iter().find_map(|o| match o {
        Output::Send(Message::Open(op)) => Some(op.clone()),
        _ => None,
    })
}

fn sent_notification(out: &[Output]) -> Option<Notification> {
    out.iter().find_map(|o| match o {
        Output::Send(Message::Notification(n)) => Some(n.clone()),
        _ => None,
    })
}

/// From Idle (fresh or after the hold-off) to Established; returns the outputs of the
/// last step.
fn establish(f: &mut Fsm, hold: u16) -> Vec<Output> {
    f.process(Input::TcpConnected);
    f.process(Input::Message(Message::Open(peer_open(hold))));
    let out = f.process(Input::Message(Message::Keepalive));
    assert_eq!(f.state(), State::Established, "{out:?}");
    out
}

fn established(c: FsmConfig) -> Fsm {
    let mut f = Fsm::new(c);
    f.process(Input::ManualStart);
    establish(&mut f, 90);
    f
}

fn within(d: Duration, base: Duration) -> bool {
    d <= base && d >= base.mul_f64(0.75)
}

#[test]
fn config_change_ends_the_session_with_cease_6_and_an_idle_hold_off() {
    let mut f = established(cfg());
    let mut new = cfg();
    new.hold_time = 30;
    let out = f.process(Input::ConfigChanged(Box::new(new)));
    let n = sent_notification(&out).expect("a NOTIFICATION");
    assert_eq!(
        (n.code, n.subcode),
        (6, 6),
        "Cease / Other Configuration Change"
    );
    assert!(out.contains(&Output::Close));
    assert!(matches!(
        out.iter().find(|o| matches!(o, Output::Down(_))),
        Some(Output::Down(DownReason::SentNotification(_)))
    ));
    assert_eq!(f.state(), State::Idle);
    // No reconnect at once: the idle hold-off (§8.1.1) comes first.
    assert!(!out.contains(&Output::Connect), "{out:?}");
    let hold_off = timer(&out, Timer::IdleHold).expect("IdleHold timer");
    assert!(within(hold_off, IDLE_HOLD_MIN), "{hold_off:?}");
    // After it, the new settings are in the OPEN.
    let out = f.process(Input::TimerExpired(Timer::IdleHold));
    assert!(out.contains(&Output::Connect));
    let out = f.process(Input::TcpConnected);
    assert_eq!(sent_open(&out).expect("OPEN").hold_time, 30);
}

#[test]
fn repeated_changes_double_the_hold_off_up_to_the_cap_and_a_stable_session_forgets_it() {
    let mut f = established(cfg());
    let mut delays = Vec::new();
    for i in 0..8u16 {
        let mut c = cfg();
        c.hold_time = 30 + i;
        let out = f.process(Input::ConfigChanged(Box::new(c)));
        delays.push(timer(&out, Timer::IdleHold).expect("IdleHold"));
        f.process(Input::TimerExpired(Timer::IdleHold));
        // Up again, but not for long: no Stable expiry.
        establish(&mut f, 90);
    }
    let bases = [1u64, 2, 4, 8, 16, 30, 30, 30];
    for (d, b) in delays.iter().zip(bases) {
        assert!(within(*d, Duration::from_secs(b)), "{delays:?}");
    }
    // Established starts the Stable timer; once it fires, the next loss waits the minimum.
    let mut c = cfg();
    c.hold_time = 60;
    f.process(Input::ConfigChanged(Box::new(c)));
    f.process(Input::TimerExpired(Timer::IdleHold));
    let out = establish(&mut f, 90);
    assert_eq!(timer(&out, Timer::Stable), Some(STABLE_AFTER));
    f.process(Input::TimerExpired(Timer::Stable));
    assert_eq!(f.damping_steps(), 0);
    let out = f.process(Input::TcpFailed);
    let d = timer(&out, Timer::IdleHold).unwrap();
    assert!(within(d, IDLE_HOLD_MIN), "{d:?}");
}

#[test]
fn config_change_while_connecting_restarts_at_once_without_a_notification() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    assert_eq!(f.state(), State::Connect);
    let mut c = cfg();
    c.peer_asn = 64999;
    let out = f.process(Input::ConfigChanged(Box::new(c)));
    assert!(sent_notification(&out).is_none());
    assert!(out.contains(&Output::Close));
    assert!(out.contains(&Output::Connect), "{out:?}");
    assert_eq!(f.state(), State::Connect);
    assert_eq!(f.config().peer_asn, 64999);
    // Active (waiting after a failure) restarts at once too.
    f.process(Input::ConnectFailed(ConnectError::Refused));
    assert_eq!(f.state(), State::Active);
    let out = f.process(Input::ConfigChanged(Box::new(cfg())));
    assert!(out.contains(&Output::Connect));
}

#[test]
fn config_change_in_idle_waits_for_the_running_hold_off() {
    let mut f = established(cfg());
    f.process(Input::TcpFailed);
    assert_eq!(f.state(), State::Idle);
    let mut c = cfg();
    c.hold_time = 9;
    c.keepalive = 3;
    let out = f.process(Input::ConfigChanged(Box::new(c)));
    assert!(out.is_empty(), "{out:?}");
    f.process(Input::TimerExpired(Timer::IdleHold));
    let out = f.process(Input::TcpConnected);
    assert_eq!(sent_open(&out).unwrap().hold_time, 9);
}

#[test]
fn default_connect_retry_is_short_so_a_returning_router_is_reached_within_seconds() {
    let mut f = Fsm::new(cfg());
    assert_eq!(cfg().connect_time, DEFAULT_CONNECT_TIME);
    assert!(DEFAULT_CONNECT_TIME <= Duration::from_secs(3));
    f.process(Input::ManualStart);
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let out = f.process(Input::ConnectFailed(ConnectError::Refused));
        worst = worst.max(timer(&out, Timer::ConnectRetry).unwrap());
        f.process(Input::TimerExpired(Timer::ConnectRetry));
    }
    assert!(worst <= DEFAULT_CONNECT_TIME, "{worst:?}");
    // A connect_time change moves the cap.
    let mut c = cfg();
    c.connect_time = Duration::from_secs(1);
    f.process(Input::ConfigChanged(Box::new(c)));
    let out = f.process(Input::ConnectFailed(ConnectError::Refused));
    assert!(timer(&out, Timer::ConnectRetry).unwrap() <= Duration::from_secs(1));
}

#[test]
fn failed_attempts_are_reported_with_their_cause() {
    let mut f = Fsm::new(cfg());
    f.process(Input::ManualStart);
    // No answer within the ConnectRetry time: reported, and a new attempt starts at once.
    let out = f.process(Input::TimerExpired(Timer::ConnectRetry));
    assert!(out.contains(&Output::Down(DownReason::ConnectFailed(
        ConnectError::NoAnswer
    ))));
    assert!(out.contains(&Output::Connect));
    assert_eq!(timer(&out, Timer::ConnectRetry), Some(DEFAULT_CONNECT_TIME));
    // Refused: reported, then the backoff.
    let out = f.process(Input::ConnectFailed(ConnectError::Refused));
    assert!(out.contains(&Output::Down(DownReason::ConnectFailed(
        ConnectError::Refused
    ))));
    assert_eq!(f.state(), State::Active);
    // A stale failure after the FSM moved on changes nothing.
    assert!(
        f.process(Input::ConnectFailed(ConnectError::Refused))
            .is_empty()
    );
}

#[test]
fn configured_keepalive_is_used_when_the_peer_accepts_our_hold_time() {
    let mut c = cfg();
    c.hold_time = 9;
    c.keepalive = 5;
    let mut f = Fsm::new(c.clone());
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let out = f.process(Input::Message(Message::Open(peer_open(90))));
    assert_eq!(timer(&out, Timer::Keepalive), Some(Duration::from_secs(5)));
    assert_eq!(f.negotiated().unwrap().keepalive, 5);
    // The peer asks for less: at most a third of it.
    let mut f = Fsm::new(c);
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    let out = f.process(Input::Message(Message::Open(peer_open(6))));
    assert_eq!(timer(&out, Timer::Keepalive), Some(Duration::from_secs(2)));
}
