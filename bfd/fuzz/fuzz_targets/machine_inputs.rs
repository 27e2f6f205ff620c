//! The whole-host BFD machine under arbitrary input: datagrams from configured and unknown
//! sources with any TTL, on either port (single-hop, multihop) and to either destination,
//! timer ticks at arbitrary times, single-hop and multihop sessions added, removed and
//! re-timed in between, echo-port datagrams (from and to our address or not, any TTL and
//! payload) and forwarding reports for echo sessions; some profiles authenticate. It must never panic, and it must only
//! ever address configured peers (control packets and echoes).
#![no_main]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ferrolb_bfd::{AuthKey, AuthMethod, BfdAuth, BfdProfile};
use ferrolb_bfd::machine::{Families, Input, Machine, Output};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;

const PEERS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];
/// A source no session has.
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));

fn local_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10)),
    }
}

/// A profile from fuzz bytes (often invalid: the machine must refuse it, not panic).
fn profile(b: &[u8]) -> BfdProfile {
    let byte = |i: usize| b.get(i).copied().unwrap_or(0);
    BfdProfile {
        receive_interval: Duration::from_millis(u64::from(byte(0)) * 10),
        transmit_interval: Duration::from_millis(u64::from(byte(1)) * 10),
        detect_multiplier: byte(2),
        passive_mode: byte(3) & 1 == 1,
        minimum_ttl: byte(4),
        echo_mode: byte(3) & 2 == 2,
        echo_interval: Duration::from_millis(u64::from(byte(5)) * 10),
        // Authentication on for a quarter of the profiles: datagrams with the A bit then
        // reach the RFC 5880 §6.7.4 checks.
        auth: (byte(3) & 12 != 0).then(|| BfdAuth {
            method: if byte(3) & 4 != 0 {
                AuthMethod::MeticulousKeyedSha1
            } else {
                AuthMethod::KeyedSha1
            },
            key_id: byte(6),
            key: AuthKey::new(b"fuzz").expect("4-byte key"),
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut m = Machine::new(
        Families {
            ipv4: true,
            ipv6: true,
        },
        StdRng::seed_from_u64(7),
    );
    let mut now = Instant::now();
    let mut configured: BTreeSet<IpAddr> = BTreeSet::new();
    for (i, peer) in PEERS.into_iter().enumerate() {
        // The second peer is multihop (RFC 5883), the others single-hop.
        let added = if i == 1 {
            m.add_multihop(peer, local_of(peer), BfdProfile::default(), now)
        } else {
            m.add(peer, local_of(peer), BfdProfile::default(), now)
        };
        added.expect("a default session is accepted");
        configured.insert(peer);
    }
    for chunk in data.chunks(32) {
        let op = chunk[0];
        let arg = chunk.get(1).copied().unwrap_or(0);
        now += Duration::from_millis(u64::from(arg) * 3);
        let peer = PEERS[usize::from(arg) % PEERS.len()];
        // A removed session may still send its last AdminDown packet.
        let before = configured.clone();
        let out = match op % 10 {
            0 | 1 => m.handle(Input::Timer, now),
            2 => match m.remove(peer, now) {
                Ok(out) => {
                    configured.remove(&peer);
                    out
                }
                Err(_) => Vec::new(),
            },
            3 => match if op & 0x20 != 0 {
                m.add_multihop(peer, local_of(peer), profile(chunk.get(2..).unwrap_or_default()), now)
            } else {
                m.add(peer, local_of(peer), profile(chunk.get(2..).unwrap_or_default()), now)
            } {
                Ok(out) => {
                    configured.insert(peer);
                    out
                }
                Err(_) => Vec::new(),
            },
            4 => m.set_profile(peer, profile(chunk.get(2..).unwrap_or_default()), now).unwrap_or_default(),
            5 if op & 0x80 != 0 => m.set_echo_loop(peer, op & 0x40 != 0, now).unwrap_or_default(),
            5 => {
                let ours = local_of(peer);
                let (src, dst) = match op & 0x30 {
                    0 => (ours, ours),
                    0x10 => (peer, peer),
                    _ => (ours, STRANGER),
                };
                let payload = chunk.get(2..).unwrap_or_default();
                m.handle(Input::Echo { payload, src, dst, ttl: arg }, now)
            }
            _ => {
                let src = if op & 0x80 != 0 { STRANGER } else { peer };
                let ttl = (op & 0x40 != 0).then_some(arg);
                let multihop = op & 0x20 != 0;
                let dst = match op & 0x18 {
                    0 => None,
                    0x08 => Some(STRANGER),
                    _ => Some(local_of(peer)),
                };
                let body = chunk.get(2..).unwrap_or_default();
                let input = Input::Datagram { data: body, src, dst, ttl, multihop };
                m.handle(input, now)
            }
        };
        for o in &out {
            if let Output::Send { peer, .. } = o {
                assert!(
                    before.contains(peer) || configured.contains(peer),
                    "sent to {peer}, not configured"
                );
            }
            if let Output::SendEcho { peer, local, .. } = o {
                assert!(configured.contains(peer), "echo for {peer}, not configured");
                assert!(peer.is_ipv4() && *local == local_of(*peer), "echo from {local}");
            }
        }
        if let Some(at) = m.next_timer() {
            // A timer is never more than a detection time's worth of the slowest legal
            // profile away (255 x 25.5 s is far beyond it): no overflow, no runaway.
            assert!(at <= now + Duration::from_secs(24 * 3600));
        }
    }
    for o in m.shutdown(now) {
        if let Output::Send { peer, .. } = o {
            assert!(configured.contains(&peer));
        }
    }
});
