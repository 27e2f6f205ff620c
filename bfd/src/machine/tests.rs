//! The machine's rules, socket-free: inputs in (datagrams with their TTL, ticks at chosen
//! instants, admin commands), outputs compared. No sockets, no sleeps, no tokio.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

const MS: Duration = Duration::from_millis(1);
const REMOTE: u32 = 0x2222_2222;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn machine(ipv4: bool, ipv6: bool) -> Machine {
    Machine::new(Families { ipv4, ipv6 }, StdRng::seed_from_u64(7))
}

/// A machine with one session to 192.0.2.2 from 192.0.2.1, default profile (300 ms × 3).
fn one_session(now: Instant) -> (Machine, IpAddr) {
    let mut m = machine(true, true);
    let peer = ip("192.0.2.2");
    m.add(peer, ip("192.0.2.1"), BfdProfile::default(), now)
        .unwrap();
    (m, peer)
}

/// The peer's packet: `state`, its discriminator REMOTE, ours as `your`, 300 ms × 3.
pub(super) fn pkt(state: State, your: u32) -> ControlPacket {
    ControlPacket::for_test(state, REMOTE, your, 300_000, 0)
}

fn datagram(
    m: &mut Machine,
    src: IpAddr,
    ttl: Option<u8>,
    bytes: &[u8],
    now: Instant,
) -> Vec<Output> {
    m.handle(
        Input::Datagram {
            data: bytes,
            src,
            dst: None,
            ttl,
            multihop: false,
        },
        now,
    )
}

/// A well-formed packet with TTL 255.
fn receive(m: &mut Machine, src: IpAddr, p: &ControlPacket, now: Instant) -> Vec<Output> {
    datagram(m, src, Some(255), &p.to_bytes(), now)
}

fn discr(m: &Machine, peer: IpAddr) -> u32 {
    m.peer(peer).unwrap().info.local_discr
}

fn sent(out: &[Output]) -> Vec<(IpAddr, ControlPacket)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { peer, packet } => Some((*peer, packet.clone())),
            _ => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<BfdEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::StateChange(ev) => Some(ev.clone()),
            _ => None,
        })
        .collect()
}

fn transitions(out: &[Output]) -> Vec<(State, State, Diag)> {
    events(out).iter().map(|e| (e.old, e.new, e.diag)).collect()
}

/// Down -> Init -> Up with the peer's Down then Up; returns the time of the last packet.
fn bring_up(m: &mut Machine, peer: IpAddr, now: Instant) -> Instant {
    let out = receive(m, peer, &pkt(State::Down, 0), now);
    assert_eq!(transitions(&out), [(State::Down, State::Init, Diag::None)]);
    let t = now + 10 * MS;
    let out = receive(m, peer, &pkt(State::Up, discr(m, peer)), t);
    assert_eq!(transitions(&out), [(State::Init, State::Up, Diag::None)]);
    t
}

#[test]
fn add_sends_down_at_once_then_every_slow_interval() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let d = discr(&m, peer);
    assert_ne!(d, 0);
    // The first packet at once (what `add` returned is checked on a fresh machine: same seed).
    let mut fresh = machine(true, true);
    let out = fresh
        .add(peer, ip("192.0.2.1"), BfdProfile::default(), t0)
        .unwrap();
    let s = sent(&out);
    assert_eq!(s.len(), 1, "{out:?}");
    assert_eq!(s[0].0, peer);
    let first = &s[0].1;
    assert_eq!(
        (
            first.state,
            first.my_discr,
            first.your_discr,
            first.desired_min_tx_us
        ),
        (State::Down, d, 0, 1_000_000),
        "not Up: at least 1 s (RFC 5880 §6.8.3)"
    );
    // Then the transmit timer: 1 s with 0-25 % jitter (RFC 5880 §6.8.7).
    let next = m.next_timer().expect("tx timer armed");
    assert!(
        next >= t0 + 750 * MS && next <= t0 + 1000 * MS,
        "{:?}",
        next - t0
    );
    assert_eq!(m.handle(Input::Timer, next - MS), [], "not due yet");
    let out = m.handle(Input::Timer, next);
    assert_eq!(sent(&out).len(), 1, "{out:?}");
    assert!(m.next_timer().unwrap() >= next + 750 * MS);
}

