//! Membership cost and crash detection at scale, in one process, in simulated time.
//!
//! N members (the real [`Core`]: foca SWIM, HMAC-SHA256, ring monitor) exchange their
//! datagrams through a simulated network with per-datagram delay, jitter and loss, on a
//! virtual clock (no sockets, no sleeps: results depend only on the seed). Measures:
//!
//! - bytes/s per member, sent and received (UDP payload; add 28 bytes per datagram for
//!   IPv4 + UDP headers), over a steady-state window after the cluster converged;
//! - crash detection: a random member stops (no leave), the time until the first and until
//!   every other member dropped it from its live set; it then restarts with a new identity
//!   and the next trial waits until every member sees it again;
//! - false positives: any live set losing a member that was not stopped.
//!
//! What it does not model: CPU scheduling delays of a busy host (each member here answers
//! instantly), so compare with `bench/membership/run.sh` for real processes.
//!
//! ```text
//! cargo run --release -p ferrolb-speaker --example membership_sim -- \
//!     --members 100 --trials 50 --profile fast --loss 0.01 --delay-ms 5 --jitter-ms 5
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use clap::builder::PossibleValuesParser;
use ferrolb_speaker::membership::{Core, CoreTimer, Metrics, NodeId, Output, Tuning};

const KEY: &[u8] = b"ferrolb-membership-sim-key-00001";

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 10)]
    members: usize,
    #[arg(long, default_value_t = 30)]
    trials: usize,
    /// Timers: one of `Tuning::NAMES` (see `Tuning::named`).
    #[arg(long, default_value = "fast", value_parser = PossibleValuesParser::new(Tuning::NAMES))]
    profile: String,
    /// Probability that a datagram is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// One-way delay (ms) and its jitter (uniform in delay ± jitter).
    #[arg(long, default_value_t = 0.2)]
    delay_ms: f64,
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Steady-state window for the byte count (simulated seconds).
    #[arg(long, default_value_t = 20)]
    window_s: u64,
    /// Extra idle time after the trials, for false positives (simulated seconds).
    #[arg(long, default_value_t = 0)]
    soak_s: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Members start this far apart (ms).
    #[arg(long, default_value_t = 2)]
    stagger_ms: u64,
}

/// splitmix64: small, seeded, good enough for loss and jitter draws.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum Ev {
    Datagram { from: SocketAddr, data: Vec<u8> },
    Timer(CoreTimer),
}

struct Member {
    core: Core,
    metrics: Arc<Metrics>,
    up: bool,
    life: u64,
}

struct Sim {
    now: Duration,
    seq: u64,
    heap: BinaryHeap<Reverse<(Duration, u64)>>,
    events: HashMap<u64, (usize, u64, Ev)>,
    members: Vec<Member>,
    index: HashMap<SocketAddr, usize>,
    tuning: Tuning,
    rng: Rng,
    loss: f64,
    delay: f64,
    jitter: f64,
    /// (time, observer, name) for every name that left an observer's live set.
    drops: Vec<(Duration, usize, String)>,
    live_sizes: Vec<usize>,
    size: usize,
}

fn addr(i: usize) -> SocketAddr {
    // 198.18.0.0/15: the benchmarking range (RFC 2544); never on a wire here anyway.
    SocketAddr::from((
        Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8),
        7946,
    ))
}

impl Sim {
    fn new(args: &Args, tuning: Tuning) -> Self {
        Sim {
            now: Duration::ZERO,
            seq: 0,
            heap: BinaryHeap::new(),
            events: HashMap::new(),
            members: Vec::new(),
            index: HashMap::new(),
            tuning,
            rng: Rng(args.seed),
            loss: args.loss,
            delay: args.delay_ms,
            jitter: args.jitter_ms,
            drops: Vec::new(),
            live_sizes: Vec::new(),
            size: args.members,
        }
    }

