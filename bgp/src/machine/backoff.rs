//! Jittered exponential delays (pure): the connect-retry backoff and the idle hold-off of
//! RFC 4271 §8.1.1 (DampPeerOscillations).

use std::time::Duration;

/// `min · 2^n`, capped at `max`, each delay multiplied by a factor in [0.75, 1] (RFC 4271
/// §10: jitter so that peers do not retry in lock step). `n` counts the delays handed out
/// since the last [`Backoff::reset`].
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    steps: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            min: min.min(max),
            max,
            steps: 0,
            rng: seed | 1,
        }
    }

    /// The next delay; the one after it is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.steps.min(16))
            .min(self.max);
        self.steps = self.steps.saturating_add(1);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.75 + 0.25 * ((self.rng >> 11) as f64 / (1u64 << 53) as f64);
        base.mul_f64(jitter)
    }

    /// Starts over from `min`.
    pub fn reset(&mut self) {
        self.steps = 0;
    }

    /// Delays handed out since the last reset.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Changes the cap (and lowers `min` to it if needed); the step count is kept.
    pub fn set_max(&mut self, max: Duration) {
        self.max = max;
        self.min = self.min.min(max);
    }
}
