//! The core driven by a deterministic simulation: a virtual clock, a network that delivers
//! each datagram after a fixed delay (or drops it when a link is cut), seeded randomness.
//! No sockets, no sleeps. Times below are simulated time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::membership::MetricsSnapshot;

const KEY: &[u8] = b"ferrolb-membership-test-key-0001";
const LATENCY: Duration = Duration::from_millis(1);

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, i], 7946))
}

enum Ev {
    Datagram { from: SocketAddr, data: Vec<u8> },
    Timer(CoreTimer),
}

struct Node {
    core: Core,
    metrics: Arc<Metrics>,
    up: bool,
    /// Live-set changes: (simulated time, set).
    history: Vec<(Duration, BTreeSet<String>)>,
}

struct Sim {
    now: Duration,
    seq: u64,
    heap: BinaryHeap<Reverse<(Duration, u64)>>,
    events: HashMap<u64, (SocketAddr, Ev)>,
    nodes: BTreeMap<SocketAddr, Node>,
    /// Nodes cut off from everyone (both directions).
    isolated: HashSet<SocketAddr>,
    tuning: Tuning,
    /// Per-datagram loss probability and extra delay, uniform in [0, 2 × jitter).
    loss: f64,
    jitter: Duration,
    rng: u64,
}

impl Sim {
    fn new() -> Self {
        Sim {
            now: Duration::ZERO,
            seq: 0,
            heap: BinaryHeap::new(),
            events: HashMap::new(),
            nodes: BTreeMap::new(),
            isolated: HashSet::new(),
            tuning: Tuning::default(),
            loss: 0.0,
            jitter: Duration::ZERO,
            rng: 0x5eed,
        }
    }

    /// splitmix64, in [0, 1).
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Adds and starts member `i` (name `node-i`, address 192.0.2.i) with these seeds.
    fn add(&mut self, i: u8, key: &[u8], seeds: &[u8], bump: u64) {
        let metrics = Arc::new(Metrics::default());
        let id = NodeId {
            name: format!("node-{i}"),
            addr: addr(i),
            bump,
        };
        let mut core = Core::new(
            id,
            key,
            seeds.iter().map(|s| addr(*s)).collect(),
            self.tuning.clone(),
            u64::from(i) * 7919 + bump,
            metrics.clone(),
        )
        .unwrap();
        let out = core.start(self.now);
        self.nodes.insert(
            addr(i),
            Node {
                core,
                metrics,
                up: true,
                history: Vec::new(),
            },
        );
        self.apply(addr(i), out);
    }

    fn push(&mut self, at: Duration, node: SocketAddr, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, (node, ev));
    }

    fn apply(&mut self, node: SocketAddr, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send { to, data } => {
                    if !self.isolated.contains(&node)
                        && !self.isolated.contains(&to)
                        && self.draw() >= self.loss
                    {
                        let delay = LATENCY + self.jitter.mul_f64(2.0 * self.draw());
                        self.push(self.now + delay, to, Ev::Datagram { from: node, data });
                    }
                }
                Output::Schedule { after, timer } => {
                    self.push(self.now + after, node, Ev::Timer(timer))
                }
                Output::Live(set) => {
                    let now = self.now;
                    self.nodes.get_mut(&node).unwrap().history.push((now, set));
                }
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > end {
                break;
            }
            self.heap.pop();
            self.now = at;
            let (node, ev) = self.events.remove(&seq).unwrap();
            let Some(n) = self.nodes.get_mut(&node) else {
                continue;
            };
            if !n.up {
                continue;
            }
            let out = match ev {
                Ev::Datagram { from, data } => n.core.handle_datagram(from, &data, self.now),
                Ev::Timer(t) => n.core.handle_timer(t, self.now),
            };
            self.apply(node, out);
        }
        self.now = end;
    }

    /// The node stops: no more timers, no more datagrams, no leave.
    fn crash(&mut self, i: u8) {
        self.nodes.get_mut(&addr(i)).unwrap().up = false;
    }

    fn leave(&mut self, i: u8) {
        let out = self.nodes.get_mut(&addr(i)).unwrap().core.leave();
        self.apply(addr(i), out);
    }

    fn live(&self, i: u8) -> BTreeSet<String> {
        self.nodes[&addr(i)].core.live().clone()
    }

    /// When node `i`'s live set first lost `name` at or after `since`.
    fn dropped_at(&self, i: u8, name: &str, since: Duration) -> Option<Duration> {
        self.nodes[&addr(i)]
            .history
            .iter()
            .find(|(t, set)| *t >= since && !set.contains(name))
            .map(|(t, _)| *t)
    }

    fn metrics(&self, i: u8) -> MetricsSnapshot {
        self.nodes[&addr(i)].metrics.snapshot()
    }
}