    /// Starts member `i` with every member as a seed (as the speaker does in Kubernetes:
    /// every speaker Pod's IP), so a (re)started member learns the whole cluster at once.
    fn start_member(&mut self, i: usize, life: u64) {
        let seeds = (0..self.size).map(addr).filter(|a| *a != addr(i)).collect();
        let id = NodeId {
            name: format!("node-{i}"),
            addr: addr(i),
            bump: life,
        };
        let metrics = Arc::new(Metrics::default());
        let seed = self.rng.next();
        let mut core = Core::new(id, KEY, seeds, self.tuning.clone(), seed, metrics.clone())
            .expect("valid tuning");
        let out = core.start(self.now);
        let m = Member {
            core,
            metrics,
            up: true,
            life,
        };
        if i < self.members.len() {
            self.members[i] = m;
        } else {
            self.members.push(m);
            self.live_sizes.push(1);
            self.index.insert(addr(i), i);
        }
        self.apply(i, out);
    }

    fn push(&mut self, at: Duration, node: usize, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        let life = self.members[node].life;
        self.events.insert(self.seq, (node, life, ev));
    }

    fn apply(&mut self, node: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send { to, data } => {
                    let Some(&dst) = self.index.get(&to) else {
                        continue;
                    };
                    if self.rng.unit() < self.loss {
                        continue;
                    }
                    let ms = (self.delay + self.jitter * (2.0 * self.rng.unit() - 1.0)).max(0.01);
                    let at = self.now + Duration::from_secs_f64(ms / 1000.0);
                    let from = addr(node);
                    self.push(at, dst, Ev::Datagram { from, data });
                }
                Output::Schedule { after, timer } => {
                    self.push(self.now + after, node, Ev::Timer(timer))
                }
                Output::Live(set) => self.live_sizes[node] = set.len(),
            }
        }
    }

    fn run_until(&mut self, end: Duration) {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > end {
                break;
            }
            self.heap.pop();
            self.now = at;
            let (node, life, ev) = self.events.remove(&seq).expect("queued");
            let m = &mut self.members[node];
            // Datagrams to a stopped member are lost; timers of an earlier life are void.
            if !m.up || (matches!(ev, Ev::Timer(_)) && m.life != life) {
                continue;
            }
            let before: BTreeSet<String> = m.core.live().clone();
            let out = match ev {
                Ev::Datagram { from, data } => m.core.handle_datagram(from, &data, at),
                Ev::Timer(t) => m.core.handle_timer(t, at),
            };
            if out.iter().any(|o| matches!(o, Output::Live(_))) {
                let after = m.core.live();
                for gone in before.difference(after) {
                    self.drops.push((at, node, gone.clone()));
                }
            }
            self.apply(node, out);
        }
        self.now = end;
    }

    fn converged(&self) -> bool {
        let n = self.members.len();
        self.members
            .iter()
            .zip(&self.live_sizes)
            .all(|(m, s)| !m.up || *s == n)
    }

    fn run_until_converged(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while self.now < end {
            let step = self.now + Duration::from_millis(10);
            self.run_until(step);
            if self.converged() {
                return true;
            }
        }
        false
    }

    fn bytes(&self) -> (u64, u64) {
        self.members.iter().fold((0, 0), |(i, o), m| {
            let s = m.metrics.snapshot();
            (i + s.bytes_in, o + s.bytes_out)
        })
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0 * (s.len() - 1) as f64).round() as usize).min(s.len() - 1);
    s[k]
}

