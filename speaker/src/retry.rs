//! Retrying failed driver calls (pure): which failed calls to make again, and when.
//!
//! A driver call can fail for a passing reason (a socket not ready yet, an interface
//! flapping). The failed [`Action`]s are kept here and made again after an exponential
//! backoff (200 ms doubling to 10 s, each delay × [0.75, 1]) until they succeed. A new plan
//! that touches the same object supersedes the stale retry. No clock, no I/O: the run loop
//! passes `now` and the jitter.

use std::net::IpAddr;
use std::time::Duration;

use ferrolb_bgp::PeerKey;
use tokio::time::Instant;

use crate::plan::Action;

/// First retry delay.
pub const BASE: Duration = Duration::from_millis(200);
/// Longest retry delay.
pub const CAP: Duration = Duration::from_secs(10);

/// A driver call that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Failed {
    pub action: Action,
    /// `l2`, `bgp` or `bfd` (the metric label).
    pub driver: &'static str,
    pub error: String,
}

/// The delay before retry number `attempt` (0-based); `jitter` in [0, 1] shortens it by up
/// to a quarter so that many speakers do not retry in step.
pub fn delay(attempt: u32, jitter: f64) -> Duration {
    let full = BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP);
    full.mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0))
}

/// What one action changes: two actions with the same key act on the same object.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Iface(String),
    Bgp(PeerKey),
    Bfd(IpAddr),
    Routes(PeerKey),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Iface(name) => write!(f, "interface {name}"),
            Key::Bgp(peer) => write!(f, "BGP peer {peer}"),
            Key::Bfd(peer) => write!(f, "BFD session to {peer}"),
            Key::Routes(peer) => write!(f, "routes to BGP peer {peer}"),
        }
    }
}

/// What `a` acts on, in words (`interface eth0`, `BGP peer 192.0.2.1`, ...).
pub fn target(a: &Action) -> String {
    key(a).to_string()
}

fn key(a: &Action) -> Key {
    match a {
        Action::SetOwned { iface, .. } => Key::Iface(iface.clone()),
        Action::RemovePeer { peer } => Key::Bgp(peer.clone()),
        Action::AddPeer(p) | Action::UpdatePeer(p) => Key::Bgp(crate::plan::peer_key(p)),
        Action::RemoveBfd { peer }
        | Action::AddBfd { peer, .. }
        | Action::SetBfdProfile { peer, .. } => Key::Bfd(*peer),
        Action::SetRoutes { peer, .. } => Key::Routes(peer.clone()),
    }
}

/// The failed calls waiting for their retry.
#[derive(Debug, Default)]
pub struct Retry {
    pending: Vec<Failed>,
    attempt: u32,
    next: Option<Instant>,
}

impl Retry {
    /// When the next retry is due (`None`: nothing to retry).
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// The last error of each call still failing.
    pub fn pending(&self) -> &[Failed] {
        &self.pending
    }

    /// A new plan is about to be applied: retries of the objects it touches are stale.
    pub fn supersede(&mut self, actions: &[Action]) {
        let keys: Vec<Key> = actions.iter().map(key).collect();
        self.pending.retain(|f| !keys.contains(&key(&f.action)));
        if self.pending.is_empty() {
            *self = Retry::default();
        }
    }

    /// The actions to make again now (empty before they are due). An `AddPeer` is retried
    /// as `UpdatePeer` (which adds the peer when the speaker does not know it).
    pub fn take_due(&mut self, now: Instant) -> Vec<Action> {
        if self.next.is_none_or(|t| t > now) {
            return Vec::new();
        }
        self.next = None;
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|f| match f.action {
                Action::AddPeer(p) => Action::UpdatePeer(p),
                other => other,
            })
            .collect()
    }

    /// Records the calls that failed in an apply (a plan or a retry). Success of every
    /// pending call resets the backoff.
    pub fn record(&mut self, failed: Vec<Failed>, now: Instant, jitter: f64) {
        self.pending.extend(failed);
        if self.pending.is_empty() {
            *self = Retry::default();
        } else if self.next.is_none() {
            self.next = Some(now + delay(self.attempt, jitter));
            self.attempt = self.attempt.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn set_owned(iface: &str) -> Action {
        Action::SetOwned {
            iface: iface.into(),
            ips: BTreeSet::new(),
        }
    }

    fn failed(a: Action) -> Failed {
        Failed {
            action: a,
            driver: "l2",
            error: "boom".into(),
        }
    }

    #[test]
    fn delay_doubles_from_200ms_to_10s_with_jitter_at_most_a_quarter() {
        let d: Vec<u64> = (0..9).map(|a| delay(a, 0.0).as_millis() as u64).collect();
        assert_eq!(d, [200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000]);
        assert_eq!(delay(0, 1.0), Duration::from_millis(150));
        assert_eq!(delay(u32::MAX, 0.0), CAP);
    }

    #[test]
    fn failures_back_off_until_they_succeed() {
        let t0 = Instant::now();
        let mut r = Retry::default();
        r.record(vec![failed(set_owned("eth0"))], t0, 0.0);
        assert_eq!(r.next(), Some(t0 + Duration::from_millis(200)));
        assert!(r.take_due(t0).is_empty(), "not due yet");
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(r.take_due(t1), [set_owned("eth0")]);
        assert_eq!(r.next(), None);
        // Fails again: the next delay is twice as long.
        r.record(vec![failed(set_owned("eth0"))], t1, 0.0);
        assert_eq!(r.next(), Some(t1 + Duration::from_millis(400)));
        let t2 = t1 + Duration::from_millis(400);
        assert_eq!(r.take_due(t2).len(), 1);
        // Succeeds: nothing pending, the backoff starts over.
        r.record(Vec::new(), t2, 0.0);
        assert_eq!(r.next(), None);
        r.record(vec![failed(set_owned("eth1"))], t2, 0.0);
        assert_eq!(r.next(), Some(t2 + Duration::from_millis(200)));
    }

    #[test]
    fn a_new_plan_for_the_same_object_supersedes_the_retry() {
        let t0 = Instant::now();
        let mut r = Retry::default();
        r.record(
            vec![failed(set_owned("eth0")), failed(set_owned("eth1"))],
            t0,
            0.0,
        );
        r.supersede(&[set_owned("eth0")]);
        assert_eq!(r.pending().len(), 1);
        r.supersede(&[set_owned("eth1")]);
        assert_eq!(r.next(), None);
    }

    #[test]
    fn a_second_failure_before_the_retry_keeps_the_due_time() {
        let t0 = Instant::now();
        let mut r = Retry::default();
        r.record(vec![failed(set_owned("eth0"))], t0, 0.0);
        r.record(
            vec![failed(set_owned("eth1"))],
            t0 + Duration::from_millis(50),
            0.0,
        );
        assert_eq!(r.next(), Some(t0 + Duration::from_millis(200)));
        assert_eq!(r.take_due(t0 + Duration::from_millis(200)).len(), 2);
    }
}