fn names(ids: &[u8]) -> BTreeSet<String> {
    ids.iter().map(|i| format!("node-{i}")).collect()
}

/// Three members, each seeded with the first one only.
fn three() -> Sim {
    three_with(Tuning::default())
}

fn three_with(tuning: Tuning) -> Sim {
    let mut sim = Sim::new();
    sim.tuning = tuning;
    sim.add(1, KEY, &[1], 100);
    sim.add(2, KEY, &[1], 100);
    sim.add(3, KEY, &[1], 100);
    sim.run_for(Duration::from_secs(2));
    for i in 1..=3 {
        assert_eq!(sim.live(i), names(&[1, 2, 3]), "node-{i} after join");
    }
    sim
}

#[test]
fn members_find_each_other_through_one_seed() {
    let sim = three();
    for i in 1..=3 {
        let m = sim.metrics(i);
        assert_eq!(m.members, 3);
        assert_eq!(m.member_up, 2);
        assert_eq!(m.member_down, 0);
        assert_eq!(m.auth_failures, 0);
        assert!(m.messages_in > 0 && m.messages_out > 0);
    }
}

#[test]
fn steady_state_has_no_false_positives() {
    let mut sim = three();
    sim.run_for(Duration::from_secs(60));
    for i in 1..=3 {
        assert_eq!(sim.live(i), names(&[1, 2, 3]));
        assert_eq!(
            sim.metrics(i).member_down,
            0,
            "node-{i} saw a member go down"
        );
    }
}

#[test]
fn crashed_member_is_removed_by_the_others_within_a_second() {
    let mut sim = three();
    let t0 = sim.now;
    sim.crash(3);
    sim.run_for(Duration::from_secs(3));
    for i in 1..=2 {
        assert_eq!(sim.live(i), names(&[1, 2]), "node-{i}");
        let t = sim.dropped_at(i, "node-3", t0).expect("node-3 dropped");
        // Simulated time with 1 ms links: a protocol property of the default tuning.
        assert!(
            t - t0 < Duration::from_secs(1),
            "node-{i} took {:?}",
            t - t0
        );
        assert_eq!(sim.metrics(i).member_down, 1);
    }
}

#[test]
fn graceful_leave_reaches_every_member_directly() {
    let mut sim = three();
    let t0 = sim.now;
    sim.leave(3);
    assert!(sim.live(3).is_empty(), "the leaver's own set empties");
    sim.run_for(Duration::from_secs(1));
    for i in 1..=2 {
        assert_eq!(sim.live(i), names(&[1, 2]));
        // One network delay: the notice went straight to each member, not via gossip.
        assert_eq!(
            sim.dropped_at(i, "node-3", t0),
            Some(t0 + LATENCY),
            "node-{i}"
        );
        assert_eq!(
            sim.metrics(i).leaves_received,
            u64::from(Tuning::default().leave_repeats)
        );
    }
    // A left member stays gone (no probe of it can revive it).
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.live(1), names(&[1, 2]));
}

