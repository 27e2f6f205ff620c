//! Flood resistance, pure: a token bucket per source MAC and a bounded two-level reply queue.
//! The caller passes `now`; nothing here reads a clock.
//!
//! - **Per-source bucket**: each source MAC may have `burst` replies at once and `rate` per
//!   second after that. A flooding host empties its own bucket; other hosts keep theirs.
//! - **Bounded table**: at most `max_sources` buckets. When full, an idle source (bucket full
//!   again) is forgotten to make room; if none is idle, new sources share one overflow
//!   bucket, so a flood of spoofed source MACs is limited as a whole.
//! - **Two-level queue**: replies to sources that are still well inside their budget
//!   ("quiet": at least half the burst left) go out before replies to busy sources. When
//!   the queue is full a quiet reply evicts the oldest busy one; a busy reply is dropped.
//! - **Kernel block**: a source whose bucket is empty is dropped by the socket's kernel
//!   filter for `block_for` (the machine decides, the driver rewrites the filter), so a
//!   flood costs the responder no wake-up while it lasts.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::packet::MacAddr;

/// Limits of the flood protection. `Default` is sized for a busy segment: a router
/// resolving a few hundred Service IPs at once stays well inside one source's burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Replies per second one source MAC may get after its burst.
    pub per_source_rate: f64,
    /// Replies one source may get at once.
    pub per_source_burst: f64,
    /// Source MACs remembered; beyond that new sources share one bucket.
    pub max_sources: usize,
    /// Replies waiting to be sent at once (quiet and busy together).
    pub queue_capacity: usize,
    /// How long the kernel filter drops the frames of a source once its bucket is empty
    /// (then it gets what its bucket refilled meanwhile; if it still floods, it is blocked
    /// again). At most [`MAX_BLOCKED_SOURCES`] at a time; `Duration::ZERO` never blocks.
    pub block_for: Duration,
}

/// Most sources blocked in the kernel filter at once (the cBPF program grows by 4
/// instructions per source and its jumps are 8-bit).
pub const MAX_BLOCKED_SOURCES: usize = 32;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_source_rate: 200.0,
            per_source_burst: 400.0,
            max_sources: 4096,
            queue_capacity: 1024,
            block_for: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, limits: &Limits, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * limits.per_source_rate).min(limits.per_source_burst);
        self.last = now;
    }
}

/// Whether a reply may be sent, and how urgently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The source has at least half its burst left.
    Quiet,
    /// The source is using its budget up; still within it.
    Busy,
    /// The source's bucket is empty: no reply.
    Limited,
}

/// The per-source token buckets.
#[derive(Debug)]
pub struct SourceLimiter {
    limits: Limits,
    buckets: HashMap<MacAddr, Bucket>,
    overflow: Option<Bucket>,
}

impl SourceLimiter {
    pub fn new(limits: Limits) -> SourceLimiter {
        SourceLimiter {
            limits,
            buckets: HashMap::new(),
            overflow: None,
        }
    }

    /// Takes one token from `source`'s bucket if it has one.
    pub fn admit(&mut self, source: MacAddr, now: Instant) -> Admit {
        let limits = self.limits;
        if !self.buckets.contains_key(&source) && self.buckets.len() >= limits.max_sources {
            self.forget_idle(now);
        }
        let bucket =
            if self.buckets.len() < limits.max_sources || self.buckets.contains_key(&source) {
                self.buckets
                    .entry(source)
                    .or_insert_with(|| Bucket::full(limits.per_source_burst, now))
            } else {
                self.overflow
                    .get_or_insert_with(|| Bucket::full(limits.per_source_burst, now))
            };
        bucket.refill(&limits, now);
        if bucket.tokens < 1.0 {
            return Admit::Limited;
        }
        bucket.tokens -= 1.0;
        if bucket.tokens >= limits.per_source_burst / 2.0 {
            Admit::Quiet
        } else {
            Admit::Busy
        }
    }

    /// Drops the buckets that have filled up again (their sources went quiet).
    fn forget_idle(&mut self, now: Instant) {
        let limits = self.limits;
        self.buckets.retain(|_, b| {
            b.refill(&limits, now);
            b.tokens < limits.per_source_burst
        });
    }

    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

/// What happened when a reply was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Yes,
    /// Queued, and the oldest busy reply was dropped to make room.
    Evicted,
    /// Not queued: the queue is full of replies at least as urgent.
    Full,
}

/// The bounded two-level queue of replies waiting to be sent.
#[derive(Debug)]
pub struct ReplyQueue<T> {
    capacity: usize,
    quiet: VecDeque<T>,
    busy: VecDeque<T>,
}

impl<T> ReplyQueue<T> {
    pub fn new(capacity: usize) -> ReplyQueue<T> {
        ReplyQueue {
            capacity: capacity.max(1),
            quiet: VecDeque::new(),
            busy: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.quiet.len() + self.busy.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `item` at the level `admit` says (`Limited` is never queued: `Full`).
    pub fn push(&mut self, item: T, admit: Admit) -> Queued {
        let full = self.len() >= self.capacity;
        match admit {
            Admit::Limited => Queued::Full,
            Admit::Busy if full => Queued::Full,
            Admit::Busy => {
                self.busy.push_back(item);
                Queued::Yes
            }
            Admit::Quiet if !full => {
                self.quiet.push_back(item);
                Queued::Yes
            }
            Admit::Quiet => {
                if self.busy.pop_front().is_some() {
                    self.quiet.push_back(item);
                    Queued::Evicted
                } else {
                    Queued::Full
                }
            }
        }
    }

    /// Keeps only the queued items `keep` accepts; returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let before = self.len();
        self.quiet.retain(&mut keep);
        self.busy.retain(&mut keep);
        before - self.len()
    }

    /// Everything queued, quiet sources first, each level in arrival order.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.quiet.drain(..).chain(self.busy.drain(..))
    }
}

/// Rate limit for conflict reports: at most one per (IP, other MAC) per `interval`; the
/// frames in between are counted and reported with the next report.
#[derive(Debug)]
pub struct ConflictLog<K> {
    interval: Duration,
    last: HashMap<K, (Instant, u64)>,
}

/// How many conflict keys are remembered before the table is trimmed.
const CONFLICT_KEYS: usize = 1024;

impl<K: std::hash::Hash + Eq + Clone> ConflictLog<K> {
    pub fn new(interval: Duration) -> ConflictLog<K> {
        ConflictLog {
            interval,
            last: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when `key` is due to be reported (`suppressed` = conflicting
    /// frames seen since its last report), `None` while it is inside its interval.
    pub fn note(&mut self, key: K, now: Instant) -> Option<u64> {
        if let Some((at, n)) = self.last.get_mut(&key) {
            if now.saturating_duration_since(*at) < self.interval {
                *n += 1;
                return None;
            }
            let suppressed = *n;
            *at = now;
            *n = 0;
            return Some(suppressed);
        }
        if self.last.len() >= CONFLICT_KEYS {
            let interval = self.interval;
            self.last
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < interval);
            if self.last.len() >= CONFLICT_KEYS {
                // Every remembered key is recent (a flood of forged MACs): stay quiet rather
                // than log once per forged MAC; the frames are still counted by the caller.
                return None;
            }
        }
        self.last.insert(key, (now, 0));
        Some(0)
    }
}