fn main() {
    let args = Args::parse();
    let tuning = Tuning::named(&args.profile).expect("clap checked --profile");
    let n = args.members;
    let mut sim = Sim::new(&args, tuning);
    for i in 0..n {
        sim.start_member(i, 1);
        // Start members apart, as a rollout would (and to spread their timers).
        let t = sim.now + Duration::from_millis(args.stagger_ms);
        sim.run_until(t);
    }
    let converged = sim.run_until_converged(Duration::from_secs(120));
    let dead: u64 = sim
        .members
        .iter()
        .map(|m| m.metrics.snapshot().declared_dead)
        .sum();
    eprintln!("declared dead during the join: {dead}");
    assert!(
        converged,
        "cluster of {n} did not converge in 120 s (simulated)"
    );
    let t_conv = sim.now;
    // Let join gossip settle, then count bytes over the window.
    let t = sim.now + Duration::from_secs(5);
    sim.run_until(t);
    let (in0, out0) = sim.bytes();
    let t = sim.now + Duration::from_secs(args.window_s);
    sim.run_until(t);
    let (in1, out1) = sim.bytes();
    let per = |b: u64| b as f64 / n as f64 / args.window_s as f64;
    let (bin, bout) = (per(in1 - in0), per(out1 - out0));
    let drops_before = sim.drops.len();

    let mut first = Vec::new();
    let mut all = Vec::new();
    let mut undetected = 0;
    let mut fps = 0;
    for trial in 0..args.trials {
        let victim = (sim.rng.next() as usize) % n;
        let name = format!("node-{victim}");
        // Crash at a random phase of every timer.
        let t = sim.now + Duration::from_micros(sim.rng.next() % 100_000);
        sim.run_until(t);
        let t0 = sim.now;
        let mark = sim.drops.len();
        sim.members[victim].up = false;
        let mut done = false;
        let deadline = t0 + Duration::from_secs(30);
        while sim.now < deadline {
            let t = sim.now + Duration::from_millis(5);
            sim.run_until(t);
            let seen: BTreeSet<usize> = sim.drops[mark..]
                .iter()
                .filter(|(_, _, g)| *g == name)
                .map(|(_, o, _)| *o)
                .collect();
            if seen.len() == n - 1 {
                done = true;
                break;
            }
        }
        let times: Vec<f64> = sim.drops[mark..]
            .iter()
            .filter(|(_, _, g)| *g == name)
            .map(|(t, _, _)| (*t - t0).as_secs_f64() * 1000.0)
            .collect();
        fps += sim.drops[mark..]
            .iter()
            .filter(|(_, _, g)| *g != name)
            .count();
        if done {
            first.push(times.iter().copied().fold(f64::INFINITY, f64::min));
            all.push(times.iter().copied().fold(0.0, f64::max));
        } else {
            undetected += 1;
        }
        let life = sim.members[victim].life + 1 + trial as u64;
        sim.start_member(victim, life);
        sim.members[victim].life = life;
        let mark = sim.drops.len();
        if !sim.run_until_converged(Duration::from_secs(60)) {
            eprintln!("trial {trial}: no convergence after restarting {name}");
        }
        fps += sim.drops[mark..]
            .iter()
            .filter(|(_, _, g)| *g != name)
            .count();
    }
    let mark = sim.drops.len();
    let t = sim.now + Duration::from_secs(args.soak_s);
    sim.run_until(t);
    let soak_fps = sim.drops.len() - mark;
    fps += drops_before;
    println!(
        "members={n} profile={} loss={} delay_ms={} jitter_ms={} seed={} converged_at_s={:.1} \
         simulated_s={:.0}",
        args.profile,
        args.loss,
        args.delay_ms,
        args.jitter_ms,
        args.seed,
        t_conv.as_secs_f64(),
        sim.now.as_secs_f64()
    );
    println!(
        "bytes/s per member (UDP payload): in {bin:.0}, out {bout:.0}, in+out {:.0}",
        bin + bout
    );
    for (what, v) in [("first member", &first), ("every member", &all)] {
        println!(
            "crash detected by {what}: n={} p50={:.0} p95={:.0} p99={:.0} max={:.0} ms",
            v.len(),
            pct(v, 50.0),
            pct(v, 95.0),
            pct(v, 99.0),
            pct(v, 100.0)
        );
    }
    println!(
        "undetected within 30 s: {undetected}; false positives: {fps} during trials, \
         {soak_fps} in a {} s idle soak",
        args.soak_s
    );
}
