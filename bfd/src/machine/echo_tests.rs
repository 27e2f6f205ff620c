//! The machine's echo rules, socket-free: admission, which echo-port datagrams are ours,
//! the echo timers and the Down they cause.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::echo::ECHO_TTL;

const MS: Duration = Duration::from_millis(1);
const REMOTE: u32 = 0x2222_2222;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn echo_profile() -> BfdProfile {
    BfdProfile {
        echo_mode: true,
        echo_interval: 50 * MS,
        ..BfdProfile::default()
    }
}

fn pkt(state: State, your: u32, echo_rx_us: u32) -> ControlPacket {
    ControlPacket::for_test(state, REMOTE, your, 300_000, echo_rx_us)
}

fn receive(m: &mut Machine, src: IpAddr, p: &ControlPacket, now: Instant) -> Vec<Output> {
    let data = p.to_bytes();
    m.handle(
        Input::Datagram {
            data: &data,
            src,
            dst: None,
            ttl: Some(255),
            multihop: false,
        },
        now,
    )
}

const LOCAL: &str = "192.0.2.1";
const PEER: &str = "192.0.2.2";

/// An echo session to PEER, brought Up by a peer that loops echoes every 50 ms; returns
/// the machine, our discriminator and the outputs of the last step.
fn up(now: Instant) -> (Machine, u32, Vec<Output>) {
    let mut m = Machine::new(
        Families {
            ipv4: true,
            ipv6: true,
        },
        StdRng::seed_from_u64(3),
    );
    m.add(ip(PEER), ip(LOCAL), echo_profile(), now).unwrap();
    let d = m.peer(ip(PEER)).unwrap().info.local_discr;
    receive(&mut m, ip(PEER), &pkt(State::Down, 0, 50_000), now);
    let out = receive(&mut m, ip(PEER), &pkt(State::Up, d, 50_000), now);
    assert_eq!(m.peer(ip(PEER)).unwrap().info.state, State::Up);
    (m, d, out)
}

fn echo_in(
    m: &mut Machine,
    src: &str,
    dst: &str,
    ttl: u8,
    p: EchoPacket,
    now: Instant,
) -> Vec<Output> {
    let payload = p.encode();
    m.handle(
        Input::Echo {
            payload: &payload,
            src: ip(src),
            dst: ip(dst),
            ttl,
        },
        now,
    )
}

#[test]
fn echo_is_refused_for_multihop_and_ipv6_naming_the_field() {
    let mut m = Machine::new(
        Families {
            ipv4: true,
            ipv6: true,
        },
        StdRng::seed_from_u64(3),
    );
    let t = Instant::now();
    for r in [
        m.add_multihop(ip("198.51.100.2"), ip(LOCAL), echo_profile(), t),
        m.add(ip("2001:db8::2"), ip("2001:db8::1"), echo_profile(), t),
    ] {
        match r {
            Err(BfdError::InvalidProfile { field, .. }) => assert_eq!(field, "echoMode"),
            other => panic!("expected InvalidProfile echoMode, got {other:?}"),
        }
    }
    // Switching echo on for an existing multihop session is refused the same way.
    m.add_multihop(ip("198.51.100.2"), ip(LOCAL), BfdProfile::default(), t)
        .unwrap();
    assert!(matches!(
        m.set_profile(ip("198.51.100.2"), echo_profile(), t),
        Err(BfdError::InvalidProfile {
            field: "echoMode",
            ..
        })
    ));
}

#[test]
fn up_sends_the_first_echo_from_and_to_our_address() {
    let t = Instant::now();
    let (m, d, out) = up(t);
    let echoes: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::SendEcho {
                peer,
                local,
                packet,
            } => Some((*peer, *local, *packet)),
            _ => None,
        })
        .collect();
    assert_eq!(
        echoes,
        vec![(
            ip(PEER),
            ip(LOCAL),
            EchoPacket {
                my_discr: d,
                seq: 0
            }
        )]
    );
    let next = m.next_timer().unwrap();
    assert!(
        next <= t + 50 * MS,
        "echo tx timer is the next one: {next:?}"
    );
}

