//! Reconnect backoff of the watches: 100 ms doubling to a cap of 1 s, each delay jittered so
//! that reconnects after an API server outage do not arrive in lockstep. kube-runtime's
//! default (800 ms .. 30 s) left a binary blind for up to 30 s after an outage; with this one
//! it is back within about a second of the API server.
//!
//! Reset on every successful item (kube-runtime's `StreamBackoff` does that).

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// First delay.
pub const FIRST: Duration = Duration::from_millis(100);
/// Cap of the delay (before jitter).
pub const CAP: Duration = Duration::from_secs(1);

/// Capped exponential backoff with jitter. See the module documentation.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    attempt: u32,
    /// Each delay is scaled by `1 + jitter * r`, `r` uniform in `[0, 1)`.
    jitter: f64,
    /// Source of `r`; replaced in tests.
    rand: fn() -> f64,
}

fn thread_rand() -> f64 {
    rand::random::<f64>()
}

impl WatchBackoff {
    /// A backoff whose delays are scaled by `1 + jitter * r`, `r` uniform in `[0, 1)`:
    /// a negative `jitter` shortens them (never later than the schedule: the controller,
    /// -0.2), a positive one lengthens them (spreads many clients wider: the speakers,
    /// +0.25).
    pub fn new(jitter: f64) -> Self {
        Self::with_rand(jitter, thread_rand)
    }

    /// [`WatchBackoff::new`] with `r` from `rand` (values in `[0, 1)`).
    pub fn with_rand(jitter: f64, rand: fn() -> f64) -> Self {
        Self {
            attempt: 0,
            jitter,
            rand,
        }
    }

    /// The un-jittered delay of attempt `n` (0-based).
    pub fn base(n: u32) -> Duration {
        FIRST.saturating_mul(1u32 << n.min(8)).min(CAP)
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = Self::base(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let r = (self.rand)().clamp(0.0, 1.0);
        Some(base.mul_f64((1.0 + self.jitter * r).max(0.0)))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_100ms_and_caps_at_1s() {
        let mut b = WatchBackoff::with_rand(-0.2, || 0.0);
        let got: Vec<u128> = (&mut b).take(8).map(|d| d.as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        // Long outages stay at the cap (no overflow after many attempts).
        assert_eq!(b.nth(1000), Some(CAP));
    }

    #[test]
    fn negative_jitter_shortens_by_at_most_its_fraction() {
        let mut b = WatchBackoff::with_rand(-0.2, || 0.999_999);
        let d = b.nth(10).unwrap();
        assert!(d >= Duration::from_millis(800) && d < CAP, "{d:?}");
        // Real randomness: every delay within [0.8 * base, base].
        let mut b = WatchBackoff::new(-0.2);
        for n in 0..50 {
            let d = b.next().unwrap();
            let base = WatchBackoff::base(n);
            assert!(d <= base && d >= base.mul_f64(0.8), "{n}: {d:?}");
        }
    }

    #[test]
    fn positive_jitter_lengthens_by_at_most_its_fraction_and_varies() {
        let mut b = WatchBackoff::new(0.25);
        let delays: Vec<Duration> = (&mut b).take(20).collect();
        for (n, d) in delays.iter().enumerate() {
            let base = WatchBackoff::base(n as u32);
            assert!(*d >= base && *d <= base.mul_f64(1.25), "{n}: {d:?}");
        }
        let distinct: std::collections::BTreeSet<Duration> = delays[10..].iter().copied().collect();
        assert!(distinct.len() > 5, "no jitter: {delays:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut b = WatchBackoff::with_rand(0.25, || 0.0);
        b.nth(6);
        b.reset();
        assert_eq!(b.next(), Some(FIRST));
    }
}
