//! Arbitrary input sequences through one interface's `Machine`: frames, flushes, timer ticks
//! with time moving on, owned-set changes. Must never panic; the reply queue stays within its
//! capacity; every frame sent decodes; nothing is sent for an IP no longer owned.
//!
//! Input: a sequence of records `[op, arg, ...]`; op % 4: 0 Flush, 1 Timer after `arg` ms,
//! 2 SetOwned (arg picks the set), 3 a frame of the next `arg` bytes.
#![no_main]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_arp::packet::{Frame, Payload};
use ferrolb_arp::{Input, Limits, MacAddr, Machine, MachineConfig, Output};
use libfuzzer_sys::fuzz_target;

const SETS: [&[&str]; 3] = [
    &["192.0.2.10", "2001:db8::10", "2001:db8::2"],
    &["192.0.2.10"],
    &[],
];

fn set(i: u8) -> BTreeSet<IpAddr> {
    SETS[usize::from(i) % SETS.len()]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        per_source_rate: 10.0,
        per_source_burst: 4.0,
        max_sources: 8,
        queue_capacity: 16,
        block_for: Duration::from_millis(50),
    };
    let config = MachineConfig {
        limits,
        ..MachineConfig::default()
    };
    let mut m = Machine::new(MacAddr([2, 0, 0, 0, 0x0a, 1]), &config);
    let mut now = Instant::now();
    let mut owned = set(0);
    m.handle(Input::SetOwned(owned.clone()), now);
    let mut rest = data;
    while rest.len() >= 2 {
        let (op, arg) = (rest[0], rest[1]);
        rest = &rest[2..];
        let out = match op % 4 {
            0 => m.handle(Input::Flush, now),
            1 => {
                now += Duration::from_millis(u64::from(arg));
                m.handle(Input::Timer, now)
            }
            2 => {
                owned = set(arg);
                m.handle(Input::SetOwned(owned.clone()), now)
            }
            _ => {
                let n = usize::from(arg).min(rest.len());
                let (frame, tail) = rest.split_at(n);
                rest = tail;
                m.handle(Input::Frame(frame), now)
            }
        };
        assert!(m.queued() <= limits.queue_capacity);
        for o in out {
            if let Output::Send { frame, .. } = o {
                let f = Frame::decode(&frame).expect("our own frame decodes");
                // A reply or announcement is only ever for an IP owned right now.
                let ip = match f.payload {
                    Payload::Arp(a) => IpAddr::V4(a.spa),
                    Payload::Ndp { msg, .. } => IpAddr::V6(msg.target()),
                };
                assert!(owned.contains(&ip), "sent for {ip}, owned {owned:?}");
            }
        }
    }
});