#[test]
fn returned_echo_is_accepted_only_with_our_addresses_discr_and_ttl_254() {
    let t = Instant::now();
    let (mut m, d, _) = up(t);
    let p = EchoPacket {
        my_discr: d,
        seq: 0,
    };
    let ok = echo_in(&mut m, LOCAL, LOCAL, 254, p, t);
    assert_eq!(ok, vec![Output::EchoReturned { peer: ip(PEER) }]);
    // The peer's own echo passing through (its address both ways): not ours, not a drop.
    assert!(echo_in(&mut m, PEER, PEER, ECHO_TTL, p, t).is_empty());
    // Sent by us, not yet forwarded (seen on the way out): wrong TTL.
    assert_eq!(
        echo_in(&mut m, LOCAL, LOCAL, ECHO_TTL, p, t),
        vec![Output::EchoDrop {
            peer: Some(ip(PEER)),
            reason: EchoDropReason::BadTtl
        }]
    );
    let other = EchoPacket {
        my_discr: d ^ 1,
        seq: 0,
    };
    assert_eq!(
        echo_in(&mut m, LOCAL, LOCAL, 254, other, t),
        vec![Output::EchoDrop {
            peer: None,
            reason: EchoDropReason::NoSession
        }]
    );
    assert_eq!(m.peer(ip(PEER)).unwrap().info.echo.returned, 1);
}

#[test]
fn no_return_for_detect_mult_intervals_is_echo_function_failed() {
    let t = Instant::now();
    let (mut m, d, _) = up(t);
    // Echoes come back for a while: the session stays Up across many intervals.
    let mut now = t;
    for _ in 0..20 {
        now += 50 * MS;
        let out = m.handle(Input::Timer, now);
        for o in out {
            if let Output::SendEcho { packet, .. } = o {
                echo_in(&mut m, LOCAL, LOCAL, 254, packet, now);
            }
        }
        // Control packets from the peer keep arriving too.
        receive(&mut m, ip(PEER), &pkt(State::Up, d, 50_000), now);
    }
    assert_eq!(m.peer(ip(PEER)).unwrap().info.state, State::Up);
    // Then the loop breaks: echoes go out, none come back; control packets still arrive.
    let mut down = None;
    for _ in 0..10 {
        now += 50 * MS;
        receive(&mut m, ip(PEER), &pkt(State::Up, d, 50_000), now);
        let out = m.handle(Input::Timer, now);
        if let Some(ev) = out.iter().find_map(|o| match o {
            Output::StateChange(ev) => Some(ev.clone()),
            _ => None,
        }) {
            down = Some((ev, now));
            break;
        }
    }
    let (ev, at) = down.expect("echo failure detected");
    assert_eq!(
        (ev.old, ev.new, ev.diag),
        (State::Up, State::Down, Diag::EchoFunctionFailed)
    );
    assert!(ev.is_failure());
    // 3 x 50 ms after the last return (timer granularity 50 ms here).
    assert!(at - (t + 20 * 50 * MS) <= 200 * MS, "{:?}", at - t);
}

#[test]
fn forwarding_report_controls_what_we_advertise() {
    let t = Instant::now();
    let (mut m, _, _) = up(t);
    assert_eq!(
        m.peer(ip(PEER)).unwrap().info.echo.advertised_rx,
        Duration::ZERO
    );
    let out = m.set_echo_loop(ip(PEER), true, t).unwrap();
    let adv: Vec<u32> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { packet, .. } => Some(packet.required_min_echo_rx_us),
            _ => None,
        })
        .collect();
    assert_eq!(adv, vec![50_000]);
    assert_eq!(m.echo_peers().collect::<Vec<_>>(), vec![ip(PEER)]);
    assert!(m.set_echo_loop(ip("192.0.2.99"), true, t).is_err());
}
