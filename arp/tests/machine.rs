//! The interface state machine without sockets: flood limits, reply priority, conflict
//! report rate, owned-set changes. Time is passed in.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ferrolb_arp::packet::{ArpOp, ArpPacket, ETHERTYPE_ARP, EthernetHeader, Frame, Payload};
use ferrolb_arp::{
    DropReason, Input, Limits, MacAddr, Machine, MachineConfig, Output, ReplyKind, SendKind,
};

const SERVER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const LEGIT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const FLOODER: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xf]);

fn config(limits: Limits) -> MachineConfig {
    MachineConfig {
        announce_count: 0,
        limits,
        ..MachineConfig::default()
    }
}

fn machine(limits: Limits, ips: &[&str], now: Instant) -> Machine {
    let mut m = Machine::new(SERVER, &config(limits));
    let owned: BTreeSet<IpAddr> = ips.iter().map(|s| s.parse().unwrap()).collect();
    m.handle(Input::SetOwned(owned), now);
    m
}

fn arp(op: ArpOp, from: MacAddr, spa: &str, tpa: &str) -> Vec<u8> {
    Frame {
        eth: EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: from,
            vlan: None,
            ethertype: ETHERTYPE_ARP,
        },
        payload: Payload::Arp(ArpPacket {
            op,
            sha: from,
            spa: spa.parse::<Ipv4Addr>().unwrap(),
            tha: MacAddr::ZERO,
            tpa: tpa.parse().unwrap(),
        }),
    }
    .to_bytes()
    .to_vec()
}

/// The requester MAC of each reply in `out`, in send order.
fn replies_to(out: &[Output]) -> Vec<MacAddr> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                frame,
                kind: SendKind::Reply(ReplyKind::Arp),
            } => Some(MacAddr(frame[..6].try_into().unwrap())),
            _ => None,
        })
        .collect()
}

fn drops(out: &[Output], reason: DropReason) -> usize {
    out.iter().filter(|o| **o == Output::Drop(reason)).count()
}

#[test]
fn a_flooding_source_is_limited_and_others_are_answered_first() {
    let t0 = Instant::now();
    let limits = Limits {
        per_source_rate: 100.0,
        per_source_burst: 20.0,
        ..Limits::default()
    };
    let mut m = machine(limits, &["192.0.2.10"], t0);
    let flood = arp(ArpOp::Request, FLOODER, "192.0.2.66", "192.0.2.10");
    let legit = arp(ArpOp::Request, LEGIT, "192.0.2.1", "192.0.2.10");
    // One batch: 500 flood requests with a legitimate one in the middle.
    let mut out = Vec::new();
    for i in 0..500 {
        out.extend(m.handle(Input::Frame(&flood), t0));
        if i == 250 {
            out.extend(m.handle(Input::Frame(&legit), t0));
        }
    }
    // Replies wait for the end of the batch.
    assert!(replies_to(&out).is_empty());
    assert_eq!(drops(&out, DropReason::RateLimited), 480);
    let sent = replies_to(&m.handle(Input::Flush, t0));
    // The flooder got its burst and no more; the legitimate host is answered, and first
    // (the flooder's last replies came from a half-empty bucket).
    assert_eq!(sent.len(), 21);
    assert_eq!(sent.iter().filter(|m| **m == FLOODER).count(), 20);
    // Tokens 19..10 are quiet (10 replies), the rest busy: the legitimate reply is sent
    // right after the flooder's quiet ones, before its busy ones.
    assert_eq!(sent.iter().position(|m| *m == LEGIT), Some(10), "{sent:?}");
    // 100 ms later the flooder has 10 more tokens, at 100/s.
    let t1 = t0 + Duration::from_millis(100);
    let mut out = Vec::new();
    for _ in 0..50 {
        out.extend(m.handle(Input::Frame(&flood), t1));
    }
    assert_eq!(drops(&out, DropReason::RateLimited), 40);
    assert_eq!(replies_to(&m.handle(Input::Flush, t1)).len(), 10);
}