#[test]
fn leave_without_direct_notice_still_spreads_by_gossip() {
    let mut sim = three_with(Tuning {
        leave_repeats: 0,
        ..Tuning::default()
    });
    let t0 = sim.now;
    sim.leave(3);
    sim.run_for(Duration::from_secs(2));
    for i in 1..=2 {
        assert_eq!(sim.live(i), names(&[1, 2]), "node-{i}");
        assert_eq!(
            sim.metrics(i).leaves_received,
            0,
            "no direct notice was sent"
        );
        assert!(sim.dropped_at(i, "node-3", t0).is_some());
    }
}

#[test]
fn restarted_member_rejoins_with_a_new_identity() {
    let mut sim = three();
    sim.crash(3);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.live(1), names(&[1, 2]));
    // Same name and address, a later life.
    sim.add(3, KEY, &[1], 200);
    sim.run_for(Duration::from_secs(2));
    for i in 1..=3 {
        assert_eq!(sim.live(i), names(&[1, 2, 3]), "node-{i}");
    }
}

#[test]
fn isolated_member_rejoins_after_the_partition_heals() {
    let mut sim = three();
    sim.isolated.insert(addr(3));
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.live(1), names(&[1, 2]));
    assert_eq!(sim.live(3), names(&[3]), "node-3 alone sees only itself");
    sim.isolated.clear();
    sim.run_for(Duration::from_secs(5));
    for i in 1..=3 {
        assert_eq!(sim.live(i), names(&[1, 2, 3]), "node-{i} after heal");
    }
    assert!(
        sim.metrics(3).rejoins >= 1,
        "node-3 should have renewed its identity"
    );
}

#[test]
fn member_with_the_wrong_key_is_never_admitted() {
    let mut sim = three();
    sim.add(4, b"another-cluster-key-0000000000000", &[1, 2], 100);
    sim.run_for(Duration::from_secs(5));
    for i in 1..=3 {
        assert_eq!(sim.live(i), names(&[1, 2, 3]), "node-{i}");
    }
    assert_eq!(sim.live(4), names(&[4]));
    let dropped: u64 = (1..=2).map(|i| sim.metrics(i).auth_failures).sum();
    assert!(
        dropped >= 2,
        "announces from node-4 must be counted, got {dropped}"
    );
    assert!(sim.metrics(4).messages_out > 0, "node-4 did try");
}

#[test]
fn garbage_and_unknown_kinds_are_counted_and_ignored() {
    let mut sim = three();
    let n = sim.nodes.get_mut(&addr(1)).unwrap();
    let out = n.core.handle_datagram(
        addr(9),
        b"not a membership datagram at all, no tag",
        sim.now,
    );
    assert!(out.is_empty());
    // Authenticated but not a SWIM message.
    let key = Key::new(KEY);
    let out = n
        .core
        .handle_datagram(addr(9), &key.seal(Kind::Swim, &[0xff; 40]), sim.now);
    assert!(out.is_empty());
    let out = n
        .core
        .handle_datagram(addr(9), &key.seal(Kind::Leave, &[0x01]), sim.now);
    assert!(out.is_empty());
    let m = n.metrics.snapshot();
    assert_eq!(m.auth_failures, 1);
    assert_eq!(m.malformed, 2);
    assert_eq!(sim.live(1), names(&[1, 2, 3]));
}