#[test]
fn add_is_refused_by_rule_and_refusals_change_nothing() {
    let t0 = Instant::now();
    // IPv6 only: the IPv4 receive socket is off.
    let mut m = machine(false, true);
    let peer = ip("2001:db8::2");
    let local = ip("2001:db8::1");
    m.add(peer, local, BfdProfile::default(), t0).unwrap();
    let timer = m.next_timer();
    let dup = m.add(peer, local, BfdProfile::default(), t0);
    assert!(
        matches!(dup, Err(BfdError::SessionExists { .. })),
        "{dup:?}"
    );
    let v4 = m.add(ip("192.0.2.2"), ip("192.0.2.1"), BfdProfile::default(), t0);
    assert!(matches!(v4, Err(BfdError::BadSession { .. })), "{v4:?}");
    let mixed = m.add(
        ip("2001:db8::3"),
        ip("192.0.2.1"),
        BfdProfile::default(),
        t0,
    );
    assert!(
        matches!(mixed, Err(BfdError::BadSession { .. })),
        "{mixed:?}"
    );
    let echo = BfdProfile {
        echo_mode: true,
        ..BfdProfile::default()
    };
    // The profile is checked first, even for a peer that already has a session.
    for p in [peer, ip("2001:db8::3")] {
        let r = m.add(p, local, echo.clone(), t0);
        assert!(
            matches!(
                r,
                Err(BfdError::InvalidProfile {
                    field: "echoMode",
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert_eq!(m.peers().collect::<Vec<_>>(), [peer]);
    assert_eq!(m.next_timer(), timer);
    // check_add says the same without adding.
    assert!(
        m.check_add(ip("2001:db8::3"), local, false, &BfdProfile::default())
            .is_ok()
    );
    assert!(
        m.check_add(peer, local, false, &BfdProfile::default())
            .is_err()
    );
    assert_eq!(m.peers().count(), 1);
}

#[test]
fn discriminators_are_non_zero_and_unique() {
    let t0 = Instant::now();
    let mut m = machine(true, true);
    for i in 0..1000u32 {
        let [_, _, a, b] = i.to_be_bytes();
        let peer = IpAddr::from([10, 0, a, b]);
        m.add(peer, ip("10.255.0.1"), BfdProfile::default(), t0)
            .unwrap();
    }
    let discrs: BTreeSet<u32> = m.peers().map(|p| discr(&m, p)).collect();
    assert_eq!(discrs.len(), 1000);
    assert!(!discrs.contains(&0));
}

#[test]
fn gtsm_drops_anything_not_sent_with_ttl_255() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    // A packet the session would otherwise take (its discriminator, from its peer).
    let good = pkt(State::Down, discr(&m, peer)).to_bytes();
    for ttl in [None, Some(64), Some(254), Some(1)] {
        let out = datagram(&mut m, peer, ttl, &good, t0);
        assert_eq!(
            out,
            [Output::Drop {
                peer: None,
                reason: DropReason::TtlNot255
            }],
            "ttl {ttl:?}"
        );
    }
    let v = m.peer(peer).unwrap();
    assert_eq!((v.packets_in, v.info.state), (0, State::Down));
}

#[test]
fn codec_checks_drop_with_their_reason() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let good = pkt(State::Down, 0).to_bytes().to_vec();
    let mut v2 = good.clone();
    v2[0] = 0x40;
    let mut len = good.clone();
    len[3] = 20;
    let mut multipoint = good.clone();
    multipoint[1] |= 1;
    let mut mult0 = good.clone();
    mult0[2] = 0;
    for (bytes, reason) in [
        (&v2[..], DropReason::BadVersion),
        (&len[..], DropReason::BadLength),
        (&multipoint[..], DropReason::Multipoint),
        (&mult0[..], DropReason::ZeroDetectMult),
        (&[0x20][..], DropReason::Short),
    ] {
        let out = datagram(&mut m, peer, Some(255), bytes, t0);
        assert_eq!(out, [Output::Drop { peer: None, reason }]);
    }
    assert_eq!(m.peer(peer).unwrap().packets_in, 0);
}

#[test]
fn your_discriminator_selects_the_session_and_must_come_from_its_peer() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let other = ip("192.0.2.9");
    m.add(other, ip("192.0.2.1"), BfdProfile::default(), t0)
        .unwrap();
    let d = discr(&m, peer);
    let no_session = |reason| [Output::Drop { peer: None, reason }];
    // The right discriminator from another address (even one with its own session).
    for src in [other, ip("192.0.2.1"), ip("198.51.100.7")] {
        let out = receive(&mut m, src, &pkt(State::Down, d), t0);
        assert_eq!(out, no_session(DropReason::SourceMismatch), "from {src}");
    }
    // A discriminator nobody has.
    let unknown = (1..).find(|x| *x != d && *x != discr(&m, other)).unwrap();
    let out = receive(&mut m, peer, &pkt(State::Down, unknown), t0);
    assert_eq!(out, no_session(DropReason::NoSession));
    // Your Discriminator zero: the source address selects, and must have a session.
    let out = receive(&mut m, ip("198.51.100.7"), &pkt(State::Down, 0), t0);
    assert_eq!(out, no_session(DropReason::NoSession));
    assert_eq!(m.peer(peer).unwrap().packets_in, 0);
    assert_eq!(m.peer(other).unwrap().packets_in, 0);
    let out = receive(&mut m, peer, &pkt(State::Down, 0), t0);
    assert_eq!(transitions(&out), [(State::Down, State::Init, Diag::None)]);
    assert!(events(&out).iter().all(|e| e.peer == peer));
    // Then by discriminator, from the right address.
    let out = receive(&mut m, peer, &pkt(State::Up, d), t0);
    assert_eq!(transitions(&out), [(State::Init, State::Up, Diag::None)]);
    assert_eq!(m.peer(peer).unwrap().packets_in, 2);
    assert_eq!(m.peer(other).unwrap().info.state, State::Down);
}

#[test]
fn silence_for_the_detection_time_is_a_failure() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let last = bring_up(&mut m, peer, t0);
    assert_eq!(m.peer(peer).unwrap().state_changes, 2);
    // Detection time 3 × max(300 ms, 300 ms) from the last packet (RFC 5880 §6.8.4); ticks
    // before it (transmit timer) send but change nothing.
    let mut t = last;
    while let Some(next) = m.next_timer().filter(|n| *n < last + 900 * MS) {
        t = next;
        let out = m.handle(Input::Timer, t);
        assert_eq!(events(&out), [], "at {:?}", t - last);
    }
    assert!(t < last + 900 * MS);
    assert_eq!(m.next_timer(), Some(last + 900 * MS));
    let out = m.handle(Input::Timer, last + 900 * MS);
    let ev = events(&out);
    assert_eq!(
        ev,
        [BfdEvent {
            peer,
            old: State::Up,
            new: State::Down,
            diag: Diag::ControlDetectionTimeExpired,
            remote_state: State::Down,
        }]
    );
    assert!(ev[0].is_failure());
    // The state change is reported before the Down packet goes out.
    assert!(matches!(out[0], Output::StateChange(_)), "{out:?}");
    let s = sent(&out);
    assert_eq!(s[0].1.state, State::Down);
    assert_eq!(s[0].1.diag, Diag::ControlDetectionTimeExpired);
}

#[test]
fn every_packet_restarts_the_detection_timer() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let mut last = bring_up(&mut m, peer, t0);
    let d = discr(&m, peer);
    for _ in 0..5 {
        last += 800 * MS;
        let out = m.handle(Input::Timer, last - MS);
        assert_eq!(events(&out), []);
        receive(&mut m, peer, &pkt(State::Up, d), last);
    }
    assert_eq!(m.peer(peer).unwrap().info.state, State::Up);
    assert_eq!(m.peer(peer).unwrap().packets_in, 7);
}

