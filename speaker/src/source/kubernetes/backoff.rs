//! How the reflectors come back after an API server outage: a short, capped, jittered
//! backoff (kube-runtime's default grows to 30 s, so a speaker could miss a Service for half
//! a minute after the API server returned), and which watch errors are routine.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use kube::runtime::utils::Backoff;
use kube::runtime::watcher;

/// First retry delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Largest delay before jitter: a returning API server is seen within about a second.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Each delay gets up to this fraction of itself added, so that a thousand speakers do not
/// re-list in the same instant.
pub const JITTER: f64 = 0.25;

/// Exponential backoff 100 ms, 200 ms, ... capped at 1 s, each delay plus up to 25 % jitter;
/// reset by the watcher after every successful event.
#[derive(Debug)]
pub struct WatchBackoff {
    next: Duration,
    random: RandomState,
    count: u64,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff {
            next: BACKOFF_MIN,
            random: RandomState::new(),
            count: 0,
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        self.count = self.count.wrapping_add(1);
        // A uniform fraction in [0, 1) from a randomly keyed hash (no RNG dependency needed).
        let unit = (self.random.hash_one(self.count) >> 11) as f64 / (1u64 << 53) as f64;
        Some(base + base.mul_f64(JITTER * unit))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Whether a watch error is the API server's 410 Gone (resource version too old): the
/// watcher simply lists again, nothing is wrong.
pub fn is_gone(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(status) => status.code == 410,
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::InitialListFailed(kube::Error::Api(status)) => status.code == 410,
        _ => false,
    }
}
