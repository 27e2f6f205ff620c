//! Authentication (RFC 5880 §6.7.4) through the machine and the session: two machines that
//! exchange their packets, and hand-signed peer packets; no sockets, no sleeps.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::auth::{self, AuthKey, AuthMethod, BfdAuth};

const MS: Duration = Duration::from_millis(1);
const REMOTE: u32 = 0x2222_2222;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn auth(method: AuthMethod, key_id: u8, key: &[u8]) -> Option<BfdAuth> {
    Some(BfdAuth {
        method,
        key_id,
        key: AuthKey::new(key).unwrap(),
    })
}

fn profile(a: Option<BfdAuth>) -> BfdProfile {
    BfdProfile {
        auth: a,
        ..BfdProfile::with_timers(100 * MS, 100 * MS, 3)
    }
}

/// Machine `n` (1 or 2) at 192.0.2.n with a session to the other one.
fn node(n: u8, a: Option<BfdAuth>, now: Instant) -> (Machine, Vec<Output>) {
    let mut m = Machine::new(
        Families {
            ipv4: true,
            ipv6: false,
        },
        StdRng::seed_from_u64(u64::from(n)),
    );
    let (me, peer) = (format!("192.0.2.{n}"), format!("192.0.2.{}", 3 - n));
    let out = m.add(ip(&peer), ip(&me), profile(a), now).unwrap();
    (m, out)
}

fn sends(out: &[Output]) -> Vec<ControlPacket> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { packet, .. } => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

fn deliver(m: &mut Machine, from: &str, p: &ControlPacket, now: Instant) -> Vec<Output> {
    let data = p.to_bytes();
    let input = Input::Datagram {
        data: &data,
        src: ip(from),
        dst: None,
        ttl: Some(255),
        multihop: false,
    };
    m.handle(input, now)
}

/// Runs both machines for `ms` milliseconds in 10 ms steps, delivering every packet; returns
/// every packet each one sent and every output each one made.
fn run(
    m1: &mut Machine,
    m2: &mut Machine,
    first: [Vec<Output>; 2],
    t0: Instant,
    ms: u32,
) -> [(Vec<ControlPacket>, Vec<Output>); 2] {
    let [mut o1, mut o2] = first;
    let mut log: [(Vec<ControlPacket>, Vec<Output>); 2] = Default::default();
    for step in 0..=ms / 10 {
        let now = t0 + step * 10 * MS;
        for _ in 0..4 {
            let (s1, s2) = (sends(&o1), sends(&o2));
            log[0].0.extend(s1.clone());
            log[1].0.extend(s2.clone());
            log[0].1.append(&mut o1);
            log[1].1.append(&mut o2);
            for p in &s1 {
                o2.extend(deliver(m2, "192.0.2.1", p, now));
            }
            for p in &s2 {
                o1.extend(deliver(m1, "192.0.2.2", p, now));
            }
        }
        o1.extend(m1.handle(Input::Timer, now));
        o2.extend(m2.handle(Input::Timer, now));
    }
    log
}

fn state(m: &Machine, peer: &str) -> State {
    m.peer(ip(peer)).unwrap().info.state
}

#[test]
fn authenticated_sessions_come_up_with_growing_sequence_numbers() {
    for method in [AuthMethod::MeticulousKeyedSha1, AuthMethod::KeyedSha1] {
        let t0 = Instant::now();
        let (mut m1, a) = node(1, auth(method, 9, b"s3cret"), t0);
        let (mut m2, b) = node(2, auth(method, 9, b"s3cret"), t0);
        let [(sent1, out1), _] = run(&mut m1, &mut m2, [a, b], t0, 3000);
        assert_eq!(state(&m1, "192.0.2.2"), State::Up, "{method}");
        assert_eq!(state(&m2, "192.0.2.1"), State::Up, "{method}");
        assert!(!out1.iter().any(|o| matches!(o, Output::Drop { .. })));
        let seqs: Vec<u32> = sent1
            .iter()
            .map(|p| {
                let a = p.auth.as_ref().expect("every packet authenticated");
                assert_eq!((a.auth_type, a.key_id), (method.auth_type(), 9));
                u32::from_be_bytes(a.data[1..5].try_into().unwrap())
            })
            .collect();
        assert!(seqs.len() > 10, "{seqs:?}");
        for w in seqs.windows(2) {
            let step = w[1].wrapping_sub(w[0]);
            if method.meticulous() {
                assert_eq!(step, 1, "{seqs:?}");
            } else {
                assert!(step <= 1, "{seqs:?}");
            }
        }
        if !method.meticulous() {
            // Periodic packets of an Up session repeat: the sequence stays put.
            assert!(seqs.windows(2).any(|w| w[0] == w[1]), "{seqs:?}");
        }
    }
}