#[test]
fn peer_admin_down_is_not_a_failure() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let t = bring_up(&mut m, peer, t0);
    let d = discr(&m, peer);
    let out = receive(&mut m, peer, &pkt(State::AdminDown, d), t);
    let ev = events(&out);
    assert_eq!(
        ev,
        [BfdEvent {
            peer,
            old: State::Up,
            new: State::Down,
            diag: Diag::NeighborSignaledSessionDown,
            remote_state: State::AdminDown,
        }]
    );
    assert!(!ev[0].is_failure(), "RFC 5882 §3.2");
}

#[test]
fn remove_sends_admin_down_and_forgets_the_session() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let t = bring_up(&mut m, peer, t0);
    let d = discr(&m, peer);
    let out = m.remove(peer, t).unwrap();
    assert_eq!(
        transitions(&out),
        [(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    let s = sent(&out);
    assert_eq!(s.len(), 1, "{out:?}");
    assert_eq!(
        (s[0].0, s[0].1.state, s[0].1.diag),
        (peer, State::AdminDown, Diag::AdministrativelyDown)
    );
    assert_eq!(m.peers().count(), 0);
    assert_eq!(m.next_timer(), None);
    let out = receive(&mut m, peer, &pkt(State::Up, d), t);
    assert_eq!(
        out,
        [Output::Drop {
            peer: None,
            reason: DropReason::NoSession
        }]
    );
    assert!(matches!(m.remove(peer, t), Err(BfdError::NoSession { .. })));
    // The peer can be added again.
    assert!(
        m.add(peer, ip("192.0.2.1"), BfdProfile::default(), t)
            .is_ok()
    );
}

#[test]
fn set_profile_while_up_polls_without_a_flap() {
    let t0 = Instant::now();
    let (mut m, peer) = one_session(t0);
    let fast = BfdProfile::with_timers(150 * MS, 120 * MS, 4);
    assert!(matches!(
        m.set_profile(ip("192.0.2.77"), fast.clone(), t0),
        Err(BfdError::NoSession { .. })
    ));
    let bad = BfdProfile {
        detect_multiplier: 1,
        ..fast.clone()
    };
    assert!(matches!(
        m.set_profile(peer, bad, t0),
        Err(BfdError::InvalidProfile { .. })
    ));
    let t = bring_up(&mut m, peer, t0);
    let out = m.set_profile(peer, fast, t).unwrap();
    assert_eq!(events(&out), []);
    let info = m.peer(peer).unwrap().info;
    assert!(info.poll_active);
    assert_eq!(info.detect_mult, 4);
    // The next periodic packet carries the Poll bit and the new values (RFC 5880 §6.8.3).
    let next = m.next_timer().unwrap();
    let out = m.handle(Input::Timer, next);
    let s = sent(&out);
    assert_eq!(s.len(), 1, "{out:?}");
    assert!(s[0].1.poll);
    assert_eq!(
        (s[0].1.desired_min_tx_us, s[0].1.required_min_rx_us),
        (120_000, 150_000)
    );
    assert_eq!(events(&out), []);
}

#[test]
fn shutdown_sends_admin_down_on_every_session() {
    let t0 = Instant::now();
    let (mut m, a) = one_session(t0);
    let b = ip("192.0.2.3");
    m.add(b, ip("192.0.2.1"), BfdProfile::default(), t0)
        .unwrap();
    bring_up(&mut m, a, t0);
    let out = m.shutdown(t0 + 20 * MS);
    let admin: Vec<(IpAddr, State)> = sent(&out)
        .into_iter()
        .map(|(p, pkt)| (p, pkt.state))
        .collect();
    assert_eq!(admin, [(a, State::AdminDown), (b, State::AdminDown)]);
    assert_eq!(
        events(&out)
            .iter()
            .map(|e| (e.peer, e.old, e.new))
            .collect::<Vec<_>>(),
        [
            (a, State::Up, State::AdminDown),
            (b, State::Down, State::AdminDown)
        ]
    );
    assert_eq!(m.peers().count(), 0);
    assert_eq!(m.next_timer(), None);
}

#[test]
fn a_tick_with_nothing_due_does_nothing() {
    let mut m = machine(true, true);
    assert_eq!(m.next_timer(), None);
    assert_eq!(m.handle(Input::Timer, Instant::now()), []);
}