#[test]
fn the_queue_is_bounded_and_quiet_sources_displace_busy_ones() {
    let t0 = Instant::now();
    // One source can queue at most burst / 2 quiet replies: capacity 8 > 10 / 2.
    let limits = Limits {
        per_source_rate: 1.0,
        per_source_burst: 10.0,
        queue_capacity: 8,
        ..Limits::default()
    };
    let mut m = machine(limits, &["192.0.2.10"], t0);
    let flood = arp(ArpOp::Request, FLOODER, "192.0.2.66", "192.0.2.10");
    let mut out = Vec::new();
    // 5 quiet + 3 busy replies fill the queue, 2 more busy ones do not fit, then the bucket
    // is empty.
    for _ in 0..60 {
        out.extend(m.handle(Input::Frame(&flood), t0));
    }
    assert_eq!(m.queued(), 8);
    assert_eq!(drops(&out, DropReason::QueueFull), 2);
    assert_eq!(drops(&out, DropReason::RateLimited), 50);
    // Another host's request still gets in (the oldest busy reply gives way) and is sent
    // first.
    let legit = arp(ArpOp::Request, LEGIT, "192.0.2.1", "192.0.2.10");
    let out = m.handle(Input::Frame(&legit), t0);
    assert_eq!(out, vec![Output::Drop(DropReason::QueueFull)]);
    let sent = replies_to(&m.handle(Input::Flush, t0));
    assert_eq!(sent.len(), 8);
    assert_eq!(sent.iter().position(|m| *m == LEGIT), Some(5), "{sent:?}");
    assert_eq!(m.queued(), 0);
}

#[test]
fn a_full_queue_of_busy_replies_gives_way_to_a_quiet_source() {
    let t0 = Instant::now();
    let limits = Limits {
        per_source_rate: 1.0,
        per_source_burst: 10.0,
        queue_capacity: 4,
        ..Limits::default()
    };
    let mut m = machine(limits, &["192.0.2.10"], t0);
    let flood = arp(ArpOp::Request, FLOODER, "192.0.2.66", "192.0.2.10");
    // Tokens 9..5 are quiet, 4.. busy: drain the bucket into the queue so that busy replies
    // fill it.
    for _ in 0..10 {
        m.handle(Input::Frame(&flood), t0);
    }
    m.handle(Input::Flush, t0);
    let t1 = t0 + Duration::from_secs(4); // 4 tokens back: all busy
    for _ in 0..4 {
        m.handle(Input::Frame(&flood), t1);
    }
    assert_eq!(m.queued(), 4);
    let legit = arp(ArpOp::Request, LEGIT, "192.0.2.1", "192.0.2.10");
    let out = m.handle(Input::Frame(&legit), t1);
    assert_eq!(out, vec![Output::Drop(DropReason::QueueFull)]);
    let sent = replies_to(&m.handle(Input::Flush, t1));
    assert_eq!(sent.first(), Some(&LEGIT), "{sent:?}");
    assert_eq!(sent.len(), 4);
}

#[test]
fn spoofed_source_macs_share_one_bucket_once_the_table_is_full() {
    let t0 = Instant::now();
    let limits = Limits {
        per_source_rate: 1.0,
        per_source_burst: 2.0,
        max_sources: 4,
        queue_capacity: 10_000,
        block_for: Duration::ZERO,
    };
    let mut m = machine(limits, &["192.0.2.10"], t0);
    let mut out = Vec::new();
    for i in 0..100u8 {
        let mac = MacAddr([2, 0, 0, 0, 1, i]);
        out.extend(m.handle(
            Input::Frame(&arp(ArpOp::Request, mac, "192.0.2.66", "192.0.2.10")),
            t0,
        ));
    }
    // 4 sources with their own bucket (1 reply each so far), the other 96 share one of 2.
    assert_eq!(replies_to(&m.handle(Input::Flush, t0)).len(), 4 + 2);
    assert_eq!(drops(&out, DropReason::RateLimited), 94);
}

#[test]
fn conflicts_are_reported_once_per_ip_and_mac_per_interval_and_all_counted() {
    let t0 = Instant::now();
    let mut m = Machine::new(
        SERVER,
        &MachineConfig {
            announce_count: 0,
            conflict_interval: Duration::from_secs(10),
            ..MachineConfig::default()
        },
    );
    m.handle(Input::SetOwned(["192.0.2.10".parse().unwrap()].into()), t0);
    let garp = arp(ArpOp::Reply, LEGIT, "192.0.2.10", "192.0.2.10");
    let other = arp(ArpOp::Reply, FLOODER, "192.0.2.10", "192.0.2.10");
    let report = |out: Vec<Output>| match out.as_slice() {
        [Output::Conflict { report, .. }] => *report,
        other => panic!("{other:?}"),
    };
    assert_eq!(report(m.handle(Input::Frame(&garp), t0)), Some(0));
    for s in 1..10 {
        let t = t0 + Duration::from_millis(900 * s);
        assert_eq!(report(m.handle(Input::Frame(&garp), t)), None);
    }
    // Another MAC for the same IP is its own conflict.
    assert_eq!(report(m.handle(Input::Frame(&other), t0)), Some(0));
    // After the interval: reported again, with the 9 frames not reported in between.
    let t = t0 + Duration::from_secs(10);
    assert_eq!(report(m.handle(Input::Frame(&garp), t)), Some(9));
}

