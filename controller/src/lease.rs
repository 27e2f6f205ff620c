//! Leader election on a `coordination.k8s.io/v1` Lease: the pure decision.
//!
//! kube 5 has no leader election of its own. The rules (those of client-go's
//! `leaderelection`): a Lease whose holder has not renewed within its `leaseDurationSeconds`
//! is free; whoever updates it first (optimistic concurrency on `resourceVersion`) becomes
//! the holder; the holder renews every few seconds; on clean shutdown it releases the Lease
//! (empty holder, 1 s duration) so the standby takes over at once.
//!
//! [`decide`] is a function of the clock, the identity and the Lease as read; the adapter in
//! [`crate::kubernetes::lease`] does the reads and writes.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Timing of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseParams {
    /// `leaseDurationSeconds` written by the holder (15 s).
    pub duration: Duration,
    /// How often the holder renews (5 s).
    pub renew_every: Duration,
    /// How often a standby retries (2 s).
    pub retry_every: Duration,
}

impl Default for LeaseParams {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }
}

/// The fields of a Lease the decision needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseView {
    /// `spec.holderIdentity` (`None` or empty: free).
    pub holder: Option<String>,
    /// `spec.renewTime`.
    pub renew_time: Option<Timestamp>,
    /// `spec.leaseDurationSeconds`.
    pub duration_secs: Option<i32>,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
}

/// What to do with the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// No Lease exists: create it, held by us.
    Create,
    /// The Lease is free or expired: take it (new `acquireTime`, transitions + 1).
    Acquire,
    /// We hold it: renew (`renewTime` = now).
    Renew,
    /// Another replica holds a live Lease; it expires at `until` unless renewed.
    Standby {
        /// The holder.
        holder: String,
        /// When the Lease expires if not renewed.
        until: Timestamp,
    },
}

/// Decides what `me` does with the Lease at `now`.
pub fn decide(
    now: Timestamp,
    me: &str,
    lease: Option<&LeaseView>,
    params: &LeaseParams,
) -> LeaseAction {
    let Some(lease) = lease else {
        return LeaseAction::Create;
    };
    let holder = lease.holder.as_deref().filter(|h| !h.is_empty());
    match holder {
        None => LeaseAction::Acquire,
        Some(h) if h == me => LeaseAction::Renew,
        Some(h) => {
            let secs = lease
                .duration_secs
                .filter(|d| *d > 0)
                .map(i64::from)
                .unwrap_or(params.duration.as_secs() as i64);
            let until = lease
                .renew_time
                .map(|t| t + SignedDuration::from_secs(secs))
                .unwrap_or(now);
            if until <= now {
                LeaseAction::Acquire
            } else {
                LeaseAction::Standby {
                    holder: h.to_string(),
                    until,
                }
            }
        }
    }
}

/// The Lease fields after `action` by `me` at `now` (for Create/Acquire/Renew).
pub fn next_view(
    now: Timestamp,
    me: &str,
    current: Option<&LeaseView>,
    action: &LeaseAction,
    params: &LeaseParams,
) -> Option<LeaseView> {
    let duration_secs = Some(i32::try_from(params.duration.as_secs()).unwrap_or(i32::MAX));
    match action {
        LeaseAction::Create => Some(LeaseView {
            holder: Some(me.to_string()),
            renew_time: Some(now),
            duration_secs,
            transitions: 0,
        }),
        LeaseAction::Acquire => Some(LeaseView {
            holder: Some(me.to_string()),
            renew_time: Some(now),
            duration_secs,
            transitions: current.map_or(0, |c| c.transitions.saturating_add(1)),
        }),
        LeaseAction::Renew => Some(LeaseView {
            renew_time: Some(now),
            duration_secs,
            ..current.cloned().unwrap_or_default()
        }),
        LeaseAction::Standby { .. } => None,
    }
}

/// Whether a holder that last renewed successfully at `last_renewed` must consider the lease
/// lost at `now` (another replica may take it from then on).
pub fn lost(now: Timestamp, last_renewed: Timestamp, params: &LeaseParams) -> bool {
    let secs = params.duration.as_secs() as i64;
    now >= last_renewed + SignedDuration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn held_by(h: &str, renewed: i64) -> LeaseView {
        LeaseView {
            holder: Some(h.into()),
            renew_time: Some(t(renewed)),
            duration_secs: Some(15),
            transitions: 3,
        }
    }

    #[test]
    fn no_lease_is_created() {
        let p = LeaseParams::default();
        assert_eq!(decide(t(0), "a", None, &p), LeaseAction::Create);
        let v = next_view(t(0), "a", None, &LeaseAction::Create, &p).unwrap();
        assert_eq!(v.holder.as_deref(), Some("a"));
        assert_eq!(v.duration_secs, Some(15));
        assert_eq!(v.transitions, 0);
    }

    #[test]
    fn live_lease_of_another_means_standby_until_expiry() {
        let p = LeaseParams::default();
        let l = held_by("b", 0);
        assert_eq!(
            decide(t(14), "a", Some(&l), &p),
            LeaseAction::Standby {
                holder: "b".into(),
                until: t(15)
            }
        );
        // Expired: take it over, counting a transition.
        assert_eq!(decide(t(15), "a", Some(&l), &p), LeaseAction::Acquire);
        let v = next_view(t(15), "a", Some(&l), &LeaseAction::Acquire, &p).unwrap();
        assert_eq!(v.holder.as_deref(), Some("a"));
        assert_eq!(v.transitions, 4);
        assert_eq!(v.renew_time, Some(t(15)));
    }

    #[test]
    fn holder_renews_and_released_lease_is_free() {
        let p = LeaseParams::default();
        let l = held_by("a", 0);
        assert_eq!(decide(t(5), "a", Some(&l), &p), LeaseAction::Renew);
        let v = next_view(t(5), "a", Some(&l), &LeaseAction::Renew, &p).unwrap();
        assert_eq!(v.transitions, 3, "renewal is not a transition");
        assert_eq!(v.renew_time, Some(t(5)));
        // Released (empty holder): the standby takes it at once.
        let released = LeaseView {
            holder: Some(String::new()),
            duration_secs: Some(1),
            ..l
        };
        assert_eq!(decide(t(6), "b", Some(&released), &p), LeaseAction::Acquire);
    }

    #[test]
    fn lease_duration_of_the_object_wins_and_missing_renew_time_is_expired() {
        let p = LeaseParams::default();
        let mut l = held_by("b", 0);
        l.duration_secs = Some(60);
        assert!(matches!(
            decide(t(30), "a", Some(&l), &p),
            LeaseAction::Standby { .. }
        ));
        l.renew_time = None;
        assert_eq!(decide(t(30), "a", Some(&l), &p), LeaseAction::Acquire);
    }

    #[test]
    fn holder_considers_the_lease_lost_after_a_duration_without_renewal() {
        let p = LeaseParams::default();
        assert!(!lost(t(14), t(0), &p));
        assert!(lost(t(15), t(0), &p));
    }
}
