//! `dynamicASN` in the FSM (the peer's AS learned from its OPEN, within the rule; Bad Peer AS
//! otherwise, with what was seen), and the configured `connectTime` and `keepaliveTime` on
//! the FSM's timers. Inputs in, outputs compared: no sockets, no sleeps.

use std::net::Ipv4Addr;
use std::time::Duration;

use ferrolb_bgp::diag::{ErrorKind, describe};
use ferrolb_bgp::machine::*;
use ferrolb_bgp::packet::*;

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn dynamic(mode: DynamicAsn) -> FsmConfig {
    let mut c = FsmConfig::new(64512, 0, LOCAL_ID);
    c.dynamic_asn = Some(mode);
    c
}

/// An OPEN from AS `asn`, with the 4-octet capability (AS_TRANS in `my_as` above 65535).
fn open_from(asn: u32) -> Open {
    Open::new(
        asn,
        90,
        PEER_ID,
        vec![
            Capability::MultiProtocol { afi: 1, safi: 1 },
            Capability::FourOctetAsn(asn),
        ],
    )
}

fn to_open_sent(c: FsmConfig) -> Fsm {
    let mut f = Fsm::new(c);
    f.process(Input::ManualStart);
    f.process(Input::TcpConnected);
    assert_eq!(f.state(), State::OpenSent);
    f
}

fn down(out: &[Output]) -> Option<DownReason> {
    out.iter().find_map(|o| match o {
        Output::Down(r) => Some(r.clone()),
        _ => None,
    })
}

fn sent_notification(out: &[Output]) -> Option<Notification> {
    out.iter().find_map(|o| match o {
        Output::Send(Message::Notification(n)) => Some(n.clone()),
        _ => None,
    })
}

fn timer(out: &[Output], t: Timer) -> Option<Duration> {
    out.iter().rev().find_map(|o| match o {
        Output::StartTimer(x, d) if *x == t => Some(*d),
        _ => None,
    })
}

/// OPEN in, KEEPALIVE in: the AS the session learned.
fn established_asn(c: FsmConfig, open: Open) -> Result<u32, Vec<Output>> {
    let mut f = to_open_sent(c);
    let out = f.process(Input::Message(Message::Open(open)));
    if f.state() != State::OpenConfirm {
        return Err(out);
    }
    let out = f.process(Input::Message(Message::Keepalive));
    out.iter()
        .find_map(|o| match o {
            Output::Established(n) => Some(n.peer_asn),
            _ => None,
        })
        .ok_or(out)
}

#[test]
fn the_rule_is_pure() {
    let ext = PeerAsRule::Dynamic {
        mode: DynamicAsn::External,
        local: 64512,
    };
    let int = PeerAsRule::Dynamic {
        mode: DynamicAsn::Internal,
        local: 64512,
    };
    assert!(ext.accepts(64513) && ext.accepts(4_200_000_000) && !ext.accepts(64512));
    assert!(int.accepts(64512) && !int.accepts(64513));
    assert!(PeerAsRule::Fixed(64513).accepts(64513) && !PeerAsRule::Fixed(64513).accepts(64514));
    assert!(ext.is_ebgp(64512) && !int.is_ebgp(64512));
    assert!(PeerAsRule::Fixed(1).is_ebgp(2) && !PeerAsRule::Fixed(2).is_ebgp(2));
}

#[test]
fn external_learns_any_other_as_including_four_octet_ones() {
    let c = dynamic(DynamicAsn::External);
    assert_eq!(established_asn(c.clone(), open_from(64513)), Ok(64513));
    // RFC 6793: AS_TRANS in the header, the real AS in the capability.
    let four = open_from(4_200_000_001);
    assert_eq!(four.my_as, 23456); // AS_TRANS
    assert_eq!(established_asn(c.clone(), four), Ok(4_200_000_001));
    // A 2-octet speaker without the capability: its header AS.
    let old = Open::new(65001, 90, PEER_ID, vec![]);
    assert_eq!(established_asn(c, old), Ok(65001));
}