#[test]
fn queued_replies_for_an_ip_taken_away_are_not_sent() {
    let t0 = Instant::now();
    let mut m = machine(Limits::default(), &["192.0.2.10", "192.0.2.11"], t0);
    let a = arp(ArpOp::Request, LEGIT, "192.0.2.1", "192.0.2.10");
    let b = arp(ArpOp::Request, LEGIT, "192.0.2.1", "192.0.2.11");
    m.handle(Input::Frame(&a), t0);
    m.handle(Input::Frame(&b), t0);
    let out = m.handle(Input::SetOwned(["192.0.2.11".parse().unwrap()].into()), t0);
    assert_eq!(drops(&out, DropReason::NotOwned), 1);
    let sent = m.handle(Input::Flush, t0);
    assert_eq!(sent.len(), 1);
    match &sent[0] {
        Output::Send { frame, .. } => {
            let f = Frame::decode(frame).unwrap();
            assert!(matches!(f.payload, Payload::Arp(p) if p.spa.to_string() == "192.0.2.11"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gaining_ips_joins_groups_and_schedules_announcements() {
    let t0 = Instant::now();
    let mut m = Machine::new(SERVER, &MachineConfig::default());
    let ips: BTreeSet<IpAddr> = ["192.0.2.10", "2001:db8::10", "2001:db8:1::10"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let out = m.handle(Input::SetOwned(ips), t0);
    // Both IPv6 addresses share one solicited-node group: joined once.
    let joins = out
        .iter()
        .filter(|o| matches!(o, Output::Membership { join: true, .. }))
        .count();
    assert_eq!(joins, 1);
    assert_eq!(m.next_timer(), Some(t0));
    let sent = m.handle(Input::Timer, t0);
    // 2 GARP forms + 1 NA per IPv6 address.
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|o| matches!(
        o,
        Output::Send {
            kind: SendKind::Announcement(_),
            ..
        }
    )));
    let out = m.handle(Input::SetOwned(BTreeSet::new()), t0);
    assert!(out.contains(&Output::Membership {
        group: MacAddr([0x33, 0x33, 0xff, 0, 0, 0x10]),
        join: false
    }));
    assert_eq!(m.next_timer(), None);
}

#[test]
fn a_source_that_empties_its_bucket_is_blocked_in_the_kernel_for_a_while() {
    let t0 = Instant::now();
    let limits = Limits {
        per_source_rate: 10.0,
        per_source_burst: 5.0,
        block_for: Duration::from_secs(1),
        ..Limits::default()
    };
    let mut m = machine(limits, &["192.0.2.10"], t0);
    let flood = arp(ArpOp::Request, FLOODER, "192.0.2.66", "192.0.2.10");
    let mut out = Vec::new();
    for _ in 0..20 {
        out.extend(m.handle(Input::Frame(&flood), t0));
    }
    // Blocked once, at the first limited request, not once per frame.
    let blocks: Vec<&Output> = out
        .iter()
        .filter(|o| matches!(o, Output::BlockSources(_)))
        .collect();
    assert_eq!(blocks, vec![&Output::BlockSources(vec![FLOODER])]);
    assert_eq!(m.next_timer(), Some(t0 + Duration::from_secs(1)));
    // Nothing changes before the time is up; then the filter lets it through again.
    let early = m.handle(Input::Timer, t0 + Duration::from_millis(999));
    assert!(!early.iter().any(|o| matches!(o, Output::BlockSources(_))));
    let out = m.handle(Input::Timer, t0 + Duration::from_secs(1));
    assert_eq!(out, vec![Output::BlockSources(vec![])]);
    assert_eq!(m.next_timer(), None);
    // A legitimate host is never blocked.
    let legit = arp(ArpOp::Request, LEGIT, "192.0.2.1", "192.0.2.10");
    let out = m.handle(Input::Frame(&legit), t0 + Duration::from_secs(1));
    assert!(out.is_empty(), "{out:?}");
}