fn auth_drops(m: &Machine, peer: &str) -> BTreeMap<DropReason, u64> {
    m.peer(ip(peer)).unwrap().drops
}

fn failures(out: &[Output]) -> Vec<AuthFailure> {
    out.iter()
        .filter_map(|o| match o {
            Output::AuthFailed { failure, .. } => Some(failure.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn wrong_key_keeps_both_down_counts_every_drop_and_reports_once() {
    let t0 = Instant::now();
    let meticulous = AuthMethod::MeticulousKeyedSha1;
    let (mut m1, a) = node(1, auth(meticulous, 1, b"right"), t0);
    let (mut m2, b) = node(2, auth(meticulous, 1, b"wrong"), t0);
    let [(_, out1), (sent2, _)] = run(&mut m1, &mut m2, [a, b], t0, 3000);
    assert_eq!(state(&m1, "192.0.2.2"), State::Down);
    assert_eq!(state(&m2, "192.0.2.1"), State::Down);
    let drops = auth_drops(&m1, "192.0.2.2");
    assert_eq!(
        drops.get(&DropReason::AuthBadHash),
        Some(&(sent2.len() as u64))
    );
    assert_eq!(
        failures(&out1),
        [AuthFailure::BadHash { key_id: 1 }],
        "once"
    );
    let view = m1.peer(ip("192.0.2.2")).unwrap();
    assert_eq!(
        view.last_auth_failure,
        Some(AuthFailure::BadHash { key_id: 1 })
    );
}

#[test]
fn auth_on_one_side_only_is_dropped_on_both_with_its_reason() {
    let t0 = Instant::now();
    let (mut m1, a) = node(1, auth(AuthMethod::KeyedSha1, 1, b"k"), t0);
    let (mut m2, b) = node(2, None, t0);
    let [(_, out1), (_, out2)] = run(&mut m1, &mut m2, [a, b], t0, 3000);
    assert_eq!(state(&m1, "192.0.2.2"), State::Down);
    assert_eq!(state(&m2, "192.0.2.1"), State::Down);
    assert!(auth_drops(&m1, "192.0.2.2")[&DropReason::AuthMissing] > 0);
    assert!(auth_drops(&m2, "192.0.2.1")[&DropReason::AuthNotInUse] > 0);
    assert_eq!(
        failures(&out1),
        [AuthFailure::Missing {
            expected: AuthMethod::KeyedSha1
        }]
    );
    assert_eq!(
        failures(&out2)[0].to_string(),
        "packet carries keyed SHA1 authentication but none is configured"
    );
}

#[test]
fn wrong_key_id_is_named() {
    let t0 = Instant::now();
    let (mut m1, a) = node(1, auth(AuthMethod::KeyedSha1, 1, b"k"), t0);
    let (mut m2, b) = node(2, auth(AuthMethod::KeyedSha1, 3, b"k"), t0);
    let [(_, out1), _] = run(&mut m1, &mut m2, [a, b], t0, 1500);
    assert_eq!(
        failures(&out1)[0].to_string(),
        "wrong key id 3 (expected 1)"
    );
    assert!(auth_drops(&m1, "192.0.2.2")[&DropReason::AuthKeyIdMismatch] > 0);
}

/// The peer's packet to machine 1 (after `node(1, ..)`), signed with `seq`.
fn peer_pkt(m: &Machine, state: State, a: &BfdAuth, seq: u32) -> ControlPacket {
    let your = match state {
        State::Down => 0,
        _ => m.peer(ip("192.0.2.2")).unwrap().info.local_discr,
    };
    let mut p = ControlPacket::for_test(state, REMOTE, your, 100_000, 0);
    auth::sign(&mut p, a, seq);
    p
}

#[test]
fn replay_is_dropped_and_sequence_is_forgotten_after_two_silent_detection_times() {
    let t0 = Instant::now();
    let a = auth(AuthMethod::MeticulousKeyedSha1, 1, b"k");
    let key = a.clone().unwrap();
    let (mut m1, _) = node(1, a, t0);
    let down = peer_pkt(&m1, State::Down, &key, 1000);
    deliver(&mut m1, "192.0.2.2", &down, t0);
    let up = peer_pkt(&m1, State::Up, &key, 1001);
    deliver(&mut m1, "192.0.2.2", &up, t0 + 10 * MS);
    assert_eq!(state(&m1, "192.0.2.2"), State::Up);
    // The same packet again: a replay.
    let out = deliver(&mut m1, "192.0.2.2", &up, t0 + 20 * MS);
    assert_eq!(
        failures(&out),
        [AuthFailure::Replayed {
            seq: 1001,
            last: 1001
        }]
    );
    // The peer restarts with a new random sequence number: out of window while we still
    // know the old one, even after one detection time (300 ms) of silence ...
    let restarted = peer_pkt(&m1, State::Down, &key, 7);
    let t1 = t0 + 350 * MS;
    let out = m1.handle(Input::Timer, t1);
    assert!(out.iter().any(|o| matches!(o, Output::StateChange(_))));
    assert_eq!(state(&m1, "192.0.2.2"), State::Down);
    let out = deliver(&mut m1, "192.0.2.2", &restarted, t1);
    let replayed = Output::Drop {
        peer: Some(ip("192.0.2.2")),
        reason: DropReason::AuthSeqReplayed,
    };
    assert_eq!(out, [replayed], "reported once already: only counted");
    assert_eq!(
        m1.sessions[&ip("192.0.2.2")].session.auth_rx_seq(),
        Some(1001)
    );
    // ... but after the second one, bfd.AuthSeqKnown is 0 and any sequence is taken.
    let t2 = m1.next_timer().unwrap().max(t0 + 650 * MS);
    m1.handle(Input::Timer, t2);
    assert_eq!(m1.sessions[&ip("192.0.2.2")].session.auth_rx_seq(), None);
    let out = deliver(&mut m1, "192.0.2.2", &restarted, t2);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Drop { .. })),
        "{out:?}"
    );
    assert_eq!(state(&m1, "192.0.2.2"), State::Init);
}

#[test]
fn new_key_through_set_profile_resets_the_receive_sequence() {
    let t0 = Instant::now();
    let old = auth(AuthMethod::KeyedSha1, 1, b"old");
    let (mut m1, _) = node(1, old.clone(), t0);
    let p = peer_pkt(&m1, State::Down, old.as_ref().unwrap(), 500);
    deliver(&mut m1, "192.0.2.2", &p, t0);
    let new = auth(AuthMethod::KeyedSha1, 2, b"new");
    m1.set_profile(ip("192.0.2.2"), profile(new.clone()), t0)
        .unwrap();
    assert_eq!(m1.sessions[&ip("192.0.2.2")].session.auth_rx_seq(), None);
    let out = deliver(&mut m1, "192.0.2.2", &p, t0 + MS);
    assert_eq!(
        failures(&out),
        [AuthFailure::WrongKeyId {
            got: 1,
            expected: 2
        }]
    );
    let p = peer_pkt(&m1, State::Down, new.as_ref().unwrap(), 3);
    assert!(failures(&deliver(&mut m1, "192.0.2.2", &p, t0 + 2 * MS)).is_empty());
}