#[test]
fn external_rejects_our_own_as_with_bad_peer_as_naming_what_it_saw() {
    let mut f = to_open_sent(dynamic(DynamicAsn::External));
    let out = f.process(Input::Message(Message::Open(open_from(64512))));
    assert_eq!(f.state(), State::Idle);
    let n = sent_notification(&out).expect("NOTIFICATION sent");
    assert_eq!((n.code, n.subcode), (2, 2));
    assert_eq!(&n.data[..], &64512u16.to_be_bytes());
    assert!(out.contains(&Output::Close));
    let reason = down(&out).expect("Down reported");
    assert!(matches!(
        reason,
        DownReason::BadPeerAs {
            seen: 64512,
            peer_id: PEER_ID,
            ..
        }
    ));
    let e = describe(&reason, false).unwrap();
    assert_eq!(e.kind, ErrorKind::BadPeerOpen);
    for want in [
        "Bad Peer AS",
        "192.0.2.1",
        "AS 64512",
        "dynamicASN external",
    ] {
        assert!(e.message.contains(want), "{want:?} not in {:?}", e.message);
    }
    // It restarts by itself after the hold-off (the peer may be reconfigured).
    assert!(timer(&out, Timer::IdleHold).is_some());
}

#[test]
fn internal_accepts_only_our_as_and_a_four_octet_one_is_reported_whole() {
    let c = dynamic(DynamicAsn::Internal);
    assert_eq!(established_asn(c.clone(), open_from(64512)), Ok(64512));
    let out = established_asn(c, open_from(4_200_000_001)).unwrap_err();
    let n = sent_notification(&out).unwrap();
    assert_eq!((n.code, n.subcode), (2, 2));
    assert_eq!(&n.data[..], &4_200_000_001u32.to_be_bytes());
    let e = describe(&down(&out).unwrap(), false).unwrap();
    assert!(e.message.contains("AS 4200000001"), "{}", e.message);
    assert!(e.message.contains("dynamicASN internal"), "{}", e.message);
}

#[test]
fn fixed_peer_as_is_still_checked_and_a_four_octet_mismatch_named() {
    let mut f = to_open_sent(FsmConfig::new(64512, 64513, LOCAL_ID));
    let out = f.process(Input::Message(Message::Open(open_from(4_200_000_001))));
    let e = describe(&down(&out).unwrap(), false).unwrap();
    assert!(e.message.contains("AS 4200000001"), "{}", e.message);
    assert!(e.message.contains("peerASN 64513"), "{}", e.message);
}

#[test]
fn connect_time_times_out_each_attempt() {
    let mut c = FsmConfig::new(64512, 64513, LOCAL_ID);
    c.connect_time = Duration::from_secs(7);
    let mut f = Fsm::new(c);
    let out = f.process(Input::ManualStart);
    assert_eq!(
        timer(&out, Timer::ConnectRetry),
        Some(Duration::from_secs(7))
    );
    // No answer within it: a new attempt with the same timeout.
    let out = f.process(Input::TimerExpired(Timer::ConnectRetry));
    assert!(out.contains(&Output::Connect));
    assert_eq!(
        timer(&out, Timer::ConnectRetry),
        Some(Duration::from_secs(7))
    );
    // Failures back off up to it, never beyond.
    for _ in 0..20 {
        let out = f.process(Input::ConnectFailed(ConnectError::Refused));
        assert!(timer(&out, Timer::ConnectRetry).unwrap() <= Duration::from_secs(7));
        let out = f.process(Input::TimerExpired(Timer::ConnectRetry));
        assert_eq!(
            timer(&out, Timer::ConnectRetry),
            Some(Duration::from_secs(7))
        );
    }
}

#[test]
fn keepalive_time_paces_keepalives_for_the_whole_session() {
    let mut c = FsmConfig::new(64512, 64513, LOCAL_ID);
    c.hold_time = 90;
    c.keepalive = 10;
    let mut f = to_open_sent(c);
    let mut open = open_from(64513);
    open.hold_time = 90;
    let out = f.process(Input::Message(Message::Open(open)));
    assert_eq!(timer(&out, Timer::Keepalive), Some(Duration::from_secs(10)));
    f.process(Input::Message(Message::Keepalive));
    assert_eq!(f.state(), State::Established);
    for _ in 0..3 {
        let out = f.process(Input::TimerExpired(Timer::Keepalive));
        assert!(out.contains(&Output::Send(Message::Keepalive)));
        assert_eq!(timer(&out, Timer::Keepalive), Some(Duration::from_secs(10)));
    }
}