#[test]
fn bad_tuning_is_rejected() {
    let t = Tuning {
        probe_rtt: Duration::from_millis(600),
        ..Tuning::default()
    };
    assert!(matches!(foca_config(&t), Err(MembershipError::Tuning(_))));
    let t = Tuning {
        gossip_fanout: 0,
        ..Tuning::default()
    };
    assert!(matches!(foca_config(&t), Err(MembershipError::Tuning(_))));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Authenticated garbage (a member with the key but a broken encoder) reaches foca's
    /// decoder: it must be counted and dropped, never panic, never change the live set.
    #[test]
    fn authenticated_garbage_never_panics(
        kind in proptest::prelude::prop_oneof![
            proptest::prelude::Just(Kind::Swim),
            proptest::prelude::Just(Kind::Leave),
            proptest::prelude::Just(Kind::Heartbeat),
            proptest::prelude::Just(Kind::Probe),
            proptest::prelude::Just(Kind::ProbeAck),
            proptest::prelude::Just(Kind::Dead)
        ],
        payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let metrics = Arc::new(Metrics::default());
        let id = NodeId { name: "node-1".into(), addr: addr(1), bump: 1 };
        let mut core = Core::new(id, KEY, vec![], Tuning::default(), 1, metrics.clone()).unwrap();
        let _ = core.start(Duration::ZERO);
        let _ = core.handle_datagram(addr(2), &Key::new(KEY).seal(kind, &payload), Duration::ZERO);
        let m = metrics.snapshot();
        proptest::prop_assert_eq!(m.auth_failures, 0);
        // Either rejected as malformed, or a well-formed message from a new member (the
        // payload happened to decode); never a crash.
        proptest::prop_assert!(core.live().contains("node-1"));
    }
}

/// The default tuning's crash detection, at 30 members over a network that loses 1% of
/// datagrams and delays each by 1-11 ms: every member drops a crashed one within 250 ms
/// (ring monitor: heartbeat timeout 160 ms + confirmation 40 ms + delivery); no live
/// member is ever dropped, during the ten crashes nor in a minute of that network after.
#[test]
fn ring_monitor_detects_crashes_in_time_without_false_positives_under_loss() {
    let mut sim = Sim::new();
    sim.loss = 0.01;
    sim.jitter = Duration::from_millis(5);
    let n = 30u8;
    for i in 1..=n {
        sim.add(i, KEY, &[1, 2], 100);
        sim.run_for(Duration::from_millis(3));
    }
    sim.run_for(Duration::from_secs(10));
    let all: Vec<u8> = (1..=n).collect();
    for i in 1..=n {
        assert_eq!(sim.live(i), names(&all), "node-{i} after join");
    }
    let mut worst = Duration::ZERO;
    for (k, victim) in [3u8, 17, 29, 8, 22, 11, 1, 26, 14, 5]
        .into_iter()
        .enumerate()
    {
        sim.run_for(Duration::from_micros(37_123 * (k as u64 + 1)));
        let t0 = sim.now;
        sim.crash(victim);
        sim.run_for(Duration::from_secs(2));
        for i in (1..=n).filter(|i| *i != victim) {
            // Nobody else left any live set (a false positive).
            let mut expected = names(&all);
            expected.remove(&format!("node-{victim}"));
            for (t, set) in &sim.nodes[&addr(i)].history {
                assert!(
                    *t < t0 || set.is_superset(&expected),
                    "node-{i} at {t:?}: {set:?}"
                );
            }
            let t = sim
                .dropped_at(i, &format!("node-{victim}"), t0)
                .unwrap_or_else(|| panic!("node-{i} never dropped node-{victim}"));
            worst = worst.max(t - t0);
        }
        // Restart it (a new life) and let it rejoin before the next crash.
        sim.add(victim, KEY, &[1, 2], 200 + k as u64);
        sim.run_for(Duration::from_secs(3));
        for i in 1..=n {
            assert_eq!(
                sim.live(i),
                names(&all),
                "node-{i} after node-{victim} rejoined"
            );
        }
    }
    assert!(
        worst < Duration::from_millis(250),
        "worst detection {worst:?}"
    );
    let t_soak = sim.now;
    sim.run_for(Duration::from_secs(60));
    for i in 1..=n {
        for (t, set) in &sim.nodes[&addr(i)].history {
            assert!(
                *t < t_soak || *set == names(&all),
                "node-{i} at {t:?}: {set:?}"
            );
        }
    }
}
