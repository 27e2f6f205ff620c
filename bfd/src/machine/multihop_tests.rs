//! Multihop (RFC 5883) rules of the machine, socket-free: which port, which destination and
//! which TTL a packet of a multihop session needs, and that single-hop sessions are unchanged.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const PEER: &str = "198.51.100.6";
const LOCAL: &str = "192.0.2.2";

/// A machine with one multihop session from LOCAL to PEER with `minimum_ttl`.
fn multihop(min_ttl: u8, now: Instant) -> Machine {
    let mut m = Machine::new(
        Families {
            ipv4: true,
            ipv6: true,
        },
        StdRng::seed_from_u64(11),
    );
    let profile = BfdProfile {
        minimum_ttl: min_ttl,
        ..BfdProfile::default()
    };
    let out = m.add_multihop(ip(PEER), ip(LOCAL), profile, now).unwrap();
    assert!(
        matches!(&out[..], [Output::Send { packet, .. }] if packet.state == State::Down),
        "{out:?}"
    );
    m
}

fn down_pkt() -> ControlPacket {
    super::tests::pkt(State::Down, 0)
}

/// Feeds the peer's Down packet as it arrived: destination, TTL, port kind.
fn arrive(
    m: &mut Machine,
    dst: Option<&str>,
    ttl: Option<u8>,
    multihop: bool,
    now: Instant,
) -> Vec<Output> {
    let bytes = down_pkt().to_bytes();
    m.handle(
        Input::Datagram {
            data: &bytes,
            src: ip(PEER),
            dst: dst.map(ip),
            ttl,
            multihop,
        },
        now,
    )
}

fn drops(out: &[Output]) -> Vec<(Option<IpAddr>, DropReason)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Drop { peer, reason } => Some((*peer, *reason)),
            _ => None,
        })
        .collect()
}

fn went_init(out: &[Output]) -> bool {
    out.iter().any(
        |o| matches!(o, Output::StateChange(ev) if ev.old == State::Down && ev.new == State::Init),
    )
}

#[test]
fn accepts_ttl_at_or_above_the_minimum_on_the_multihop_port() {
    let t0 = Instant::now();
    // 254 = one router between us (FRR sends 255): MetalLB's default minimumTtl.
    let mut m = multihop(254, t0);
    let out = arrive(&mut m, Some(LOCAL), Some(254), true, t0);
    assert!(drops(&out).is_empty(), "{out:?}");
    assert!(went_init(&out), "{out:?}");
    let v = m.peer(ip(PEER)).unwrap();
    assert!(v.multihop);
    assert_eq!((v.local, v.packets_in), (ip(LOCAL), 1));
    // Destination unknown (the kernel gave no PKTINFO): source and discriminators decide.
    let mut m = multihop(254, t0);
    let out = arrive(&mut m, None, Some(255), true, t0);
    assert!(went_init(&out), "{out:?}");
}

#[test]
fn drops_ttl_below_the_minimum_and_stays_down() {
    let t0 = Instant::now();
    let mut m = multihop(254, t0);
    // Two routers on the path: 253 < 254. Every such packet is dropped by the session.
    for i in 0..3 {
        let out = arrive(
            &mut m,
            Some(LOCAL),
            Some(253),
            true,
            t0 + Duration::from_millis(i),
        );
        assert_eq!(
            drops(&out),
            [(Some(ip(PEER)), DropReason::TtlBelowMinimum)],
            "{out:?}"
        );
    }
    // No TTL from the kernel: not proven, dropped too.
    let out = arrive(&mut m, Some(LOCAL), None, true, t0);
    assert_eq!(drops(&out), [(Some(ip(PEER)), DropReason::TtlBelowMinimum)]);
    let v = m.peer(ip(PEER)).unwrap();
    assert_eq!((v.info.state, v.packets_in), (State::Down, 0));

    // Lowering the minimum (a profile edit) lets the same packet in.
    let profile = BfdProfile {
        minimum_ttl: 253,
        ..BfdProfile::default()
    };
    m.set_profile(ip(PEER), profile, t0).unwrap();
    let out = arrive(&mut m, Some(LOCAL), Some(253), true, t0);
    assert!(went_init(&out), "{out:?}");
}

#[test]
fn selects_by_source_and_destination() {
    let t0 = Instant::now();
    let mut m = multihop(254, t0);
    let out = arrive(&mut m, Some("192.0.2.99"), Some(255), true, t0);
    assert_eq!(
        drops(&out),
        [(Some(ip(PEER)), DropReason::DestinationMismatch)]
    );
    // An unknown source is no session, whatever the port.
    let bytes = down_pkt().to_bytes();
    let out = m.handle(
        Input::Datagram {
            data: &bytes,
            src: ip("203.0.113.9"),
            dst: Some(ip(LOCAL)),
            ttl: Some(255),
            multihop: true,
        },
        t0,
    );
    assert_eq!(drops(&out), [(None, DropReason::NoSession)]);
}

#[test]
fn the_port_must_match_the_session_kind() {
    let t0 = Instant::now();
    // A multihop session ignores the single-hop port, even with TTL 255.
    let mut m = multihop(254, t0);
    let out = arrive(&mut m, Some(LOCAL), Some(255), false, t0);
    assert_eq!(drops(&out), [(Some(ip(PEER)), DropReason::HopModeMismatch)]);

    // A single-hop session ignores the multihop port; on its own port the GTSM rule is
    // unchanged (255 only, checked before anything else).
    let mut m = Machine::new(
        Families {
            ipv4: true,
            ipv6: true,
        },
        StdRng::seed_from_u64(11),
    );
    m.add(ip(PEER), ip(LOCAL), BfdProfile::default(), t0)
        .unwrap();
    let out = arrive(&mut m, Some(LOCAL), Some(255), true, t0);
    assert_eq!(drops(&out), [(Some(ip(PEER)), DropReason::HopModeMismatch)]);
    let out = arrive(&mut m, Some(LOCAL), Some(254), false, t0);
    assert_eq!(drops(&out), [(None, DropReason::TtlNot255)]);
    let out = arrive(&mut m, Some(LOCAL), Some(255), false, t0);
    assert!(went_init(&out), "{out:?}");
    assert!(!m.peer(ip(PEER)).unwrap().multihop);
}

#[test]
fn up_and_detection_work_as_for_single_hop() {
    let t0 = Instant::now();
    let mut m = multihop(250, t0);
    arrive(&mut m, Some(LOCAL), Some(252), true, t0);
    let ours = m.peer(ip(PEER)).unwrap().info.local_discr;
    let up = ControlPacket {
        state: State::Up,
        your_discr: ours,
        ..down_pkt()
    };
    let bytes = up.to_bytes();
    let out = m.handle(
        Input::Datagram {
            data: &bytes,
            src: ip(PEER),
            dst: Some(ip(LOCAL)),
            ttl: Some(252),
            multihop: true,
        },
        t0,
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::StateChange(ev) if ev.new == State::Up)),
        "{out:?}"
    );
    // Silence: Down after the detection time (300 ms x 3).
    let out = m.handle(Input::Timer, t0 + Duration::from_millis(901));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::StateChange(ev) if ev.is_failure())),
        "{out:?}"
    );
}
